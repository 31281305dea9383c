#!/usr/bin/env python3
"""Static checks of the RMM scripts, for a machine without PowerShell.

    python3 -m venv V && V/bin/pip install tree-sitter tree-sitter-powershell
    V/bin/python rmm/check.py [--release-dir dist/rmm --exe dist/logoff-users-...exe]
    V/bin/python rmm/check.py --self-test

Every RMM template rmm/*/*.ps1 (and, with --release-dir, every script release/build.sh
wrote) must pass the checks below; the scripts under rmm/acceptance/, which an admin runs
by hand on a test server and no RMM ever starts, must pass the parse (1) only:

1. parse with the tree-sitter PowerShell grammar (no ERROR or MISSING node). That grammar
   is not PowerShell's own parser: it catches unbalanced braces, quotes and parentheses and
   broken statements, not every error PowerShell would report;
2. end on the exit line on every path: the only `exit` is the one in Exit-LogoffScript,
   right after it writes 'logoff-users: exit=$Code'; a top-level trap ends in that
   function; the script's last statement calls it; it is called only as a statement of
   its own, outside functions and script blocks (where its output could be swallowed);
   no `throw`, no `return` outside a function, no `break`/`continue` outside a loop;
3. never split arguments on blanks (no -split, .Split(, Invoke-Expression, iex,
   Start-Process, cmd /c) and run the tool once, as `& $ExePath $toolArgv`, with the
   arguments from the list, and the list of users in LOGOFF_USERS only;
4. check the binary's SHA-256 before running it;
5. follow its platform's rules: ConnectWise RMM substitutes at-sign placeholders (each
   parameter's placeholder exactly once, in a here-string that keeps hostile values
   intact, and no other at-sign); Tactical RMM replaces double-brace snippet tags (none)
   and needs $host.SetShouldExit.

The argument encoding for Windows PowerShell 5.1 (ConvertTo-NativeArgument) is checked by
running its two -replace patterns, taken from the script, over random strings and parsing
the result as the C runtime and Rust's std do. With --exe, each self-contained script's
payload is decoded and compared byte for byte with the .exe, and every release script's
ExpectedSha256 must be the .exe's. --self-test breaks a script in each of those ways and
fails unless every break is reported.
"""

import argparse
import base64
import gzip
import hashlib
import pathlib
import random
import re
import sys

import tree_sitter
import tree_sitter_powershell

ROOT = pathlib.Path(__file__).resolve().parent
PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
EXIT_FN = "Exit-LogoffScript"
PLACEHOLDER = re.compile(r"@([A-Za-z][A-Za-z0-9]*)@")
LOOPS = {"foreach_statement", "for_statement", "while_statement", "do_statement", "switch_statement"}
# Nodes an Exit-LogoffScript call may sit in: statements of the script itself.
STATEMENT_CONTAINERS = {
    "program", "statement_list", "statement_block", "if_statement", "elseif_clause", "elseif_clauses",
    "else_clause", "trap_statement", "try_statement", "catch_clause", "catch_clauses", "finally_clause",
}


class Script:
    def __init__(self, path, text):
        self.path = path
        self.text = text
        self.src = text.encode("utf-8")
        self.tree = PARSER.parse(self.src)

    def t(self, node):
        return self.src[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def nodes(self, kind=None):
        stack = [self.tree.root_node]
        while stack:
            node = stack.pop()
            if kind is None or node.type == kind:
                yield node
            stack.extend(reversed(node.children))

    def line(self, node):
        return node.start_point[0] + 1


def ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


def function_of(node):
    for a in ancestors(node):
        if a.type == "function_statement":
            return a
    return None


def function_name(script, fn):
    for c in fn.children:
        if c.type == "function_name":
            return script.t(c)
    return ""


def calls(script, name):
    for cmd in script.nodes("command"):
        for c in cmd.children:
            if c.type == "command_name" and script.t(c).lower() == name.lower():
                yield cmd


def syntax_errors(script):
    found = []
    for node in script.nodes():
        if node.is_error or node.is_missing:
            found.append(f"line {script.line(node)}: {'missing' if node.is_missing else 'syntax error'} "
                         f"{script.t(node)[:60]!r}")
    return found


def code_only(text):
    """The text without comment lines and without the payload's base64 (for text rules: a
    payload line may hold 'iex' between a '+' and a '/' by chance)."""
    text = re.sub(r"^(\$Payload = ')(?:[^']|'')*(')$", r"\1\2", text, flags=re.M)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def check_exit_paths(s):
    problems = []
    fns = [f for f in s.nodes("function_statement") if function_name(s, f) == EXIT_FN]
    if len(fns) != 1:
        return [f"there must be exactly one function {EXIT_FN}"]
    exit_fn = fns[0]
    flows = list(s.nodes("flow_control_statement"))
    for flow in flows:
        keyword = flow.children[0].type
        where = function_of(flow)
        if keyword == "exit" and where != exit_fn:
            problems.append(f"line {s.line(flow)}: 'exit' outside {EXIT_FN} (use {EXIT_FN} CODE)")
        if keyword == "throw":
            problems.append(f"line {s.line(flow)}: 'throw' (a thrown error skips the exit line)")
        if keyword == "return" and where is None:
            problems.append(f"line {s.line(flow)}: 'return' at the top level ends the script without the exit line")
        if keyword in ("break", "continue"):
            inner = [a for a in ancestors(flow) if a.type in LOOPS or a.type == "function_statement"]
            if not inner or inner[0].type not in LOOPS:
                problems.append(f"line {s.line(flow)}: '{keyword}' outside a loop ends the script")
    exits = [f for f in flows if f.children[0].type == "exit" and function_of(f) == exit_fn]
    if len(exits) != 1:
        problems.append(f"{EXIT_FN} must hold exactly one 'exit'")
    else:
        before = s.text[exit_fn.start_byte:exits[0].start_byte] if s.text.isascii() else \
            s.src[exit_fn.start_byte:exits[0].start_byte].decode()
        if 'Write-Output "logoff-users: exit=$Code"' not in before:
            problems.append(f"{EXIT_FN} must write 'logoff-users: exit=$Code' before it exits")
    lists = [c for c in s.tree.root_node.children if c.type == "statement_list"]
    statements = [c for c in (lists[0].children if len(lists) == 1 else []) if c.type != "comment"]
    traps = [c for c in statements if c.type == "trap_statement"]
    if len(traps) != 1 or not any(True for _ in calls_in(s, traps[0], EXIT_FN)):
        problems.append(f"there must be one top-level trap that ends in {EXIT_FN}")
    if not statements or not any(True for _ in calls_in(s, statements[-1], EXIT_FN)) \
            or statements[-1].type != "pipeline":
        problems.append(f"the script's last statement must be a call to {EXIT_FN}")
    for call in calls(s, EXIT_FN):
        pipeline = call.parent.parent  # command -> pipeline_chain -> pipeline
        if pipeline is None or pipeline.type != "pipeline" or len(call.parent.children) != 1:
            problems.append(f"line {s.line(call)}: {EXIT_FN} must be called as a statement of its own")
            continue
        bad = [a.type for a in ancestors(pipeline) if a.type not in STATEMENT_CONTAINERS]
        if bad:
            problems.append(f"line {s.line(call)}: {EXIT_FN} called inside {bad[0]}, where its output may be lost")
    return problems


def calls_in(s, node, name):
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "command" and any(c.type == "command_name" and s.t(c).lower() == name.lower()
                                       for c in n.children):
            yield n
        stack.extend(n.children)


def check_arguments(s):
    problems = []
    code = code_only(s.text)
    for pattern, what in [(r"-split\b", "-split"), (r"\.Split\(", ".Split("),
                          (r"\bInvoke-Expression\b", "Invoke-Expression"), (r"\biex\b", "iex"),
                          (r"\bStart-Process\b", "Start-Process"), (r"\bcmd(\.exe)?\s+/c\b", "cmd /c")]:
        if re.search(pattern, code, re.I):
            problems.append(f"the script uses {what}: arguments must be built as an array, never split on blanks")
    runs = [c for c in s.nodes("command") if s.t(c).startswith("& $ExePath")]
    if len(runs) != 1 or not re.match(r"& \$ExePath \$toolArgv 2>&1\b", s.t(runs[0])):
        problems.append("the tool must run exactly once, as '& $ExePath $toolArgv 2>&1 | ...'")
    if "$toolArgv = $ToolArguments.ToArray()" not in code:
        problems.append("the arguments must come from the list ($toolArgv = $ToolArguments.ToArray())")
    # A template with a Users parameter (not "Users - Cancel LogOff") passes it this way only.
    users_set = code.count("$env:LOGOFF_USERS = ")
    if users_set != (1 if "$ParamUsers" in code else 0):
        problems.append("the user list must reach the tool through LOGOFF_USERS, set once (and only with a Users parameter)")
    if "--users" in code:
        problems.append("--users must not be used: the list goes through LOGOFF_USERS only")
    hash_at = code.find("Get-FileHash")
    run_at = code.find("& $ExePath")
    if hash_at < 0 or hash_at > run_at or "Exit-LogoffScript 11" not in code:
        problems.append("the SHA-256 must be checked with Get-FileHash (exit 11) before '& $ExePath' runs")
    return problems


def check_platform(s, platform):
    problems = []
    code = code_only(s.text)
    if platform == "connectwise-rmm":
        names = PLACEHOLDER.findall(s.text)
        declared = re.findall(r"^\$Param([A-Za-z]+) = @'$", s.text, re.M)
        if sorted(names) != sorted(set(names)) or sorted(names) != sorted(declared):
            problems.append(f"each parameter placeholder must appear exactly once, in its $Param here-string "
                            f"(placeholders {names}, here-strings {declared})")
        stripped = PLACEHOLDER.sub("", s.text)
        stripped = re.sub(r"@'$", "", stripped, flags=re.M)
        stripped = re.sub(r"^'@", "", stripped, flags=re.M)
        if "@" in stripped:
            line = next(i for i, l in enumerate(stripped.splitlines(), 1) if "@" in l)
            problems.append(f"line {line}: an at-sign outside a placeholder or here-string delimiter")
        problems += check_hostile_values(s, declared)
    if platform == "tactical-rmm":
        if "{{" in s.text or "}}" in s.text:
            problems.append("Tactical RMM replaces {{...}} with script snippets: no double braces")
        if "$host.SetShouldExit($Code)" not in code:
            problems.append("Tactical RMM loses exit codes other than 0/1 without $host.SetShouldExit")
    if platform in ("ninjaone", "tactical-rmm"):
        declared = re.findall(r"^\$Param([A-Za-z]+) = (.*)$", code, re.M)
        if not declared or any(value != f"$env:{name}" for name, value in declared):
            problems.append("the parameters must come from environment variables")
    if platform == "ninjaone" and "Ninja-Property-Set $ResultField" not in code:
        problems.append("the result custom field must be written with Ninja-Property-Set")
    return problems


HOSTILE = ["O'Brien, jdoe", "$(Remove-Item C:\\x)", '"John Smith",a', "it's '@ not here", "x`y;z|w"]


def check_hostile_values(s, names):
    """Each placeholder filled with a hostile value still parses, and the here-string holds it."""
    problems = []
    for value in HOSTILE:
        filled = PLACEHOLDER.sub(lambda m: value, s.text)
        t = Script(s.path, filled)
        errs = syntax_errors(t)
        if errs:
            problems.append(f"the value {value!r} in a placeholder breaks the script: {errs[0]}")
            continue
        for name in names:
            m = re.search(rf"^\$Param{name} = @'\n(.*?)\n'@$", filled, re.M | re.S)
            if not m or m.group(1) != value:
                problems.append(f"the value {value!r} does not survive in $Param{name}")
                break
    return problems


# ---- the argument encoding ---------------------------------------------------------------

def crt_split(cmdline):
    """Splits a command line as the MSVC C runtime (2008 and later) and Rust's std do."""
    args, i, n = [], 0, len(cmdline)
    while True:
        while i < n and cmdline[i] in " \t":
            i += 1
        if i >= n:
            return args
        arg, quoted = [], False
        while i < n and (quoted or cmdline[i] not in " \t"):
            if cmdline[i] == "\\":
                j = i
                while j < n and cmdline[j] == "\\":
                    j += 1
                if j < n and cmdline[j] == '"':
                    arg.append("\\" * ((j - i) // 2))
                    if (j - i) % 2:
                        arg.append('"')
                        i = j + 1
                    else:
                        i = j
                else:
                    arg.append("\\" * (j - i))
                    i = j
            elif cmdline[i] == '"':
                if quoted and i + 1 < n and cmdline[i + 1] == '"':
                    arg.append('"')
                    i += 2
                else:
                    quoted = not quoted
                    i += 1
            else:
                arg.append(cmdline[i])
                i += 1
        args.append("".join(arg))


def ps51_need_quotes(arg):
    """Windows PowerShell 5.1's NeedQuotes: whitespace outside double quotes."""
    need, following_backslash, quotes = False, False, 0
    for ch in arg:
        if ch == '"' and not following_backslash:
            quotes += 1
        elif ch.isspace() and quotes % 2 == 0:
            need = True
        following_backslash = ch == "\\"
    return need


def dotnet_replacement(rep):
    return re.sub(r"\$(\d)", r"\\g<\1>", rep.replace("\\", "\\\\"))


def check_argument_encoding(s):
    m = re.search(r"\$escaped = \$Value -replace '([^']*)', '([^']*)' -replace '([^']*)', '([^']*)'", s.text)
    if not m:
        return ["ConvertTo-NativeArgument's two -replace patterns were not found"]
    (p1, r1, p2, r2) = m.groups()
    if "return '\"' + $escaped + '\"'" not in s.text:
        return ["ConvertTo-NativeArgument must wrap the escaped value in double quotes"]
    rng = random.Random(13)
    samples = ["", " ", "a b", 'say "hi"', "x\\", "a b\\", 'a\\"b', '\\\\"', "\\", '"', "tab\there",
               "Maintenance tonight", "--message", "C:\\dir\\", 'q"\\ "']
    alphabet = 'ab \\"\t\'$`'
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(3000)]
    for value in samples:
        encoded = '"' + re.sub(p2, dotnet_replacement(r2), re.sub(p1, dotnet_replacement(r1), value)) + '"'
        if ps51_need_quotes(encoded):
            return [f"Windows PowerShell 5.1 would quote the encoded {value!r} again: {encoded!r}"]
        got = crt_split("logoff-users.exe " + encoded)[1:]
        if got != [value]:
            return [f"the encoded {value!r} ({encoded!r}) reaches the tool as {got!r}"]
    return []


# ---- release scripts ---------------------------------------------------------------------

def string_setting(text, name):
    m = re.search(rf"^\${name} = '((?:[^']|'')*)'$", text, re.M)
    return m.group(1).replace("''", "'") if m else None


def check_release(s, exe_bytes):
    problems = []
    sha = hashlib.sha256(exe_bytes).hexdigest()
    if (string_setting(s.text, "ExpectedSha256") or "").lower() != sha:
        problems.append("ExpectedSha256 is not the SHA-256 of the built .exe")
    payload = string_setting(s.text, "Payload")
    if s.path.name.endswith("-SelfContained.ps1"):
        try:
            decoded = gzip.decompress(base64.b64decode("".join((payload or "").split()), validate=True))
        except Exception as e:  # noqa: BLE001 - any decoding failure is the finding
            return problems + [f"the payload does not decode: {e}"]
        if decoded != exe_bytes:
            problems.append(f"the payload decodes to {len(decoded)} bytes that are not the built .exe "
                            f"({len(exe_bytes)} bytes)")
    else:
        if payload:
            problems.append("a hosted script must not carry a payload")
        if not re.match(r"^(https://|\\\\)", string_setting(s.text, "BinarySource") or ""):
            problems.append("BinarySource must be the https URL or UNC path set at build time")
    return problems


def platform_of(path):
    return path.parent.name


def check_script(path, text, exe_bytes=None):
    s = Script(path, text)
    problems = syntax_errors(s)
    if path.parent.name == "src":
        return problems  # the body with its generator markers: parse only
    problems += check_exit_paths(s)
    problems += check_arguments(s)
    problems += check_platform(s, platform_of(path))
    problems += check_argument_encoding(s)
    if exe_bytes is not None:
        problems += check_release(s, exe_bytes)
    return problems


def self_test(scripts):
    """Each break of a good script must be reported; else the checks cannot fail."""
    base = {platform_of(p): (p, p.read_text(encoding="utf-8")) for p in scripts
            if p.parent.name != "src" and p.name == "LogOff-Users.ps1"}
    exe = bytes(range(256)) * 40
    breaks = [
        ("connectwise-rmm", "split on blanks", lambda t: t.replace("$toolArgv = ", "$x = 'a b' -split ' '\n$toolArgv = ")),
        ("ninjaone", "an exit outside the function", lambda t: t.replace("# ---- 4. the run", "exit 3\n# ---- 4. the run")),
        ("tactical-rmm", "a top-level return", lambda t: t.replace("# ---- 4. the run", "return\n# ---- 4. the run")),
        ("ninjaone", "a throw", lambda t: t.replace("# ---- 4. the run", "throw 'x'\n# ---- 4. the run")),
        ("ninjaone", "no trap", lambda t: re.sub(r"\ntrap \{.*?\n\}\n", "\n", t, flags=re.S)),
        ("tactical-rmm", "output after the last exit call", lambda t: t + "Write-Output 'done'\n"),
        ("ninjaone", "the exit function called in a script block",
         lambda t: t.replace("$line\n}", "$line\n    Exit-LogoffScript 1\n}")),
        ("connectwise-rmm", "an extra at-sign", lambda t: t.replace("$Summary = ''", "$Summary = 'a@b'")),
        ("connectwise-rmm", "a placeholder outside a here-string",
         lambda t: t.replace("$Summary = ''", "$Summary = '" + "@" + "Users" + "@'")),
        ("tactical-rmm", "a snippet tag", lambda t: t.replace("$Summary = ''", "$Summary = '{{x}}'")),
        ("tactical-rmm", "no SetShouldExit", lambda t: t.replace("$host.SetShouldExit($Code)", "")),
        ("ninjaone", "a broken argument encoding", lambda t: t.replace("'$1$1\\\"'", "'$1\\\"'")),
        ("tactical-rmm", "a parameter not from the environment",
         lambda t: t.replace("$ParamGrace = $env:Grace", "$ParamGrace = '5m'")),
        ("ninjaone", "--users on the command line",
         lambda t: t.replace("$toolArgv = ", "$ToolArguments.Add('--users')\n$toolArgv = ")),
        ("connectwise-rmm", "unbalanced braces", lambda t: t.replace("function Format-Text([string]$Text) {",
                                                                      "function Format-Text([string]$Text) {{")),
    ]
    failed = 0
    for platform, what, mutate in breaks:
        path, text = base[platform]
        broken = mutate(text)
        if broken == text:
            print(f"SELF-TEST BROKEN: '{what}' did not change {path}")
            failed += 1
            continue
        before = set(check_script(path, text))
        found = [p for p in check_script(path, broken) if p not in before]
        if found:
            print(f"ok: {what} is reported ({found[0]})")
        else:
            print(f"SELF-TEST FAILED: {what} in {path} is not reported")
            failed += 1
    # The release checks: a good payload passes, a damaged one and a wrong hash do not.
    sys.path.insert(0, str(ROOT))
    import generate  # noqa: E402 - the generator, for a payload of known bytes

    template, platform = generate.TEMPLATES[0], generate.PLATFORMS[0]
    payload, _ = generate.packed_payload(exe)
    sha = hashlib.sha256(exe).hexdigest()
    good = generate.render(template, platform, "self-test", {"ExpectedSha256": f"'{sha}'", "Payload": payload})
    path = ROOT / platform.dir / "LogOff-Users-SelfContained.ps1"
    other, _ = generate.packed_payload(exe[:-1] + b"x")
    cases = [("a good payload", good, True),
             ("the payload of another .exe", good.replace(payload, other), False),
             ("a damaged payload", good.replace(payload[2:12], payload[2:12][::-1]), False),
             ("another .exe's hash", good.replace(sha, "0" * 64), False)]
    for what, text, should_pass in cases:
        found = check_script(path, text, exe)
        if bool(found) == should_pass:
            print(f"SELF-TEST FAILED: {what}: {found or 'not reported'}")
            failed += 1
        else:
            print(f"ok: {what} {'passes' if should_pass else 'is reported (' + found[0] + ')'}")
    # The text rules read code, not the payload: base64 can spell "+iex/" by chance.
    chance = good.replace(payload, payload[:40] + "+iex/" + payload[45:])
    extra = 1
    if chance == good or check_script(path, chance):
        print(f"SELF-TEST FAILED: 'iex' inside the payload is taken for code: {check_script(path, chance)}")
        failed += 1
    else:
        print("ok: 'iex' inside the payload passes the text rules")
    print(f"self-test: {len(breaks) + len(cases) + extra - failed} passed, {failed} failed")
    return failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--release-dir")
    ap.add_argument("--exe")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    every = sorted(ROOT.glob("*/*.ps1"))
    scripts = [p for p in every if p.parent.name != "acceptance"]
    by_hand = [p for p in every if p.parent.name == "acceptance"]
    if args.self_test:
        return 1 if self_test(scripts) else 0
    exe_bytes = pathlib.Path(args.exe).read_bytes() if args.exe else None
    targets = [(p, None) for p in scripts]
    if args.release_dir:
        release = sorted(pathlib.Path(args.release_dir).glob("*/*.ps1"))
        if not release:
            print(f"no scripts in {args.release_dir}", file=sys.stderr)
            return 1
        if exe_bytes is None:
            print("--release-dir needs --exe (the .exe the scripts carry or pin)", file=sys.stderr)
            return 1
        targets += [(p, exe_bytes) for p in release]
    failed = 0
    for path, exe in targets:
        problems = check_script(path, path.read_text(encoding="utf-8"), exe)
        print(f"{'ok' if not problems else 'FAILED'}: {path}")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    for path in by_hand:
        problems = syntax_errors(Script(path, path.read_text(encoding="utf-8")))
        print(f"{'ok' if not problems else 'FAILED'}: {path} (parse only)")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    total = len(targets) + len(by_hand)
    print(f"rmm scripts: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
