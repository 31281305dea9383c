#!/usr/bin/env python3
"""Writes the self-test's state files: state.json (what standin_test.c expects) and
broken-state.json (a typo the stand-in must refuse). Usage: standin_state.py WORKDIR

WORKDIR is a Unix path; the pid files of the test's sleepers are named there as Unix paths,
which the stand-in maps to drive Z:.
"""
import json
import os
import sys

BOB = "S-1-5-21-1000-2000-3000-1002"
CAROL = "S-1-5-21-1000-2000-3000-1003"
ALICE = "S-1-5-21-1000-2000-3000-1001"
SYSTEM = "S-1-5-18"
# Quotes, a backslash, a newline, BEL, ESC, a lone surrogate, an emoji: must come back from
# the API unchanged and reach the record log escaped.
HOSTILE = 'Zo\u00eb "q" \\ \n\u0007\u001b[31m \ud800 \U0001F600 longer'


def main():
    work = sys.argv[1]
    pid = lambda name: os.path.join(work, name + ".pid")
    local = {
        "sessions": [
            {"id": 0, "station": "Services", "state": "WTSDisconnected"},
            {"id": 1, "station": "Console", "user": "admin", "domain": "PC1",
             "state": "WTSActive", "protocol": 0, "locked": False,
             "logon_time": 1700000000, "connect_time": 1700000000, "last_input_ago": 30},
            {"id": 2, "station": "RDP-Tcp#1", "user": "bob", "domain": "CORP",
             "state": "WTSActive", "protocol": 2, "client_name": "BOB-LAPTOP",
             "client_address": "10.1.2.3", "locked": True,
             "logon_time": 1700000100, "connect_time": 1700000200,
             "last_input_time": 1700000300,
             "message_response": 6, "message_delay_ms": 100},
            {"id": 3, "station": "RDP-Tcp#2", "user": "carol", "domain": "CORP",
             "state": "WTSActive", "protocol": 2, "logoff_delay_ms": 1500},
            {"id": 4, "station": "RDP-Tcp#3", "user": "dave", "domain": "CORP",
             "state": "WTSActive", "protocol": 2, "refuse_logoff": True, "bwait_hang_ms": 300},
            {"id": 5, "station": "RDP-Tcp#4", "user": "erin", "domain": "CORP",
             "state": "WTSActive", "protocol": 2, "logoff_error": 5},
            {"id": 6, "station": "RDP-Tcp#5", "user": "frank", "domain": "CORP",
             "state": "WTSActive", "protocol": 2, "disconnect_delay_ms": 800,
             "message_delay_ms": 5000},
            {"id": 7, "station": "RDP-Tcp#6", "user": HOSTILE, "domain": "CORP",
             "state": "WTSDisconnected", "protocol": 2, "client_address": "fe80::1"},
            {"id": 8, "station": "RDP-Tcp#7", "user": "gina", "domain": "CORP",
             "state": "WTSActive", "protocol": 2, "logoff_delay_ms": 300},
        ],
        "processes": [
            {"pid_file": pid("A"), "session": 2, "sid": BOB},
            {"pid_file": pid("B"), "session": 2, "sid": BOB},
            {"pid_file": pid("C"), "session": 3, "sid": CAROL},
            {"pid": 40001, "session": 3, "sid": CAROL, "name": "carol-app.exe"},
            {"pid": 40002, "session": 0, "sid": SYSTEM, "name": "services.exe"},
            {"pid": 40003, "session": 8, "sid": "S-1-5-21-1000-2000-3000-1008",
             "name": "leftover.exe", "survives_logoff": True},
        ],
    }
    remote_sessions = [
        {"id": 1, "station": "RDP-Tcp#0", "user": "alice", "domain": "CORP", "protocol": 2},
        {"id": 2, "station": "RDP-Tcp#1", "user": "bob", "domain": "CORP", "protocol": 2},
    ]
    state = {
        "version": 1,
        "current_session": 1,
        "servers": {
            "local": local,
            "pc1": {"alias_of": "local"},
            "rdsh-admin": {
                "sessions": remote_sessions,
                "processes": [
                    {"pid": 50001, "session": 0, "sid": SYSTEM, "name": "csrss.exe"},
                    {"pid": 50002, "session": 2, "sid": BOB, "name": "excel.exe",
                     "reuse": {"from_enum": 3, "session": 0, "sid": SYSTEM,
                               "name": "svchost.exe"}},
                    {"pid": 50003, "session": 1, "sid": ALICE, "name": "word.exe",
                     "terminate_error": 5},
                ],
            },
            "rdsh-deny": {
                "caller_is_admin": False,
                "caller": {"user": "bob", "domain": "CORP", "sid": BOB},
                "non_admin_processes": "deny",
                "session_not_found_error": 2,
                "sessions": remote_sessions,
                "processes": [{"pid": 70001, "session": 2, "sid": BOB, "name": "excel.exe"}],
            },
            "rdsh-user": {
                "caller_is_admin": False,
                "caller": {"user": "bob", "domain": "CORP", "sid": BOB},
                "caller_query": "own",
                "sessions": remote_sessions,
                "processes": [
                    {"pid": 60001, "session": 0, "sid": SYSTEM, "name": "csrss.exe"},
                    {"pid": 60002, "session": 2, "sid": BOB, "name": "excel.exe"},
                    {"pid": 60003, "session": 1, "sid": ALICE, "name": "word.exe"},
                ],
            },
            "rdsh-down": {"unreachable": True},
            "rdsh-old": {"unreachable": True, "open_returns_null": True},
        },
    }
    # ASCII with \u escapes (the lone surrogate can only be written so), then two characters
    # put back as raw UTF-8 so the stand-in's reader decodes both forms.
    text = json.dumps(state, indent=1, ensure_ascii=True)
    text = text.replace("\\u00eb", "\u00eb").replace("\\ud83d\\ude00", "\U0001F600")
    with open(os.path.join(work, "state.json"), "w", encoding="utf-8") as f:
        f.write(text)
    broken = {"current_session": 1,
              "servers": {"local": {"sessions": [{"id": 1, "logof_delay_ms": 5}]}}}
    with open(os.path.join(work, "broken-state.json"), "w", encoding="utf-8") as f:
        json.dump(broken, f)


if __name__ == "__main__":
    main()
