#!/usr/bin/env python3
"""Checks the record log of a standin_test.exe run. Usage:
check_record.py LOG BROKEN_LOG WORKDIR

Prints "PASS name" or "FAIL name: why" per check and "record: N passed, M failed"; exits 1
when a check failed. WORKDIR holds the sleepers' pid files (A.pid, B.pid, C.pid).
"""
import collections
import json
import os
import sys

results = []


def check(name, ok, why=""):
    results.append(ok)
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)))


def pid_of(work, name):
    with open(os.path.join(work, name + ".pid")) as f:
        return int(f.read().strip())


def main():
    log_path, broken_path, work = sys.argv[1:4]
    raw = open(log_path, "rb").read()
    lines = []
    parse_ok = True
    for n, line in enumerate(raw.split(b"\n")[:-1], 1):
        try:
            obj = json.loads(line.decode("utf-8"))
            parse_ok &= all(k in obj for k in ("seq", "caller_pid", "t_ms", "fn"))
            lines.append(obj)
        except (ValueError, UnicodeDecodeError) as e:
            parse_ok = False
            print("  line %d: %s" % (n, e))
    check("log_is_json_lines", parse_ok and raw.endswith(b"\n") and len(lines) > 50,
          "%d lines" % len(lines))
    by_pid = collections.defaultdict(list)
    for obj in lines:
        by_pid[obj["caller_pid"]].append(obj["seq"])
    check("seq_in_order", all(s == list(range(1, len(s) + 1)) for s in by_pid.values()),
          "seq must count 1, 2, 3... per process")
    bad = [b for b in raw if (b < 0x20 and b != 0x0A) or b == 0x7F]
    check("no_raw_control_bytes", not bad, "found %r" % bad[:5])

    def find(fn, **want):
        return [o for o in lines if o["fn"] == fn and all(o.get(k) == v for k, v in want.items())]

    a, b, c = (pid_of(work, n) for n in ("A", "B", "C"))

    msg = find("WTSSendMessageW", session=2, wait=False)
    check("message_lengths_recorded",
          len(msg) == 1 and msg[0]["title"] == "Notice" and msg[0]["title_len_passed"] == 12
          and msg[0]["title_len_actual"] == 12 and msg[0]["message_len_passed"] == 46
          and msg[0]["message_len_actual"] == 44 and msg[0]["style"] == 0x30
          and msg[0]["timeout_s"] == 30 and msg[0]["response"] == 32001, repr(msg))
    hostile = find("WTSSendMessageW", session=2, wait=True)
    check("message_text_escaped_roundtrip",
          len(hostile) == 1 and hostile[0]["message"] == 'line1\r\nline2 "q" \x1b[31m'
          and hostile[0]["response"] == 6, repr(hostile))

    kinds = collections.Counter(o["kind"] for o in find("violation"))
    expected = collections.Counter({k: 1 for k in (
        "ex_block_freed_with_WTSFreeMemory", "wrong_type_class", "wrong_entry_count",
        "double_free", "unknown_pointer", "unknown_server_handle",
        "server_handle_used_after_close", "server_handle_closed_twice")})
    check("violations_recorded", kinds == expected, repr(dict(kinds)))

    summary = lines[-1] if lines else {}
    check("summary_last_line",
          summary.get("fn") == "summary" and summary.get("process_exit") is True
          and summary.get("blocks_never_freed") == 1
          and summary["never_freed"][0]["fn"] == "WTSQuerySessionInformationW"
          and summary.get("handles_never_closed") == 1 and summary.get("violations") == 8,
          repr(summary))
    leak_seq = summary.get("never_freed", [{}])[0].get("seq")
    leak_line = [o for o in lines if o["seq"] == leak_seq]
    check("summary_names_the_leaking_call",
          len(leak_line) == 1 and leak_line[0]["fn"] == "WTSQuerySessionInformationW"
          and leak_line[0]["info_class"] == 7, repr(leak_line))

    ev = find("event", event="session_logged_off", session=3)
    check("logoff_event_ends_processes",
          len(ev) == 1 and c in ev[0]["ended_pids"] and 40001 in ev[0]["ended_pids"], repr(ev))
    check("exit_event", len(find("event", event="process_exited", pid=b)) == 1, "no event for B")
    ev8 = find("event", event="session_logged_off", session=8)
    check("survives_logoff_not_ended", len(ev8) == 1 and 40003 not in ev8[0]["ended_pids"],
          repr(ev8))

    term_a = find("WTSTerminateProcess", pid=a)
    check("terminate_real_recorded",
          len(term_a) == 1 and term_a[0]["real"] is True and term_a[0]["result"] is True
          and term_a[0]["exit_code"] == 7 and term_a[0]["target_sid"].endswith("-1002"),
          repr(term_a))
    term_r = find("WTSTerminateProcess", pid=50002)
    check("terminate_reused_pid_recorded",
          len(term_r) == 1 and term_r[0]["reused"] is True
          and term_r[0]["target_sid"] == "S-1-5-18", repr(term_r))
    enum3 = find("WTSEnumerateProcessesExW", server="rdsh-admin", enumeration=3)
    check("reuse_visible_in_enumeration",
          len(enum3) == 1 and enum3[0].get("reused_pids") == [50002], repr(enum3))

    deny = find("WTSLogoffSession", server="RDSH-USER", session=1)
    check("nonadmin_denial_recorded",
          len(deny) == 1 and deny[0]["result"] is False and deny[0]["error"] == 5, repr(deny))
    down = find("WTSEnumerateSessionsW", server="rdsh-down")
    check("unreachable_recorded", len(down) == 1 and down[0]["error"] == 1722, repr(down))
    old = find("WTSOpenServerW", name="rdsh-old")
    check("open_null_recorded",
          len(old) == 1 and old[0]["handle"] is None and old[0]["error"] == 1722, repr(old))
    wait = find("WTSLogoffSession", session=8)
    check("logoff_wait_recorded",
          len(wait) == 1 and wait[0]["wait"] is True and wait[0]["waited_ms"] >= 250, repr(wait))
    misuse = find("WTSQuerySessionInformationW", server="rdsh-admin", current_session=True)
    check("remote_current_session_flagged",
          len(misuse) == 1 and misuse[0].get("misuse_current_session_on_remote") is True,
          repr(misuse))
    ni = find("WTSQueryUserToken")
    check("not_implemented_recorded",
          len(ni) == 1 and ni[0]["not_implemented"] is True and ni[0]["error"] == 120, repr(ni))

    broken = [json.loads(x) for x in open(broken_path, "rb").read().splitlines()]
    check("broken_state_recorded",
          any("unknown key" in o.get("state_error", "") and o["fn"] == "WTSEnumerateSessionsW"
              and o["error"] == 13 for o in broken), repr(broken))

    passed = sum(results)
    print("record: %d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
