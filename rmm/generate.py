#!/usr/bin/env python3
"""Writes the RMM scripts from one body and per-platform tables (standard library only).

    python3 rmm/generate.py                 # rewrite rmm/<platform>/<Template>.ps1
    python3 rmm/generate.py --check         # exit 1 when a committed script is stale
    python3 rmm/generate.py --release DIR --exe FILE [--source-url PATTERN] [--version V]
        # the release scripts: DIR/<platform>/<Template>-SelfContained.ps1 (the .exe
        # inside, gzip + base64) and, with --source-url, DIR/<platform>/<Template>.ps1
        # (fetches the .exe from the URL; {version} and {file} in PATTERN are filled in)

Each RMM takes one pasted script, so every script is standalone; they differ only in how
the parameters arrive (PLATFORMS), how the script exits, and a platform hook or check.
The body (rmm/src/LogOff-Users.body.ps1) is shared word for word, by both templates too:
"Users - Cancel LogOff" (issue 14) is one more TEMPLATES entry with its own parameter list
and exit codes; a new parameter is one more Param line.
"""

import argparse
import base64
import dataclasses
import gzip
import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent
EXIT_LINE_PREFIX = "logoff-users: exit="


@dataclasses.dataclass(frozen=True)
class Param:
    name: str  # the RMM's parameter name: letters only, so every platform can use it as is
    kind: str  # users | value | text | duration | flag | fieldname
    flag: str  # the tool's option; '' for Users (LOGOFF_USERS) and script-only parameters
    default: str
    help: str


LOGOFF_PARAMS = [
    Param("Users", "users", "", "All",
          "names separated by commas (jdoe, CORP\\asmith, John Smith), or ALL; required"),
    Param("Exclude", "text", "--exclude", "",
          "users to leave alone, same syntax; applies to ALL too"),
    Param("DisconnectedOnly", "flag", "--disconnected-only", "false",
          "only sessions with no client connected (true/false)"),
    Param("IdleOver", "duration", "--idle-over", "",
          "only sessions idle for longer than this, e.g. 2h or 90m"),
    Param("Message", "text", "--message", "",
          "warn the users first with this text (at most 255 characters), then wait Grace"),
    Param("Grace", "duration", "--grace", "",
          "with Message: the time users get before the logoff (tool default 5m); "
          "without: between asking processes to end and forcing them (default 5s)"),
    Param("Schedule", "flag", "--detach", "false",
          "true: send the warning now and return at once; a scheduled job (a Windows service) "
          "waits Grace, reminds the users, then logs them off. The output names the job; "
          "'Users - Cancel LogOff' cancels it"),
]

CANCEL_PARAMS = [
    Param("Job", "value", "--cancel", "all",
          "the job to cancel: its id (eight hex digits, printed by 'Users - LogOff' with "
          "Schedule), or all; required"),
    Param("Message", "text", "--message", "",
          "optional: tell the job's users, e.g. 'The logoff tonight is cancelled' (at most "
          "255 characters)"),
]

# NinjaOne only: the custom field that receives the result (Ninja-Property-Set).
NINJA_RESULT_FIELD = Param("ResultField", "fieldname", "", "",
                           "optional: name of a device custom field (Text) that receives the result")


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    title: str
    body: str
    params: list
    what: list  # header lines: what the task does
    exit_codes: list


EXIT_CODES = [
    "0  every targeted user is logged off (a user who was not logged on counts as done);",
    "   with Schedule: the job is scheduled (its id and due time are in the output)",
    "1  some action failed or could not be verified",
    "2  bad input (no Users value, a malformed name or parameter, ...): nothing was done",
    "3  not enough privilege: nothing was done",
    "4  cancelled during the Message grace period: no one was logged off",
    "10 this script could not get, install or start the binary, or Windows is too old",
    "11 the binary's SHA-256 is not the pinned one: it was not written or run",
]

CANCEL_EXIT_CODES = [
    "0  the job (or every pending job) is cancelled: it logs no one off; or nothing was pending",
    "1  a job file could not be trusted or read (see the output)",
    "2  Job is not a job id or all: nothing was done",
    "3  not enough privilege: nothing was done",
    "5  too late: the job had already started logging users off",
    "6  there is no job with that id",
    "10 this script could not get, install or start the binary, or Windows is too old",
    "11 the binary's SHA-256 is not the pinned one: it was not written or run",
]

TEMPLATES = [
    Template("LogOff-Users", "Users - LogOff", "LogOff-Users.body.ps1", LOGOFF_PARAMS,
             ["Logs users off this Windows machine with logoff-users.exe, which verifies that their",
              "sessions and processes are gone."], EXIT_CODES),
    # The companion of Schedule: the same body, another parameter list.
    Template("Cancel-LogOff", "Users - Cancel LogOff", "LogOff-Users.body.ps1", CANCEL_PARAMS,
             ["Cancels a logoff that 'Users - LogOff' scheduled (Schedule = true) before it logs",
              "anyone off, with logoff-users.exe --cancel; optionally tells its users."],
             CANCEL_EXIT_CODES),
]


# ---- per platform ----------------------------------------------------------------------

def cw_inputs(params):
    lines = [
        "# ---- the task's parameters -------------------------------------------------------",
        "# ConnectWise RMM replaces each parameter placeholder below (the parameter's name",
        "# between two at-signs) with the value before the script runs. Each value stands alone",
        "# in a single-quoted here-string, so quotes, dollar signs and blanks in it reach the",
        "# tool unchanged. An optional parameter left empty (or left as its placeholder) is",
        "# not given. Keep other at-signs out of this script: the RMM might take them for",
        "# parameters too.",
    ]
    for p in params:
        lines += [f"$Param{p.name} = @'", f"@{p.name}@", "'@"]
    return "\n".join(lines)


def env_inputs(params, what):
    lines = [
        "# ---- the parameters --------------------------------------------------------------",
        f"# {what}",
        "# An optional one that is unset or empty is not given.",
    ]
    lines += [f"$Param{p.name} = $env:{p.name}" for p in params]
    return "\n".join(lines)


NINJA_ON_EXIT = """\
    # The result in a device custom field, when ResultField names one. NinjaOne's
    # Ninja-Property-Set exists in its scripts only; any failure here is reported, not fatal.
    if ($ResultField) {
        try {
            $result = ((Get-Date).ToString('yyyy-MM-dd HH:mm') + " exit=$Code $Summary").Trim()
            Ninja-Property-Set $ResultField $result 2>&1 | Out-Null
        } catch {
            Write-Output "warning: could not set the custom field $ResultField ($(Format-Text $_.Exception.Message))"
        }
    }"""

NINJA_CHECKS = """\
# The custom field for the result: a field name is letters and digits.
$field = Read-Text 'ResultField' $ParamResultField
if ($null -ne $field -and $field -notmatch '^[A-Za-z][A-Za-z0-9]*$') {
    Write-Output "error: ResultField must be a custom field's name (letters and digits), not '$(Format-Text $field)'; nothing was done"
    Exit-LogoffScript 2
}
$ResultField = $field
"""

TACTICAL_CHECKS = """\
# Tactical RMM joins script arguments into PowerShell code (it starts powershell.exe
# without -File), so this script reads environment variables only and refuses arguments
# rather than guess what they meant.
if ($args.Count -gt 0) {
    Write-Output 'error: this script takes its values from the Environment vars field (Users=..., one NAME=value per line), not from Script Arguments: empty the Script Arguments; nothing was done'
    Exit-LogoffScript 2
}
"""


@dataclasses.dataclass(frozen=True)
class Platform:
    dir: str
    title: str
    inputs: object  # params -> PowerShell text
    extra_params: list
    checks: str
    on_exit: str
    exit: str
    how: list  # header lines: how values arrive and how failure shows


PLATFORMS = [
    Platform(
        "connectwise-rmm", "ConnectWise RMM", cw_inputs, [], "", "", "    exit $Code",
        ["Parameters: the task's parameters, as at-sign placeholders (see below).",
         "Failure: the task's rows check the last line, 'logoff-users: exit=N'; README.md",
         "beside this file names the exact rows (ConnectWise RMM does not fail a task on a",
         "PowerShell row's exit code)."]),
    Platform(
        "ninjaone", "NinjaOne",
        lambda ps: env_inputs(ps, "NinjaOne passes each script variable as an environment variable."),
        [NINJA_RESULT_FIELD], NINJA_CHECKS, NINJA_ON_EXIT, "    exit $Code",
        ["Parameters: script variables, which NinjaOne passes as environment variables.",
         "Failure: the exit code (not 0 = failed); optionally the result in a custom field",
         "(ResultField, written with Ninja-Property-Set)."]),
    Platform(
        "tactical-rmm", "Tactical RMM",
        lambda ps: env_inputs(ps, "Tactical RMM passes the script's Environment vars (NAME=value) as environment variables."),
        [], TACTICAL_CHECKS, "",
        "    # Tactical RMM starts powershell.exe without -File: a plain exit code other than\n"
        "    # 0 or 1 would arrive as 1. SetShouldExit hands the host the exact code.\n"
        "    $host.SetShouldExit($Code)\n    exit $Code",
        ["Parameters: the script's Environment vars (NAME=value), not script arguments.",
         "Failure: the exact exit code, through $host.SetShouldExit (Tactical RMM starts",
         "powershell.exe without -File, which turns any other code into 1)."]),
]

def header(template, platform, params, variant):
    lines = [
        f"# {template.name}.ps1 for {platform.title}: the task \"{template.title}\".",
        "#",
        *["# " + line for line in template.what],
        "# Needs Windows 10 / Server 2016 or later, x64, run as SYSTEM.",
        f"# Variant: {variant}",
        "#",
    ]
    lines += ["# " + line for line in platform.how]
    lines += ["#", "# Parameters:"]
    width = max(len(p.name) for p in params)
    for p in params:
        default = f" (default {p.default})" if p.default else ""
        text = textwrap.wrap(p.help + default, 86 - width - 6)
        lines.append(f"#   {p.name.ljust(width)}  {text[0]}")
        lines += [f"#   {' ' * width}  {more}" for more in text[1:]]
    lines += ["#", "# The last line of the output is always 'logoff-users: exit=N':"]
    lines += ["#   " + code for code in template.exit_codes]
    lines += [
        "#",
        f"# See rmm/{platform.dir}/README.md. Generated by rmm/generate.py from",
        f"# rmm/src/{template.body}: change those, not this file.",
    ]
    return "\n".join(lines)


def arguments(params):
    names = [f"$Param{p.name}" for p in params]
    out = [
        "# A value that holds the exit line's text could make a failed run read as a good one.",
        "$allValues = [string]::Join([string][char]10, [string[]](" + ", ".join(names) + "))",
        "if ($allValues -match 'logoff-users:\\s*exit=') {",
        f"    Write-Output \"error: a parameter holds the text '{EXIT_LINE_PREFIX}', which this script's last line is made of; nothing was done\"",
        "    Exit-LogoffScript 2",
        "}",
    ]
    for p in params:
        if p.kind == "users":
            out += [
                "# Users goes through LOGOFF_USERS, and no names on the command line: the tool",
                "# refuses a list given both ways. Unset, it reaches the tool as no list (exit 2).",
                f"$env:LOGOFF_USERS = [string]$Param{p.name}",
            ]
        elif p.kind == "flag":
            out += [
                f"$flag = Read-Flag '{p.name}' $Param{p.name}",
                "if ($null -eq $flag) {",
                f"    Write-Output \"error: {p.name} must be true or false, not '$(Format-Text $Param{p.name})'; nothing was done\"",
                "    Exit-LogoffScript 2",
                "}",
                f"if ($flag) {{ Add-ToolArgument '{p.flag}' $null }}",
            ]
        elif p.kind == "value":
            out += [
                f"# {p.name} is always given (empty, it reaches the tool, which refuses it: exit 2).",
                f"Add-ToolArgument '{p.flag}' ([string]$Param{p.name}).Trim()",
            ]
        elif p.kind in ("text", "duration"):
            out += [
                f"$value = Read-Text '{p.name}' $Param{p.name}",
                f"if ($null -ne $value) {{ Add-ToolArgument '{p.flag}' $value }}",
            ]
        elif p.kind == "fieldname":
            pass  # read by the platform's checks
        else:
            raise ValueError(f"unknown parameter kind {p.kind}")
    return "\n".join(out)


def render(template, platform, variant="template", settings=None):
    params = template.params + platform.extra_params
    body = (ROOT / "src" / template.body).read_text(encoding="utf-8")
    parts = {
        "#%%HEADER%%": header(template, platform, params, variant),
        "#%%INPUTS%%": platform.inputs(params) + ("\n$ResultField = $null" if platform.extra_params else ""),
        "#%%ON_EXIT%%": platform.on_exit,
        "#%%EXIT%%": platform.exit,
        "#%%PLATFORM_CHECKS%%": platform.checks,
        "#%%ARGUMENTS%%": arguments(params),
    }
    for marker, text in parts.items():
        if body.count(marker + "\n") != 1:
            raise ValueError(f"{template.body}: marker {marker} must appear once, alone on a line")
        body = body.replace(marker + "\n", (text + "\n") if text else "")
    for name, value in (settings or {}).items():
        line = f"${name} = ''"
        if body.count(line) != 1:
            raise ValueError(f"setting {name}: expected one line '{line}'")
        body = body.replace(line, f"${name} = {value}")
    return body.replace("\r\n", "\n")


def ps_quote(text):
    return "'" + text.replace("'", "''") + "'"


def packed_payload(exe_bytes):
    """gzip (zopfli when installed, else gzip -9), then base64 in lines of 100 characters."""
    if shutil.which("zopfli"):
        with tempfile.TemporaryDirectory() as tmp:
            exe = pathlib.Path(tmp) / "logoff-users.exe"
            exe.write_bytes(exe_bytes)
            packed = subprocess.run(["zopfli", "-c", "--gzip", str(exe)], stdout=subprocess.PIPE,
                                    check=True).stdout
    else:
        packed = gzip.compress(exe_bytes, compresslevel=9, mtime=0)
    if gzip.decompress(packed) != exe_bytes:
        raise RuntimeError("the compressed payload does not decompress to the .exe")
    text = base64.b64encode(packed).decode("ascii")
    lines = [text[i:i + 100] for i in range(0, len(text), 100)]
    return "'\n" + "\n".join(lines) + "\n'", len(packed)


def committed_path(template, platform):
    return ROOT / platform.dir / f"{template.name}.ps1"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--release", metavar="DIR")
    ap.add_argument("--exe")
    ap.add_argument("--source-url", default="")
    ap.add_argument("--version", default="")
    args = ap.parse_args()

    if args.release:
        if not args.exe:
            ap.error("--release needs --exe")
        exe = pathlib.Path(args.exe)
        exe_bytes = exe.read_bytes()
        sha = hashlib.sha256(exe_bytes).hexdigest()
        payload, packed_len = packed_payload(exe_bytes)
        out = pathlib.Path(args.release)
        for t in TEMPLATES:
            for p in PLATFORMS:
                text = render(t, p, "self-contained (the .exe is inside, gzip + base64)",
                              {"ExpectedSha256": ps_quote(sha), "Payload": payload})
                path = out / p.dir / f"{t.name}-SelfContained.ps1"
                write(path, text)
                print(f"{len(text.encode()):8d} bytes  {path}")
                if args.source_url:
                    url = args.source_url.replace("{version}", args.version).replace("{file}", exe.name)
                    text = render(t, p, f"fetches the .exe from {url}",
                                  {"ExpectedSha256": ps_quote(sha), "BinarySource": ps_quote(url)})
                    path = out / p.dir / f"{t.name}.ps1"
                    write(path, text)
                    print(f"{len(text.encode()):8d} bytes  {path}")
        print(f"exe {len(exe_bytes)} bytes, sha256 {sha}; gzip payload {packed_len} bytes")
        return 0

    stale = []
    for t in TEMPLATES:
        for p in PLATFORMS:
            path = committed_path(t, p)
            text = render(t, p, "template (release/build.sh writes the ready-to-paste copies)")
            if args.check:
                if not path.exists() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path.relative_to(ROOT.parent)))
            else:
                write(path, text)
    if stale:
        print("stale (run python3 rmm/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
