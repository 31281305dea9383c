#!/usr/bin/env python3
"""STAND-IN, NOT THE TOOL. Used only by ansible/test.sh --standin to test the Ansible
role's changed/failed logic while the real Linux backend is not in the build.

It prints a JSON report of the documented version-1 shape (README "JSON output"),
reading the list from LOGOFF_USERS, --users or arguments as the tool does. For each named
test user (uid >= 1000; ALL is refused) it SIGKILLs every process of that user that it
can see, and reports its sessions (distinct session ids) as logged off. It knows nothing
of logind, utmp or Windows, and none of the tool's safety rules beyond those two.

--standin-scenario picks a result to exercise the role:
  normal      act as above (default)
  fail        report the users as failed, exit 1, touch nothing
  fail-exit0  report the users as failed but exit 0 (the role must still fail)
  usage       report a usage error, exit 2
  garbage     print text that is not JSON, exit 0
"""

import argparse
import os
import pwd
import signal
import socket
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("users", nargs="*")
parser.add_argument("--users", dest="users_list")
parser.add_argument("--exclude", default="")
parser.add_argument("--format", default="text")
parser.add_argument("--timeout", default="30s")
parser.add_argument("--dry-run", action="store_true")
parser.add_argument("--standin-scenario", default="normal")
args = parser.parse_args()

lists = list(args.users) + ([args.users_list] if args.users_list is not None else [])
if not lists and "LOGOFF_USERS" in os.environ:
    lists = [os.environ["LOGOFF_USERS"]]
names = [n.strip() for item in lists for n in item.split(",") if n.strip()]
summary = dict.fromkeys(
    ["users_targeted", "users_logged_off", "users_not_logged_on", "users_failed", "sessions_logged_off",
     "sessions_already_gone", "processes_terminated", "actions_failed", "hosts_failed"], 0)
report = {
    "version": 1,
    "tool": "logoff-users STAND-IN (ansible/tests)",
    "request": {"all": False, "users": names, "exclude": [], "dry_run": args.dry_run, "timeout_ms": 30000},
    "error": None,
    "hosts": [],
    "summary": summary,
}


def finish(code):
    summary["exit_code"] = code
    if args.standin_scenario == "garbage":
        print("this is not JSON")
        sys.exit(0)
    print(__import__("json").dumps(report, indent=2))
    sys.exit(code)


def pids_of(uid):
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                found[int(entry)] = fields[3]  # pid -> session id
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


if args.standin_scenario == "usage" or not names or any(n.upper() == "ALL" for n in names):
    report["error"] = "stand-in: give named test users (ALL is refused by the stand-in)"
    finish(2)

host = {"host": socket.gethostname(), "backend": "standin", "error": None, "plan": None, "actions": [],
        "verification": None, "users": []}
report["hosts"].append(host)
code = 0
for name in names:
    summary["users_targeted"] += 1
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        uid = None
    if uid is not None and uid < 1000:
        report["error"] = f"stand-in: {name} is a system account (uid {uid}); refused"
        report["hosts"] = []
        finish(2)
    if args.standin_scenario in ("fail", "fail-exit0"):
        host["users"].append({"requested": name, "user": name, "outcome": "failed"})
        summary["users_failed"] += 1
        code = 1 if args.standin_scenario == "fail" else 0
        continue
    pids = pids_of(uid) if uid is not None else {}
    if not pids:
        host["users"].append({"requested": name, "user": None, "outcome": "not_logged_on"})
        summary["users_not_logged_on"] += 1
        continue
    if args.dry_run:
        host["users"].append({"requested": name, "user": name, "outcome": "planned"})
        continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while pids_of(uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pids_of(uid):
        host["users"].append({"requested": name, "user": name, "outcome": "failed"})
        summary["users_failed"] += 1
        code = 1
        continue
    host["users"].append({"requested": name, "user": name, "outcome": "logged_off"})
    summary["users_logged_off"] += 1
    summary["sessions_logged_off"] += len(set(pids.values()))
    summary["processes_terminated"] += len(pids)
finish(code)
