#!/usr/bin/env python3
"""Static checks of the RMM scripts, for a machine without PowerShell.

    pip install tree-sitter tree-sitter-powershell
    python3 rmm/check.py [--release-dir dist/rmm]

1. Every rmm/*/*.ps1 parses with the tree-sitter PowerShell grammar (no ERROR or MISSING
   node). That grammar is not PowerShell's own parser: it catches unbalanced braces,
   quotes and parentheses and broken statements, not every error PowerShell would report.
2. The rules the scripts rely on, as text checks: the SHA-256 is checked with
   Get-FileHash before the binary runs, the list reaches the tool unchanged through
   LOGOFF_USERS, and the script ends with the tool's exit code. The ConnectWise script
   holds the Users placeholder exactly once and no other at-sign (the RMM substitutes
   at-sign-delimited names anywhere in the text).
3. A name with a single quote in the ConnectWise placeholder makes the script fail to
   parse (so nothing runs) rather than run with a different list.
"""

import pathlib
import re
import sys

import tree_sitter
import tree_sitter_powershell

ROOT = pathlib.Path(__file__).resolve().parent
PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
PLACEHOLDER = "@Users@"


def syntax_errors(source: bytes) -> list[str]:
    """Every ERROR or MISSING node of the parse tree, as 'line N: text'."""
    found = []
    stack = [PARSER.parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            line = node.start_point[0] + 1
            text = source[node.start_byte : node.end_byte].decode(errors="replace")[:60]
            found.append(f"line {line}: {'missing' if node.is_missing else 'error'} {text!r}")
        stack.extend(node.children)
    return found


def check_rules(path: pathlib.Path, text: str) -> list[str]:
    problems = []
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    hash_at = code.find("Get-FileHash")
    run_at = code.find("& $ExePath")
    if hash_at < 0 or run_at < 0 or hash_at > run_at:
        problems.append("the SHA-256 must be checked with Get-FileHash before '& $ExePath' runs")
    if code.count("exit 11") < 2:
        problems.append("a hash mismatch must refuse (exit 11) both after a fetch and before the run")
    if not re.search(r"\$ExpectedSha256 -notmatch '\^\[0-9A-Fa-f\]\{64\}\$'", code):
        problems.append("an unset or malformed ExpectedSha256 must be refused")
    if "$env:LOGOFF_USERS = $UserList" not in code:
        problems.append("the list must reach the tool through LOGOFF_USERS")
    if "--users" in code:
        problems.append("--users on the command line is re-quoted wrongly by Windows PowerShell 5.1")
    if not code.rstrip().endswith("exit $LASTEXITCODE"):
        problems.append("the script must end with 'exit $LASTEXITCODE'")
    if "2>&1" not in code:
        problems.append("the tool's stderr must be part of the output")
    if path.parent.name == "connectwise-rmm":
        if text.count(PLACEHOLDER) != 1 or text.count("@") != 2:
            problems.append(f"the script must hold {PLACEHOLDER} exactly once and no other at-sign")
        if f"$UserList = '{PLACEHOLDER}'" not in code:
            problems.append(f"the placeholder must be assigned as $UserList = '{PLACEHOLDER}'")
    return problems


def check_quote_in_name(text: str) -> list[str]:
    """A value with a single quote must break the parse, never change the list."""
    filled = text.replace(PLACEHOLDER, "O'Brien, jdoe").encode()
    if not syntax_errors(filled):
        return ["a name with a single quote in the Users value still parses"]
    return []


def main() -> int:
    dirs = [ROOT]
    if len(sys.argv) == 3 and sys.argv[1] == "--release-dir":
        dirs.append(pathlib.Path(sys.argv[2]))
    scripts = sorted(p for d in dirs for p in d.glob("*/*.ps1"))
    if not scripts:
        print("no scripts found", file=sys.stderr)
        return 1
    failed = 0
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        problems = syntax_errors(text.encode()) + check_rules(path, text)
        if path.parent.name == "connectwise-rmm":
            problems += check_quote_in_name(text)
        status = "ok" if not problems else "FAILED"
        print(f"{status}: {path}")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    print(f"{len(scripts) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
