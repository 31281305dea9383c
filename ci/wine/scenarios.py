#!/usr/bin/env python3
"""End-to-end scenarios: the real logoff-users.exe under Wine, against the wtsapi32.dll
stand-in (ci/wine/wtsapi32/), each asserting the exit code, the JSON report and what the
stand-in recorded.

Run by ci/windows.sh, which builds everything and prepares the Wine prefix (the stand-in in
its system32, WINEDLLOVERRIDES="wtsapi32=n;..."). Usage:

    scenarios.py --exe logoff-users.exe --probe wts_probe.exe --sleeper standin_sleeper.exe \
                 --jobwrap jobwrap.exe --work DIR [--only NAME]

Prints one "PASS name" or "FAIL name: why" line per scenario and ends with
"scenarios: N passed, M failed"; exits 1 when M is not 0.

The real processes a scenario needs are standin_sleeper.exe processes it starts itself (the
stand-in attributes them to a SID and session); at the end of each scenario it ends those
still running, by their own Popen handle, never by name.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback

RUN_TIMEOUT = 60
GUEST = "S-1-5-21-0-0-0-501"  # Wine resolves this SID to VM\Guest (see README)
CAROL = "S-1-5-21-1000-2000-3000-1003"
BOB = "S-1-5-21-1000-2000-3000-1002"
SYSTEM = "S-1-5-18"

ARGS = None
SCENARIOS = []
ALL_RECORDS = []  # every record file written, for the memory-ownership scenario


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


class Check(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Check(what)


# --- states ------------------------------------------------------------------------------


def session(sid, user, domain="CORP", state="WTSActive", **kw):
    s = {"id": sid, "station": f"RDP-Tcp#{sid}", "user": user, "domain": domain, "state": state,
         "protocol": 2, "logoff_delay_ms": 200, "disconnect_delay_ms": 200}
    s.update(kw)
    return s


def machine(current=1, sessions=None, processes=None, servers=None):
    """The usual local machine: services in session 0, the admin running the tool on the
    console (session 1), bob with two RDP sessions, alice with one."""
    if sessions is None:
        sessions = [
            session(2, "bob", client_name="BOB-PC", client_address="10.1.2.3", logon_ago=7200,
                    last_input_ago=300),
            session(3, "bob", state="WTSDisconnected", logon_ago=9000, disconnect_ago=4000),
            session(4, "alice", last_input_ago=10800),
        ]
    base = [
        {"id": 0, "station": "Services", "state": "WTSDisconnected"},
        {"id": 1, "station": "Console", "user": "Administrator", "domain": "VM", "state": "WTSActive",
         "protocol": 0},
        {"id": 65536, "station": "RDP-Tcp", "state": "WTSListen"},
    ]
    procs = [
        {"pid": 620, "session": 0, "sid": SYSTEM, "name": "services.exe"},
        {"pid": 4100, "session": 2, "sid": BOB, "name": "excel.exe"},
    ]
    st = {"version": 1, "current_session": current,
          "servers": {"local": {"sessions": base + sessions, "processes": procs + (processes or [])}}}
    st["servers"].update(servers or {})
    return st


def remote(sessions=None, processes=None, **kw):
    srv = {"sessions": sessions if sessions is not None else [session(2, "bob"), session(3, "alice")],
           "processes": [{"pid": 620, "session": 0, "sid": SYSTEM, "name": "services.exe"}]
           + (processes or [])}
    srv.update(kw)
    return srv


# --- running ----------------------------------------------------------------------------


def winpath(path):
    return "Z:" + path.replace("/", "\\")


class Scene:
    """One scenario's directory, state, sleepers and runs."""

    def __init__(self, name):
        self.dir = os.path.join(ARGS.work, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.sleepers = {}
        self.runs = 0

    def state(self, st):
        self.state_path = os.path.join(self.dir, "state.json")
        with open(self.state_path, "w") as f:
            json.dump(st, f, indent=1)

    def sleeper(self, name, seconds=300):
        """Starts a real Wine process; returns its pid file (for the state)."""
        pid_file = os.path.join(self.dir, name + ".pid")
        p = subprocess.Popen(["wine", ARGS.sleeper, winpath(pid_file), str(seconds)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.sleepers[name] = p
        return pid_file

    def wait_sleepers(self):
        for name, p in self.sleepers.items():
            pid_file = os.path.join(self.dir, name + ".pid")
            deadline = time.time() + 30
            while not os.path.exists(pid_file):
                check(p.poll() is None, f"sleeper {name} exited early ({p.returncode})")
                check(time.time() < deadline, f"sleeper {name} wrote no pid file")
                time.sleep(0.05)

    def winpid(self, name):
        with open(os.path.join(self.dir, name + ".pid")) as f:
            return int(f.read().strip())

    def alive(self, name):
        return self.sleepers[name].poll() is None

    def terminated(self, name, run, wait=5):
        """Whether the sleeper was ended by TerminateProcess(1): its Unix process is gone
        (wineserver kills it) and the stand-in, through its own handle, saw exit code 1."""
        try:
            self.sleepers[name].wait(wait)
        except subprocess.TimeoutExpired:
            return False
        pid = self.winpid(name)
        return any(c.get("event") == "process_exited" and c["pid"] == pid and c["exit_code"] == 1
                   for c in run.records)

    def cleanup(self):
        for p in self.sleepers.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    def run(self, *args, env=None, state=True):
        """Runs the tool; returns a Run."""
        self.runs += 1
        record = os.path.join(self.dir, f"record{self.runs}.jsonl")
        e = dict(os.environ)
        e.pop("LOGOFF_USERS", None)
        if state:
            e["WTS_STANDIN_STATE"] = self.state_path
        e["WTS_STANDIN_LOG"] = record
        e.update(env or {})
        r = Run(args, wine(self.dir, f"run{self.runs}", [ARGS.exe, *args], e), record)
        ALL_RECORDS.append(record)
        with open(os.path.join(self.dir, f"run{self.runs}.txt"), "w") as f:
            f.write(f"args: {args}\nexit: {r.code}\nelapsed: {r.elapsed:.2f}s\n")
        check("panicked" not in r.out + r.err, f"{args}: panicked: {r.err[-2000:]}")
        return r


def wine(directory, name, argv, env):
    """Runs argv under Wine; returns (exit code, stdout, stderr, seconds). Output goes to
    files, not pipes: a Wine system process started along with a program may inherit its
    handles and outlive it, and a pipe would then never reach its end."""
    out_path, err_path = os.path.join(directory, name + ".out"), os.path.join(directory, name + ".err")
    started = time.time()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            code = subprocess.run(["wine", *argv], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  timeout=RUN_TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            raise Check(f"{' '.join(argv)}: no answer within {RUN_TIMEOUT}s (hang)")
    elapsed = time.time() - started
    with open(out_path, "rb") as out, open(err_path, "rb") as err:
        text = [f.read().decode("utf-8", "replace").replace("\r\n", "\n") for f in (out, err)]
    return code, text[0], text[1], elapsed


class Run:
    def __init__(self, args, result, record):
        self.args = args
        self.code, self.out, self.err, self.elapsed = result
        self.records = []
        if os.path.exists(record):
            with open(record, encoding="utf-8") as f:
                self.records = [json.loads(line) for line in f if line.strip()]

    def expect(self, *codes):
        check(self.code in codes, f"{self.args}: exit {self.code}, expected {codes}\n"
              f"stdout: {self.out[-3000:]}\nstderr: {self.err[-1500:]}")
        return self

    @property
    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise Check(f"{self.args}: stdout is not JSON ({e}): {self.out[:500]}")

    def calls(self, fn, **match):
        return [r for r in self.records if r["fn"] == fn and all(r.get(k) == v for k, v in match.items())]

    def sessions_acted(self, fn="WTSLogoffSession", server="local"):
        return sorted(r["session"] for r in self.calls(fn, server=server) if r["result"])

    def host(self, name="localhost"):
        for h in self.json["hosts"]:
            if h["host"] == name:
                return h
        raise Check(f"no host {name} in the report: {[h['host'] for h in self.json['hosts']]}")


def acted_nothing(run):
    for fn in ("WTSLogoffSession", "WTSDisconnectSession", "WTSSendMessageW", "WTSTerminateProcess"):
        check(not run.calls(fn), f"{run.args}: {fn} was called: {run.calls(fn)}")


def outcome(run, host="localhost"):
    return {u["requested"] + ("|" + u["user"] if u["user"] else ""): u["outcome"] for u in run.host(host)["users"]}


# --- the scenarios -----------------------------------------------------------------------


@scenario
def probe(sc):
    """wts_probe: the backend through the library, and the token facts the tool acts on."""
    sc.state(machine())
    e = dict(os.environ, WTS_STANDIN_STATE=sc.state_path, WTS_STANDIN_LOG=os.path.join(sc.dir, "probe.jsonl"))
    code, out, err, _ = wine(sc.dir, "probe", [ARGS.probe], e)
    check(code == 0, f"probe exit {code}: {err[-1000:]}")
    d = json.loads(out)
    ALL_RECORDS.append(os.path.join(sc.dir, "probe.jsonl"))
    check(d["backend"] == "wts" and d["host"] == "localhost", d)
    check("ok" in d["check_privilege"], d["check_privilege"])
    check(d["current_session"] == {"ok": "1"}, d["current_session"])
    check([s["id"] for s in d["sessions"]["ok"]] == ["1", "2", "3", "4"], d["sessions"])
    t = d["token"]
    check(t["admin"] == {"ok": True}, t)  # Wine's token holds BUILTIN\Administrators
    check("ok" in t["debug_privilege"], t)
    check(t["user_sid"]["ok"].startswith("S-1-5-21-"), t)
    check("\\" in t["invoker"], t)
    check(t["local_names"], t)
    with open(os.path.join(ARGS.work, "facts.json"), "w") as f:
        json.dump(t, f)


def facts():
    with open(os.path.join(ARGS.work, "facts.json")) as f:
        return json.load(f)


@scenario
def list_sessions(sc):
    """--list: the sessions as the state has them, in one enumeration, every block freed."""
    sc.state(machine())
    r = sc.run("--list", "--format", "json").expect(0)
    sessions = {s["id"]: s for s in r.json["hosts"][0]["sessions"]}
    check(sorted(sessions) == ["1", "2", "3", "4"], f"services, listener skipped: {sorted(sessions)}")
    b = sessions["2"]
    check((b["user"], b["domain"], b["state"], b["type"]) == ("bob", "CORP", "active", "rdp"), b)
    check(b["remote_host"] == "10.1.2.3", b)
    check(abs(b["idle_seconds"] - 300) <= 5, b)
    check(abs(time.time() - 7200 - b["logon_time"]) <= 30, b)
    check(sessions["3"]["state"] == "disconnected", sessions["3"])
    check(sessions["1"]["type"] == "console", sessions["1"])
    check(len(r.calls("WTSEnumerateSessionsExW")) == 1, "one enumeration")
    check(not r.calls("WTSEnumerateSessionsW"), "no per-session enumeration of the old kind")
    frees = r.calls("WTSFreeMemoryExW", block_fn="WTSEnumerateSessionsExW")
    check(len(frees) == 1 and frees[0]["type_class"] == 2 and frees[0]["result"], frees)


@scenario
def dry_run_all(sc):
    """--dry-run ALL: plans every user session but the tool's own, acts on nothing."""
    sc.state(machine())
    r = sc.run("--dry-run", "ALL", "--format", "json").expect(0)
    acted_nothing(r)
    plan = r.host()["plan"]
    planned = sorted(s["id"] for u in plan["users"] for s in u["sessions"])
    check(planned == ["2", "3", "4"], planned)
    check([s["session_id"] for s in plan["skipped"]] == ["1"], plan["skipped"])
    check(set(outcome(r).values()) == {"planned"}, outcome(r))


@scenario
def named_user_two_sessions(sc):
    """bob: both his sessions logged off (bWait FALSE), verified; polls cost one call each."""
    sc.state(machine())
    r = sc.run("bob", "--format", "json").expect(0)
    check(r.sessions_acted() == [2, 3], r.sessions_acted())
    check(all(c["wait"] is False for c in r.calls("WTSLogoffSession")), "bWait FALSE")
    check(outcome(r) == {"bob|CORP\\bob": "logged_off"}, outcome(r))
    v = r.host()["verification"]
    check(v["verified"] and not v["timed_out"], v)
    # Defect 9: after the last logoff, verification asks nothing per session.
    last = max(i for i, c in enumerate(r.records) if c["fn"] == "WTSLogoffSession")
    after = r.records[last + 1:]
    check(not [c for c in after if c["fn"] == "WTSQuerySessionInformationW"],
          "no per-session queries while polling")
    polls = [c for c in after if c["fn"] == "WTSEnumerateSessionsExW"]
    check(len(polls) == v["polls"], f"one enumeration per poll: {len(polls)} vs {v['polls']}")
    check(any(e.get("event") == "session_logged_off" for e in r.records), "the stand-in ended them")


@scenario
def all_spares_own_and_services(sc):
    """ALL from the console (session 1): 2, 3, 4 logged off; session 1 and session 0 never."""
    sc.state(machine())
    r = sc.run("ALL", "--format", "json").expect(0)
    check(r.sessions_acted() == [2, 3, 4], r.sessions_acted())
    check(not [c for c in r.calls("WTSLogoffSession") if c["session"] in (0, 1)], "0 and 1 untouched")
    skipped = r.host()["plan"]["skipped"]
    check([(s["session_id"], "running this tool" in s["reason"]) for s in skipped] == [("1", True)], skipped)
    check(r.host()["verification"]["verified"], r.host()["verification"])


@scenario
def domain_and_upn(sc):
    """CORP\\jsmith and jsmith@corp.example.com: only CORP's jsmith, never LAB's."""
    st = machine(sessions=[session(5, "jsmith", "CORP"), session(6, "jsmith", "LAB")])
    sc.state(st)
    r = sc.run("CORP\\jsmith", "--format", "json").expect(0)
    check(r.sessions_acted() == [5], r.sessions_acted())
    sc.state(st)  # a fresh machine: the state is read anew by every run
    r = sc.run("jsmith@corp.example.com", "--format", "json").expect(0)
    check(r.sessions_acted() == [5], r.sessions_acted())
    check(outcome(r) == {"jsmith@corp.example.com|CORP\\jsmith": "logged_off"}, outcome(r))
    r = sc.run("--dry-run", "jsmith", "--format", "json").expect(0)
    planned = sorted(s["id"] for u in r.host()["plan"]["users"] for s in u["sessions"])
    check(planned == ["5", "6"], f"a bare name matches both domains: {planned}")


@scenario
def session_refuses_to_go(sc):
    """A logoff that is accepted and never happens: exit 1 after --timeout, the session named."""
    sc.state(machine(sessions=[session(7, "carol", refuse_logoff=True), session(8, "dave")]))
    r = sc.run("carol,dave", "--timeout", "2s", "--format", "json").expect(1)
    check(r.sessions_acted() == [7, 8], r.sessions_acted())
    v = r.host()["verification"]
    check(v["timed_out"] and not v["verified"], v)
    check([(x["user"], x["sessions"]) for x in v["remaining"]] == [("CORP\\carol", ["7"])], v["remaining"])
    check(outcome(r) == {"carol|CORP\\carol": "failed", "dave|CORP\\dave": "logged_off"}, outcome(r))
    check(r.elapsed >= 2.0, f"waited the timeout: {r.elapsed:.2f}s")
    check(r.elapsed < 15, f"not much longer: {r.elapsed:.2f}s")


@scenario
def fallback_kills_real_processes(sc):
    """Guest has processes and no session: both real Wine processes end (exit code 1), a
    bystander's process in the same session lives."""
    procs = [
        {"pid_file": sc.sleeper("g1"), "session": 5, "sid": GUEST},
        {"pid_file": sc.sleeper("g2"), "session": 5, "sid": GUEST},
        {"pid_file": sc.sleeper("bystander"), "session": 5, "sid": CAROL},
    ]
    sc.wait_sleepers()
    sc.state(machine(processes=procs))
    r = sc.run("Guest", "--format", "json").expect(0)
    acts = r.host()["actions"]
    check([(a["action"], a["reason"], a["result"], a["signalled"], a["method"]) for a in acts]
          == [("terminate_processes", "fallback", "requested", 2, "TerminateProcess")], acts)
    check(sc.terminated("g1", r) and sc.terminated("g2", r), "TerminateProcess(1) ended both")
    check(sc.alive("bystander"), "the bystander lives")
    check(outcome(r) == {"Guest|VM\\Guest": "logged_off"}, outcome(r))
    check(r.host()["verification"]["verified"], r.host()["verification"])


@scenario
def pid_reused_is_not_terminated(sc):
    """A pid reused between the termination's listing and its TerminateProcess: the handle
    is opened, a listing taken while holding it shows another owner, so it is closed
    untouched; the other process of the user is terminated."""
    reused = {"from_enum": 3, "session": 0, "sid": SYSTEM, "name": "svchost.exe"}
    procs = [
        {"pid_file": sc.sleeper("g1"), "session": 5, "sid": GUEST},
        {"pid_file": sc.sleeper("r1"), "session": 5, "sid": GUEST, "reuse": reused},
    ]
    sc.wait_sleepers()
    sc.state(machine(processes=procs))
    r = sc.run("Guest", "--format", "json").expect(0)
    r1 = sc.winpid("r1")
    enums = r.calls("WTSEnumerateProcessesExW", any_session=True)
    as_guest = [e["enumeration"] for e in enums if r1 in e["pids"] and r1 not in e.get("reused_pids", [])]
    as_other = [e["enumeration"] for e in enums if r1 in e.get("reused_pids", [])]
    # Listed as Guest's by the snapshot and by the termination's first listing, then, after
    # the open, under the new owner.
    check(len(as_guest) >= 2 and as_other and min(as_other) == max(as_guest) + 1, (as_guest, as_other))
    check(sc.alive("r1"), "the process that took the pid lives")
    check(sc.terminated("g1", r), "the user's other process was terminated")
    check(r.host()["actions"][0]["signalled"] == 1, r.host()["actions"])


@scenario
def server_unreachable(sc):
    """--server rdsh-down,rdsh1: the unreachable host is an error (exit 1), the other is done."""
    sc.state(machine(servers={"rdsh1": remote(), "rdsh-down": {"unreachable": True}}))
    r = sc.run("--server", "rdsh-down,rdsh1", "bob", "--format", "json").expect(1)
    down = r.host("rdsh-down")
    check(down["error"] and "rdsh-down" in down["error"], down)
    check("1722" in down["error"] or "RPC" in down["error"], down["error"])
    check(r.sessions_acted(server="rdsh1") == [2], r.calls("WTSLogoffSession"))
    check(outcome(r, "rdsh1") == {"bob|CORP\\bob": "logged_off"}, outcome(r, "rdsh1"))
    check(r.json["summary"]["hosts_failed"] == 1, r.json["summary"])


@scenario
def server_without_admin_rights(sc):
    """A host where the account is not an administrator: exit 3, nothing done there, and,
    with several hosts, nothing done anywhere (exit 3 means nothing was done)."""
    user = {"caller_is_admin": False,
            "caller": {"user": "helpdesk", "domain": "CORP", "sid": "S-1-5-21-1000-2000-3000-1105"}}
    st = machine(servers={"rdsh1": remote(), "rdsh-user": remote(**user),
                          "rdsh-deny": remote(non_admin_processes="deny", **user)})
    for servers in ("rdsh-user", "rdsh-deny", "rdsh1,rdsh-user"):
        sc.state(st)
        r = sc.run("--server", servers, "bob", "--format", "json").expect(3)
        acted_nothing(r)
        check("not an administrator on rdsh-" in (r.json["error"] or ""), r.json["error"])
    # The probe is a process listing; the logoff was never tried.
    check(r.calls("WTSEnumerateProcessesExW", server="rdsh-user"), "probed with a process listing")


@scenario
def server_naming_this_machine_is_local(sc):
    """--server localhost (and ., 127.0.0.1, ::1, this machine's names in any case): no
    WTSOpenServerW, the tool's own session spared as in a local run."""
    names = facts()["local_names"]
    spellings = [".", "127.0.0.1", "::1", "[::1]", "LocalHost"] + [n.lower() for n in names] + [n.upper() for n in names]
    # Were they opened by name, Windows would answer for this machine (as the stand-in then
    # does): the tool would then treat its own session as another host's.
    alias = {n: {"alias_of": "local"} for n in ["localhost", *spellings]}
    st = machine(servers=alias)
    sc.state(st)
    r = sc.run("--server", "localhost", "ALL", "--format", "json").expect(0)
    check(not r.calls("WTSOpenServerW"), r.calls("WTSOpenServerW"))
    check(r.sessions_acted() == [2, 3, 4], r.sessions_acted())
    # Named three times, this machine is acted on once, under the first name.
    sc.state(st)
    r = sc.run("--server", "localhost,.,127.0.0.1", "ALL", "--format", "json").expect(0)
    logoffs = sorted(c["session"] for c in r.calls("WTSLogoffSession"))
    check(logoffs == [2, 3, 4], f"each session logged off once: {logoffs}")
    check([h["host"] for h in r.json["hosts"]] == ["localhost"], r.json["hosts"])
    for host in spellings:
        sc.state(st)
        r = sc.run("--server", host, "--dry-run", "ALL", "--format", "json").expect(0)
        check(not r.calls("WTSOpenServerW"), f"{host}: {r.calls('WTSOpenServerW')}")
        skipped = [s["session_id"] for s in r.host(host)["plan"]["skipped"]]
        check(skipped == ["1"], f"{host}: own session spared: {skipped}")


@scenario
def message_with_byte_lengths(sc):
    """--message: WTSSendMessageW to each planned session, lengths in bytes without the NUL
    (non-ASCII and a surrogate pair included), bWait FALSE, then the logoff after the grace."""
    sc.state(machine())
    text = "Wartung um 22:00 – bitte speichern 💾"
    r = sc.run("bob", "--message", text, "--grace", "1s", "--format", "json").expect(0)
    msgs = r.calls("WTSSendMessageW")
    check(sorted(m["session"] for m in msgs) == [2, 3], msgs)
    for m in msgs:
        check(m["title_len_passed"] == m["title_len_actual"], m)
        check(m["message_len_passed"] == m["message_len_actual"], m)
        check(text in m["message"], m)
        check(m["wait"] is False and m["result"], m)
    check(len(text.encode("utf-16-le")) <= msgs[0]["message_len_actual"], "bytes, not characters")
    first_logoff = min(c["t_ms"] for c in r.calls("WTSLogoffSession"))
    check(first_logoff - max(m["t_ms"] for m in msgs) >= 900, "the logoff waits out the grace")
    check(r.json["summary"]["messages_delivered"] == 2, r.json["summary"])
    check(r.sessions_acted() == [2, 3], r.sessions_acted())


@scenario
def disconnect(sc):
    """--disconnect: WTSDisconnectSession, never a logoff; the sessions stay, disconnected."""
    sc.state(machine())
    r = sc.run("--disconnect", "alice", "--format", "json").expect(0)
    check(r.sessions_acted("WTSDisconnectSession") == [4], r.calls("WTSDisconnectSession"))
    check(not r.calls("WTSLogoffSession"), "no logoff")
    check(outcome(r) == {"alice|CORP\\alice": "disconnected"}, outcome(r))
    check(any(e.get("event") == "session_disconnected" and e["session"] == 4 for e in r.records), "disconnected")


@scenario
def session_filters(sc):
    """--disconnected-only and --idle-over, from the state's connect states and times."""
    st = machine()
    sc.state(st)
    r = sc.run("--disconnected-only", "ALL", "--format", "json").expect(0)
    check(r.sessions_acted() == [3], r.sessions_acted())
    reasons = {s["session_id"]: s["reason"] for s in r.host()["plan"]["skipped"]}
    check(reasons.get("2") == "not disconnected (state active)", reasons)
    sc.state(st)
    r = sc.run("--idle-over", "1h", "ALL", "--format", "json").expect(0)
    # bob's 2: idle 5 min; bob's 3: disconnected 4000 s ago; alice's 4: idle 3 h.
    check(r.sessions_acted() == [3, 4], r.sessions_acted())
    reasons = {s["session_id"]: s["reason"] for s in r.host()["plan"]["skipped"]}
    check(reasons.get("2", "").startswith("idle 5m"), reasons)


@scenario
def bad_input(sc):
    """Bad input: exit 2, and not one WTS call recorded."""
    sc.state(machine())
    cases = [(["--format", "json"], {"LOGOFF_USERS": "@Users@"}), (["ALL,bob"], {}), (["--users", " , "], {}),
             (["bob", "--timeout", "soon"], {}), (["bob"], {"LOGOFF_USERS": "alice"})]
    for args, env in cases:
        r = sc.run(*args, env=env).expect(2)
        calls = [c for c in r.records if c["fn"] != "summary"]
        check(not calls, f"{args} {env}: recorded {calls}")
        check(all(c["state_loaded"] is False for c in r.records), f"{args}: the state was read")


@scenario
def system_in_session_0(sc):
    """An RMM agent: SYSTEM in session 0. ALL takes every user session (session 1 too); with
    --include-services the target's session-0 processes are terminated and the run ends at
    once with exit 0; without it they are spared and not waited for."""
    sc.state(machine(current=0))
    r = sc.run("ALL", "--format", "json").expect(0)
    check(r.sessions_acted() == [1, 2, 3, 4], r.sessions_acted())
    procs = [{"pid_file": sc.sleeper("s0"), "session": 0, "sid": GUEST},
             {"pid_file": sc.sleeper("s5"), "session": 5, "sid": GUEST}]
    sc.wait_sleepers()
    sc.state(machine(current=0, processes=procs))
    r = sc.run("Guest", "--include-services", "--timeout", "20s", "--format", "json").expect(0)
    check(sc.terminated("s0", r) and sc.terminated("s5", r), "both terminated")
    check(r.host()["actions"][0]["signalled"] == 2, r.host()["actions"])
    check(r.elapsed < 10, f"no wait for a spared process: {r.elapsed:.1f}s")
    procs = [{"pid_file": sc.sleeper("t0"), "session": 0, "sid": GUEST},
             {"pid_file": sc.sleeper("t5"), "session": 5, "sid": GUEST}]
    sc.wait_sleepers()
    sc.state(machine(current=0, processes=procs))
    r = sc.run("Guest", "--timeout", "20s", "--format", "json").expect(0)
    check(sc.terminated("t5", r) and sc.alive("t0"), "session 0 spared without --include-services")
    check(r.elapsed < 10, f"the spared process is not waited for: {r.elapsed:.1f}s")
    check(r.host()["plan"]["users"][0]["pids"] == [sc.winpid("t5")], r.host()["plan"]["users"])


@scenario
def own_session_process_spared(sc):
    """An admin in session 1: a target's process in session 1 is spared and not waited for."""
    procs = [{"pid_file": sc.sleeper("own"), "session": 1, "sid": GUEST},
             {"pid_file": sc.sleeper("other"), "session": 5, "sid": GUEST}]
    sc.wait_sleepers()
    sc.state(machine(processes=procs))
    r = sc.run("Guest", "--timeout", "20s", "--format", "json").expect(0)
    check(sc.terminated("other", r), "the process in session 5 was terminated")
    check(sc.alive("own"), "the process in the tool's session lives")
    check(r.elapsed < 10, f"not waited for: {r.elapsed:.1f}s")
    check(r.host()["verification"]["verified"], r.host()["verification"])


@scenario
def remote_fallback_pid_reuse(sc):
    """On a remote host (WTSTerminateProcess takes a bare pid), each pid is confirmed by a
    listing of its session right before the call: a pid reused since is left alone."""
    reused = {"from_enum": 4, "session": 0, "sid": SYSTEM, "name": "svchost.exe"}
    rdsh = remote(processes=[{"pid": 5001, "session": 3, "sid": GUEST, "name": "notepad.exe"},
                             {"pid": 5002, "session": 3, "sid": GUEST, "name": "calc.exe", "reuse": reused},
                             {"pid": 5003, "session": 3, "sid": CAROL, "name": "word.exe"}])
    sc.state(machine(servers={"rdsh1": rdsh}))
    r = sc.run("--server", "rdsh1", "Guest", "--format", "json").expect(0)
    kills = r.calls("WTSTerminateProcess", server="rdsh1")
    check([(k["pid"], k["reused"], k["result"]) for k in kills] == [(5001, False, True)], kills)
    first_kill = min(i for i, c in enumerate(r.records) if c["fn"] == "WTSTerminateProcess")
    before = [c for c in r.records[:first_kill] if c["fn"] == "WTSEnumerateProcessesExW"]
    check(before[-1]["session_filter"] == 3, f"confirmed by its session's listing: {before[-1]}")
    rounds = [c for c in before if c["any_session"]]
    check(5002 in rounds[-1]["pids"] and 5002 not in rounds[-1].get("reused_pids", []),
          "5002 was the user's when the round listed it")
    a = r.host("rdsh1")["actions"][0]
    check((a["method"], a["signalled"]) == ("WTSTerminateProcess", 1), a)


@scenario
def event_log_names_the_token_user(sc):
    """The audit records: ReportEventW gets the token's user SID, and the text names the
    token's account, whatever USERNAME and USERDOMAIN say."""
    sc.state(machine())
    env = {"USERNAME": "mallory", "USERDOMAIN": "EVIL", "WINEDEBUG": "fixme+advapi,trace+eventlog"}
    r = sc.run("alice", env=env).expect(0)
    reports = [l for l in r.err.splitlines() if "ReportEventW (" in l]
    check(reports, f"Wine traced no ReportEventW: {r.err[-1500:]}")
    for line in reports:
        args = line.split("ReportEventW (", 1)[1].split(",")
        check(int(args[4], 16) != 0, f"a user SID is passed: {line}")
    texts = [l for l in r.err.splitlines() if "eventlog:ReportEventW" in l and "invoked_by=" in l]
    check(len(texts) >= 2, f"one record per action and one for the run: {texts}")
    want = facts()["invoker"].replace("\\", "\\\\")
    for t in texts:
        check(f"invoked_by={want}" in t and "mallory" not in t, t)


# --- issue 18: drain, profiles -----------------------------------------------------------

TS_KEY = r"HKLM\System\CurrentControlSet\Control\Terminal Server"
RECORD_KEY = r"HKLM\Software\logoff-users\Drain"
GUEST_HIVE = "HKU\\" + GUEST
FSLOGIX = r"HKLM\Software\FSLogix"


def reg(sc, *args, check_ok=True):
    """`wine reg ARGS`; returns (exit code, output)."""
    sc.regs = getattr(sc, "regs", 0) + 1
    code, out, err, _ = wine(sc.dir, f"reg{sc.regs}", ["reg", *args], dict(os.environ))
    if check_ok:
        check(code == 0, f"reg {' '.join(args)}: exit {code}: {out}{err}")
    return code, out


def drain_mode(sc):
    """TSServerDrainMode as `reg query` shows it, or None when there is none."""
    code, out = reg(sc, "query", TS_KEY, "/v", "TSServerDrainMode", check_ok=False)
    if code != 0:
        return None
    for line in out.splitlines():
        if "TSServerDrainMode" in line:
            return int(line.split()[-1], 16)
    raise Check(f"no TSServerDrainMode in {out!r}")


def set_drain_mode(sc, value):
    if value is None:
        reg(sc, "delete", TS_KEY, "/v", "TSServerDrainMode", "/f", check_ok=False)
    else:
        reg(sc, "add", TS_KEY, "/v", "TSServerDrainMode", "/t", "REG_DWORD", "/d", str(value), "/f")


@scenario
def drain_and_undrain(sc):
    """--drain sets TSServerDrainMode = 1 (as change logon /drainuntilrestart does) and
    records the previous value in a volatile key; --undrain writes exactly that back (or
    deletes the value where there was none); a drain mode this tool did not set is never
    changed, and --undrain then exits 1."""
    sc.state(machine())
    try:
        for previous in (0, None):
            set_drain_mode(sc, previous)
            r = sc.run("--drain", "--format", "json").expect(0)
            d = r.host()["drain"]
            check((d["action"], d["draining"]) == ("drained", True), d)
            check(d["ours"]["previous_value"] == previous and d["ours"]["set_value"] == 1, d)
            check(drain_mode(sc) == 1, f"TSServerDrainMode is {drain_mode(sc)}")
            code, out = reg(sc, "query", RECORD_KEY, "/v", "Record")
            check('"set_value":1' in out.replace(" ", ""), out)
            acted_nothing(r)
            lst = sc.run("--list", "--format", "json").expect(0).json["hosts"][0]["drain"]
            check(lst["draining"] and lst["ours"] and "drain until restart" in lst["mechanism"], lst)
            check(sc.run("--drain", "--format", "json").expect(0).host()["drain"]["action"] == "already_drained", "")
            u = sc.run("--undrain", "--format", "json").expect(0).host()["drain"]
            check((u["action"], u["draining"]) == ("undrained", False), u)
            check(drain_mode(sc) == previous, f"restored {drain_mode(sc)}, was {previous}")
            check(reg(sc, "query", RECORD_KEY, check_ok=False)[0] != 0, "the record is gone")
        # An administrator's change logon /drain (2): left alone by both.
        set_drain_mode(sc, 2)
        r = sc.run("--drain", "bob", "--format", "json").expect(0)
        check(r.host()["drain"]["action"] == "already_draining", r.host()["drain"])
        check(r.sessions_acted() == [2, 3], "the logoff went on")
        r = sc.run("--undrain").expect(1)
        check("undrain: new logons are still refused" in r.out, r.out)
        check(drain_mode(sc) == 2, f"TSServerDrainMode is {drain_mode(sc)}")
        # Drain, warn, log off: the drain comes first and stays.
        set_drain_mode(sc, 0)
        sc.state(machine())
        r = sc.run("--drain", "alice", "--message", "patching", "--grace", "1s").expect(0)
        lines = r.out.splitlines()
        first = next(i for i, l in enumerate(lines) if l.startswith("drain: new logons refused"))
        check(first < next(i for i, l in enumerate(lines) if l.startswith("logging off")), r.out)
        check(drain_mode(sc) == 1, "the drain stays after the run")
        sc.run("--undrain").expect(0)
        check(drain_mode(sc) == 0, "undone")
    finally:
        set_drain_mode(sc, None)
        reg(sc, "delete", RECORD_KEY, "/f", check_ok=False)


def guest_machine():
    r"""VM\Guest (a SID Wine resolves) logged on in session 6, with a process there that
    carries the SID; CORP\bob in session 2, whose SID no one can resolve under Wine."""
    guest = session(6, "Guest", "VM", logoff_delay_ms=100)
    return machine(sessions=[guest, session(2, "bob")],
                   processes=[{"pid": 6100, "session": 6, "sid": GUEST, "name": "explorer.exe"}])


def later(seconds, *args):
    """Runs `wine reg ARGS` after `seconds`, in the background (the profile unloading)."""
    def go():
        subprocess.run(["wine", "reg", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    t = threading.Timer(seconds, go)
    t.start()
    return t


@scenario
def profile_unload(sc):
    r"""After the logoff the tool waits for HKEY_USERS\<SID> (and FSLogix's session state) to
    go: gone after 2 s -> profile_unloaded true; still there at the deadline -> false, the
    user failed, exit 1; a SID that cannot be resolved -> "unknown". Nothing is deleted."""
    try:
        reg(sc, "add", GUEST_HIVE, "/v", "loaded", "/d", "1", "/f")
        sc.state(guest_machine())
        t = later(2, "delete", GUEST_HIVE, "/f")
        r = sc.run("Guest", "--format", "json", "--timeout", "20s").expect(0)
        t.join()
        u = r.host()["users"][0]
        check((u["user"], u["outcome"], u["profile_unloaded"]) == ("VM\\Guest", "logged_off", True), u)
        check(r.elapsed >= 1.5, f"it waited for the hive: {r.elapsed:.1f}s")
        check(r.sessions_acted() == [6], r.sessions_acted())

        # Still loaded at the deadline: a failure with its own line, and the hive kept.
        reg(sc, "add", GUEST_HIVE, "/v", "loaded", "/d", "1", "/f")
        sc.state(guest_machine())
        r = sc.run("Guest", "--wait-profile", "2s").expect(1)
        check("PROFILE STILL LOADED after the timeout: VM\\Guest: HKEY_USERS\\" + GUEST in r.out, r.out)
        check("1 profile(s) still loaded (exit 1)" in r.out, r.out)
        check(reg(sc, "query", GUEST_HIVE, check_ok=False)[0] == 0, "the tool deleted the hive")
        reg(sc, "delete", GUEST_HIVE, "/f")

        # FSLogix installed and holding the container (RefCount 1) until it releases it.
        sessions_key = FSLOGIX + r"\Profiles\Sessions" + "\\" + GUEST
        reg(sc, "add", FSLOGIX + r"\Apps", "/v", "InstallPath", "/d", r"C:\FSLogix", "/f")
        reg(sc, "add", sessions_key, "/v", "RefCount", "/t", "REG_DWORD", "/d", "1", "/f")
        sc.state(guest_machine())
        t = later(2, "add", sessions_key, "/v", "RefCount", "/t", "REG_DWORD", "/d", "0", "/f")
        r = sc.run("Guest", "--timeout", "20s").expect(0)
        t.join()
        check("profile of VM\\Guest: unloaded (hive gone and FSLogix released it)" in r.out, r.out)
        check(r.elapsed >= 1.5, f"it waited for FSLogix: {r.elapsed:.1f}s")

        # bob's SID cannot be resolved here: unknown, not a failure.
        sc.state(guest_machine())
        r = sc.run("bob", "--format", "json").expect(0)
        check(r.host()["users"][0]["profile_unloaded"] == "unknown", r.host()["users"])
    finally:
        reg(sc, "delete", GUEST_HIVE, "/f", check_ok=False)
        reg(sc, "delete", FSLOGIX, "/f", check_ok=False)


# --- scheduled logoffs (issue 14) ----------------------------------------------------------
# The job's runner is a service that Wine's services.exe starts. Two Wine facts shape these:
# Wine ends the services of a prefix when its last ordinary program exits, so a "keeper"
# sleeper runs while a job waits (Windows has no such rule), and each scenario starts from
# one fresh services.exe (fresh_services); and Wine derives a file's DACL
# from its Unix mode bits (it does not keep the protected DACL the tool sets), so a job
# file is made untrusted with chmod. The machine is the fake backend's (--fake-state): the
# WTS side of a run is what the other scenarios show.


def fresh_services(sc):
    """Restarts this prefix's wineserver (every Wine process of the prefix is the
    scenarios' own), then starts the keeper: one services.exe, kept alive by it. After
    many runs a prefix can hold two services.exe (one that was told to shut down with the
    last program, and a new one); the service a job creates is then started by one and
    reports to the other, and StartServiceW times out (1053)."""
    subprocess.run(["wineserver", "-k"], timeout=30, check=False)
    subprocess.run(["wineserver", "-w"], timeout=30, check=False)
    subprocess.run(["wineserver", "-p"], timeout=30, check=True)
    sc.sleeper("keeper", 120)
    sc.wait_sleepers()


def fake_machine(sc):
    """A fake state (the fake backend's) with bob's two sessions and carol's one."""
    st = {"host": "localhost", "current_session": "1",
          "policy": {"services_session": "0", "spares_own_session": True},
          "sessions": [{"id": "2", "user": "bob", "domain": "CORP", "state": "active"},
                       {"id": "3", "user": "bob", "domain": "CORP", "state": "disconnected"},
                       {"id": "4", "user": "carol", "domain": "CORP", "state": "active"}],
          "processes": []}
    path = os.path.join(sc.dir, "fake.json")
    with open(path, "w") as f:
        json.dump(st, f)
    return path


def fake_actions(path):
    with open(path) as f:
        return [(a["action"], a.get("session")) for a in json.load(f).get("actions", [])]


def tool_args(sc, fake):
    return ["--fake-state", winpath(fake), "--job-dir", winpath(os.path.join(sc.dir, "jobs"))]


def pending(sc, fake):
    r = sc.run(*tool_args(sc, fake), "--pending", "--format", "json", state=False)
    return r, r.json


def wait_job(sc, fake, job, seconds=30):
    deadline = time.time() + seconds
    while True:
        _, doc = pending(sc, fake)
        j = next((x for x in doc["jobs"] if x["id"] == job), None)
        check(j is not None, f"no job {job}: {doc}")
        if j["state"] not in ("pending", "running"):
            return j
        check(time.time() < deadline, f"job {job} still {j['state']} after {seconds}s")
        time.sleep(0.5)


def service_exists(sc, name):
    code, out, err, _ = wine(sc.dir, "sc-query", ["sc", "query", name], dict(os.environ))
    return "SERVICE_NAME" in out


@scenario
def detach_survives_the_job_object(sc):
    """--detach run the way RMM agents run scripts, in a job object that kills everything in
    it when it closes: it returns within 2 s with exit 0; closing the job kills the canary
    next to it, and the job's service (started by the SCM, in no job) logs bob off at the due
    time, then deletes itself."""
    check(ARGS.jobwrap, "--jobwrap is needed")
    fresh_services(sc)
    fake = fake_machine(sc)
    result, out = os.path.join(sc.dir, "jobwrap.result"), os.path.join(sc.dir, "tool.out")
    canary = f"{winpath(ARGS.sleeper)} {winpath(os.path.join(sc.dir, 'canary.pid'))} 300"
    tool = " ".join([winpath(ARGS.exe), *tool_args(sc, fake), "bob", "--detach", "--message", "Save-your-work",
                     "--grace", "3s", "--format", "json"])
    code, _, err, elapsed = wine(sc.dir, "jobwrap", [ARGS.jobwrap, winpath(result), winpath(out), canary, tool],
                                 dict(os.environ))
    check(code == 0, f"jobwrap exit {code}: {err[-500:]}")
    with open(result) as f:
        line = f.read().strip()
    check(line == "exit=0 canary_in_job=1 canary_killed=1", f"jobwrap: {line}")
    with open(out, encoding="utf-8", errors="replace") as f:
        doc = json.loads(f.read())
    check(elapsed < 10, f"jobwrap took {elapsed:.1f}s")
    job = doc["job"]["id"]
    check(doc["exit_code"] == 0 and doc["job"]["mechanism"] == f"Windows service logoff-users-job-{job}", doc)
    check(fake_actions(fake) == [("send_message", "2"), ("send_message", "3")], fake_actions(fake))
    j = wait_job(sc, fake, job)
    check((j["state"], j["exit_code"]) == ("done", 0), j)
    check(fake_actions(fake)[2:] == [("logoff_session", "2"), ("logoff_session", "3")], fake_actions(fake))
    deadline = time.time() + 10
    while service_exists(sc, f"logoff-users-job-{job}"):
        check(time.time() < deadline, "the job's service was not deleted")
        time.sleep(0.5)
    # The --detach run itself, timed on its own: within 2 s.
    fake2 = fake_machine(sc)
    r = sc.run(*tool_args(sc, fake2), "carol", "--detach", "--message", "m", "--grace", "1s", state=False).expect(0)
    check(r.elapsed < 2.0, f"--detach took {r.elapsed:.2f}s")
    check("scheduled: job " in r.out, r.out)
    carol = r.out.split("scheduled: job ", 1)[1].split(" ", 1)[0]
    check(wait_job(sc, fake2, carol)["state"] == "done", "carol's job ran")


@scenario
def cancel_stops_the_job_service(sc):
    """--cancel: the job logs no one off, its service goes; a second cancel says cancelled
    already (0), an unknown id 6, a cancel after the job ran 5."""
    fresh_services(sc)
    fake = fake_machine(sc)
    r = sc.run(*tool_args(sc, fake), "bob", "--detach", "--message", "m", "--grace", "4s", "--format", "json",
               state=False).expect(0)
    job = r.json["job"]["id"]
    r = sc.run(*tool_args(sc, fake), "--cancel", job, "--message", "called off", state=False).expect(0)
    check(f"cancelled: job {job}" in r.out, r.out)
    time.sleep(6)
    check(not [a for a in fake_actions(fake) if a[0] == "logoff_session"], fake_actions(fake))
    check(fake_actions(fake)[-2:] == [("send_message", "2"), ("send_message", "3")], fake_actions(fake))
    _, doc = pending(sc, fake)
    check([j["state"] for j in doc["jobs"]] == ["cancelled"], doc)
    check(not service_exists(sc, f"logoff-users-job-{job}"), "the service of a cancelled job is gone")
    sc.run(*tool_args(sc, fake), "--cancel", job, state=False).expect(0)
    sc.run(*tool_args(sc, fake), "--cancel", "0badf00d", state=False).expect(6)
    r = sc.run(*tool_args(sc, fake), "carol", "--detach", "--format", "json", state=False).expect(0)
    done = r.json["job"]["id"]
    check(wait_job(sc, fake, done)["state"] == "done", "the second job ran")
    sc.run(*tool_args(sc, fake), "--cancel", done, state=False).expect(5)


@scenario
def untrusted_job_files_are_refused(sc):
    """A job file others may write (Wine maps the Unix mode to the DACL: Everyone) is
    refused by --pending (exit 1), --cancel and the runner; nothing is logged off."""
    fresh_services(sc)
    fake = fake_machine(sc)
    r = sc.run(*tool_args(sc, fake), "bob", "--detach", "--grace", "30s", "--message", "m", "--format", "json",
               state=False).expect(0)
    job = r.json["job"]["id"]
    jobs = os.path.join(sc.dir, "jobs")
    with open(os.path.join(jobs, f"{job}.json")) as f:
        text = f.read()
    bad = os.path.join(jobs, "0badf11e.json")
    with open(bad, "w") as f:
        f.write(text.replace(job, "0badf11e"))
    os.chmod(bad, 0o666)
    r, doc = pending(sc, fake)
    r.expect(1)
    check([x["file"] for x in doc["refused"]] == ["0badf11e.json"], doc["refused"])
    check("writable by S-1-1-0" in doc["refused"][0]["reason"], doc["refused"])
    sc.run(*tool_args(sc, fake), "--cancel", "0badf11e", state=False).expect(1)
    r = sc.run(*tool_args(sc, fake), "--run-job", "0badf11e", state=False).expect(1)
    check("REFUSED: job file 0badf11e.json" in r.out + r.err, r.out + r.err)
    sc.run(*tool_args(sc, fake), "--cancel", job, state=False).expect(0)
    check(not [a for a in fake_actions(fake) if a[0] == "logoff_session"], fake_actions(fake))


@scenario
def memory_ownership(sc):
    """Every block the stand-in handed out in every run above was freed with the right
    function, every server handle closed, no violation."""
    problems = []
    runs = 0
    for path in ALL_RECORDS:
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(x) for x in f if x.strip()]
        for c in lines:
            if c["fn"] == "violation" or c.get("violation"):
                problems.append((path, c))
            if c["fn"] == "summary":
                runs += 1
                if c["blocks_never_freed"] or c["handles_never_closed"] or c["violations"]:
                    problems.append((path, c))
    check(runs >= 20, f"summaries of at least 20 runs: {runs}")
    check(not problems, problems[:5])


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--sleeper", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--jobwrap", help="ci/wine/jobwrap.exe (the scheduled-logoff scenarios)")
    ap.add_argument("--only")
    ARGS = ap.parse_args()
    passed = failed = 0
    for fn in SCENARIOS:
        name = fn.__name__.replace("_", "-")
        if ARGS.only and name != ARGS.only and fn.__name__ not in ("probe",):
            continue
        sc = Scene(name)
        started = time.time()
        try:
            fn(sc)
            passed += 1
            print(f"PASS {name} ({time.time() - started:.1f}s)", flush=True)
        except Check as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name}: {traceback.format_exc()}", flush=True)
        finally:
            sc.cleanup()
    print(f"scenarios: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
