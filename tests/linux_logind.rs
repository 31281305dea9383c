//! Tier-4 test against a real systemd-logind: a Debian 12 container booted with
//! systemd-nspawn (`ci/container.sh`), real ssh logins on 127.0.0.1, and the tool run
//! inside the container, so that it talks to the container's logind.
//!
//! Needs root and a rootfs built by `ci/container.sh build`. Without them the test prints
//! why and passes, unless `LOGOFF_REQUIRE_REAL_TESTS=1`, when it fails instead.
//!
//! Everything it signals or stops it created: the container (`tests/common/container.rs`:
//! its own state directory, machine name and ssh port), the users inside it, and its own
//! ssh client processes on the host. The container runs with a volatile overlay, so the
//! cached rootfs is not changed.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::container::{Container, printed, sessions_of, should_run, spare_uid_base};

/// The tool run inside the container, relative to the target directory (`target/debug`),
/// which is bind-mounted read-only at `/opt/logoff`: the real binary.
const TOOL: &str = "logoff-users";

const ALICE: &str = "lu_alice";
const BOB: &str = "lu_bob";
const CAROL: &str = "lu_carol";
const ADMIN: &str = "lu_admin";

impl Container {
    /// The `sleep` processes of `user`: the test's markers.
    fn sleeps_of(&self, user: &str) -> BTreeSet<u32> {
        let out = self.exec(&["pgrep", "-u", user, "-x", "sleep"]);
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// The tool's `--list --format json` document, run inside the container as root.
    fn tool_list(&self) -> serde_json::Value {
        let tool = format!("/opt/logoff/{TOOL}");
        let out = self.run(&[&tool, "--list", "--format", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {TOOL}: {e}\n{out}"))
    }
}

/// How many consecutive uids the test reserves: its four users, and part (g)'s eleven.
const UIDS: u32 = 4 + STUBBORN_USERS + 1;

/// The test's users get [`UIDS`] consecutive uids between 61000 and 61999 (part (g)'s users
/// included); the schedule test takes 62000 and up.
fn setup_users(ct: &Container) -> u32 {
    let base = spare_uid_base(61_000..62_000 - UIDS, 20, UIDS);
    for (i, user) in [ALICE, BOB, CAROL, ADMIN].into_iter().enumerate() {
        ct.add_user(user, base + i as u32);
    }
    ct.allow_sudo(ADMIN);
    base
}

/// What the tool listed: (id, user) per session, and the whole session objects.
fn listed(doc: &serde_json::Value) -> (BTreeSet<(String, String)>, Vec<serde_json::Value>) {
    assert_eq!(doc["version"], 2, "{doc}");
    let host = &doc["hosts"][0];
    assert_eq!(host["backend"], "logind", "{doc}");
    let sessions = host["sessions"].as_array().unwrap().clone();
    let ids = sessions
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["user"].as_str().unwrap().to_string()))
        .collect();
    (ids, sessions)
}

#[test]
fn logs_users_off_a_real_logind() {
    if !should_run("linux_logind", &["notify_receiver", "notify_probe"]) {
        return;
    }
    let t0 = Instant::now();
    let mut ct = Container::start("logoff-test");
    let t_boot = t0.elapsed();
    let uid_base = setup_users(&ct);

    // Sessions: alice has an open one and a closing one with a nohup'd process left
    // behind; bob and carol one open each; the admin one open, plus the one the tool
    // runs in later.
    ct.open_session(ALICE, 1001);
    let alice_closing = ct.leave_closing_session(ALICE, 1002);
    let bob_out = ct.state.path().join("bob-terminal.out");
    let bob_session = ct.open_session_with(BOB, 1003, true, Stdio::from(std::fs::File::create(&bob_out).unwrap()));
    let carol_session = ct.open_session(CAROL, 1004);
    ct.open_session(ADMIN, 1005);
    let t_sessions = t0.elapsed();

    // (a) --list agrees with loginctl: ids and users, and the properties read from logind.
    let (ids, sessions) = listed(&ct.tool_list());
    assert_eq!(ids, ct.loginctl_sessions(), "tool and loginctl disagree");
    assert_eq!(sessions_of(&ids, ALICE).len(), 2);
    for s in &sessions {
        let id = s["id"].as_str().unwrap();
        assert_eq!(s["uid"].to_string(), ct.session_property(id, "User"), "uid of {id}: {s}");
        assert_eq!(s["state"], ct.session_property(id, "State"), "state of {id}");
        let tty = ct.session_property(id, "TTY");
        if !tty.is_empty() {
            assert_eq!(s["station"], tty.as_str(), "station of {id}");
        }
        assert_eq!(s["class"], "user", "class of {id}");
        assert_eq!(s["type"], "tty", "type of {id}");
        assert_eq!(s["remote_host"], "127.0.0.1", "remote host of {id}");
        assert!(s["logon_time"].as_i64().unwrap() > 1_600_000_000, "logon time of {id}: {s}");
        // A closing session's leader has exited: the tool must not offer its pid.
        let leader = ct.session_property(id, "Leader");
        if s["state"] == "closing" {
            assert!(s["leader"].is_null(), "leader of closing {id}: {s}");
        } else {
            assert_eq!(s["leader"].to_string(), leader, "leader of {id}");
        }
    }
    let closing = sessions.iter().find(|s| s["id"] == alice_closing.as_str()).unwrap();
    assert_eq!(closing["state"], "closing", "{closing}");

    let tool = format!("/opt/logoff/{TOOL}");

    // (d) --idle-over honours logind's IdleSinceHint: logind derives it from the tty's
    // access time, so age carol's pty by two hours; only her session is selected.
    let carol_tty = ct.session_property(&carol_session, "TTY");
    ct.run(&["touch", "-a", "-d", "2 hours ago", &format!("/dev/{carol_tty}")]);
    assert_eq!(ct.session_property(&carol_session, "IdleHint"), "yes", "logind does not see carol idle");
    let out = ct.run(&[&tool, "ALL", "--idle-over", "1h", "--dry-run", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let planned: Vec<String> = doc["hosts"][0]["plan"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(planned, std::slice::from_ref(&carol_session), "--idle-over 1h planned {planned:?}\n{out}");
    let idle = doc["hosts"][0]["plan"]["users"][0]["sessions"][0]["idle_seconds"].as_u64().unwrap();
    assert!((7100..7300).contains(&idle), "carol idle for {idle} s");

    // (e) --message reaches the terminal of bob's ssh session; SIGTERM during the grace
    // period cancels (exit 4) and leaves every session alive.
    let before = ct.loginctl_sessions();
    let out = ct.exec(&[
        "timeout",
        "--preserve-status",
        "-s",
        "TERM",
        "3s",
        &tool,
        BOB,
        "--message",
        "logoff-users test: save your work",
        "--grace",
        "10m",
    ]);
    let log = printed(&out);
    assert_eq!(out.status.code(), Some(4), "cancel did not exit 4:\n{log}");
    assert!(log.contains("cancelled during the grace period: no one was logged off"), "{log}");
    assert!(log.contains(&format!("  ok: session {bob_session} of {BOB}: message delivered")), "{log}");
    assert_eq!(ct.loginctl_sessions(), before, "a session changed during a cancelled grace period\n{log}");
    ct.wait_for("the message on bob's terminal", 20, || {
        std::fs::read_to_string(&bob_out).unwrap_or_default().contains("logoff-users test: save your work")
    });

    // (f) A desktop notification on a user's session bus, for a graphical session: a real
    // dbus-daemon and a stand-in notification server, started as carol in a session of
    // hers (so they end with her sessions in (c)). The probe hands the real backend an
    // x11 session without a terminal (ssh sessions are tty sessions).
    let carol_uid = ct.run(&["id", "-u", CAROL]).trim().to_string();
    let carol_log = format!("/home/{CAROL}/notifications.log");
    let bus = format!("unix:path=/run/user/{carol_uid}/bus");
    let child = ct
        .ssh_cmd(CAROL, false)
        .arg(format!(
            "dbus-daemon --session --address={bus} --nofork --nopidfile </dev/null >/dev/null 2>&1 & \
             /opt/logoff/examples/notify_receiver {bus} {carol_log} </dev/null >$HOME/receiver.err 2>&1 & \
             exec sleep 1006"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ct.clients.push(child);
    ct.wait_for("carol's notification server", 20, || ct.exec(&["test", "-e", &carol_log]).status.success());
    let probe = "/opt/logoff/examples/notify_probe";
    let out = ct.exec(&[probe, CAROL, "logoff-users test", "save <your> work & go"]);
    let log = printed(&out);
    assert!(out.status.success(), "notify_probe {CAROL} failed: {}\n{log}", out.status);
    assert!(log.contains("delivered") && log.contains("all uid 0"), "{log}");
    let recorded = ct.run(&["cat", &carol_log]);
    let lines: Vec<serde_json::Value> = recorded.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{recorded}");
    let n = &lines[0];
    assert_eq!(n["app_name"], "logoff-users", "{n}");
    assert_eq!(n["summary"], "logoff-users test", "{n}");
    assert_eq!(n["body"], "save &lt;your&gt; work &amp; go", "{n}");
    assert_eq!(n["sender_uid"].to_string(), carol_uid, "the bus saw another uid: {n}");
    assert_eq!(n["expire_timeout"], 60_000, "{n}");
    assert_eq!(n["urgency"], 2, "{n}");
    // Bob has no session bus: neither his (missing) terminal nor the desktop got it, and
    // the error says why for both.
    let out = ct.exec(&[probe, BOB, "logoff-users test", "x"]);
    let log = printed(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("failed: could not send a message to session probe: terminal: the session has no terminal; desktop notification: could not show a desktop notification on /run/user/")
            && log.contains("the user has no session bus"),
        "{log}"
    );
    assert!(log.contains("all uid 0"), "{log}");

    // (b) Log off alice: both her sessions and every process of hers go, including the
    // nohup'd sleep in the closing session; bob, carol and the admin are untouched.
    // Their marker processes (the sleeps on their ptys); other processes of theirs, such
    // as helpers of their user managers, may come and go on their own.
    let bystanders: Vec<(&str, BTreeSet<u32>)> = [BOB, CAROL, ADMIN].iter().map(|u| (*u, ct.sleeps_of(u))).collect();
    let before = ct.loginctl_sessions();
    assert!(!ct.pids_of(ALICE).is_empty());
    // `--kill-after 0`: straight to SIGKILL, the round in which logind's KillUser is used.
    let out = ct.exec(&[&tool, ALICE, "--timeout", "30s", "--kill-after", "0"]);
    let log = printed(&out);
    assert!(out.status.success(), "logoff {ALICE} failed: {}\n{log}", out.status);
    let after = ct.loginctl_sessions();
    assert!(sessions_of(&after, ALICE).is_empty(), "alice still has sessions: {after:?}\n{log}");
    // The tool verified before it exited: every process of alice's is gone already,
    // the nohup'd sleep of the closing session and her user manager included.
    assert!(ct.pids_of(ALICE).is_empty(), "alice still has processes {:?}\n{log}", ct.pids_of(ALICE));
    assert!(log.contains(&format!("verified: {ALICE} is logged off")), "{log}");
    // systemd owns the container's cgroup tree: alice's slice is reached through logind
    // (KillUser), the rest by kill(-1) as her uid; the tool writes no cgroup file.
    assert!(log.contains("(KillUser + kill(-1) as uid)"), "{log}");
    for user in [BOB, CAROL, ADMIN] {
        assert_eq!(
            sessions_of(&after, user),
            sessions_of(&before, user),
            "{user}'s sessions changed\n{log}\n{}",
            ct.journal()
        );
    }
    for (user, pids) in &bystanders {
        assert!(
            pids.is_subset(&ct.sleeps_of(user)),
            "a process of bystander {user} is gone: {pids:?} then {:?}, sessions {:?}\n{}",
            ct.sleeps_of(user),
            ct.loginctl_sessions(),
            ct.journal()
        );
    }
    let t_one = t0.elapsed();

    // (c) ALL, run by the admin through sudo from an ssh session: every user session goes,
    // except the one the tool runs in (the admin's other session goes too).
    let before = ct.loginctl_sessions();
    let out = ct
        .ssh_cmd(ADMIN, false)
        .arg(format!("sudo -n {tool} ALL --timeout 30s; echo \"tool-exit=$?\"; cat /proc/self/cgroup"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = printed(&out);
    assert!(log.contains("tool-exit=0"), "ALL failed, or the tool's own session was ended:\n{log}");
    let after = ct.loginctl_sessions();
    for user in [BOB, CAROL] {
        assert!(sessions_of(&after, user).is_empty(), "{user} still has sessions: {after:?}\n{log}");
    }
    let admin_before = sessions_of(&before, ADMIN);
    let admin_after = sessions_of(&after, ADMIN);
    assert!(admin_after.is_disjoint(&admin_before), "admin's other session survived ALL:\n{log}");
    assert!(ct.pids_of(BOB).is_empty() && ct.pids_of(CAROL).is_empty(), "bob or carol kept processes\n{log}");
    let t_all = t0.elapsed();

    // (f) A tool killed by SIGKILL at any instant of a sweep (an RMM agent's time limit)
    // never leaves a user frozen: no cgroup under user.slice is frozen after the kill, and
    // the user can log in again by ssh at once.
    let interrupted = crash_test(&mut ct, &tool);
    let t_crash = t0.elapsed();

    // (g) ALL over ten users whose session's process ignores SIGTERM and SIGHUP takes one
    // grace period, not ten; every one of them goes; an excluded bystander keeps his.
    let took = stubborn_users(&mut ct, &tool, uid_base + 4);
    eprintln!("linux_logind: ALL over {STUBBORN_USERS} stubborn users took {took:?}");

    eprintln!(
        "linux_logind timings: boot {:?}, sessions ready {:?}, one user {:?}, ALL {:?}, crash test {:?} ({interrupted} of {CRASH_KILLS} kills left processes behind, so they landed mid-sweep)",
        t_boot, t_sessions, t_one, t_all, t_crash
    );
}

/// How many users part (g) logs off at once.
const STUBBORN_USERS: u32 = 10;
/// Part (g)'s grace period.
const STUBBORN_GRACE: Duration = Duration::from_secs(5);

/// Part (g): returns how long the tool took.
fn stubborn_users(ct: &mut Container, tool: &str, first_uid: u32) -> Duration {
    let names: Vec<String> = (0..=STUBBORN_USERS).map(|i| format!("lu_st{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        ct.add_user(name, first_uid + i as u32);
    }
    let bystander = names.last().unwrap().clone();
    for name in &names {
        let child = ct
            .ssh_cmd(name, false)
            .arg("trap '' TERM HUP; exec sleep 900")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        ct.clients.push(child);
        ct.wait_for(&format!("{name}'s session"), 20, || !ct.sleeps_of(name).is_empty());
    }
    let kept = ct.sleeps_of(&bystander);
    // Everyone else is logged off by now; the admin is excluded for good measure.
    let started = Instant::now();
    let kill_after = format!("{}s", STUBBORN_GRACE.as_secs());
    let out = ct.exec(&[
        tool,
        "ALL",
        "--exclude",
        &format!("{bystander},{ADMIN}"),
        "--kill-after",
        &kill_after,
        "--timeout",
        "60s",
    ]);
    let took = started.elapsed();
    let log = printed(&out);
    assert!(out.status.success(), "ALL over stubborn users failed: {}\n{log}", out.status);
    assert!(took >= STUBBORN_GRACE, "the grace period was not waited ({took:?})\n{log}");
    assert!(took < STUBBORN_GRACE * 2 - Duration::from_secs(2), "{STUBBORN_USERS} users took {took:?}\n{log}");
    for name in &names[..names.len() - 1] {
        assert!(ct.pids_of(name).is_empty(), "{name} kept {:?}\n{log}", ct.pids_of(name));
    }
    assert_eq!(ct.sleeps_of(&bystander), kept, "the excluded bystander was touched\n{log}");
    took
}

/// How many times the crash test kills the tool.
const CRASH_KILLS: u32 = 10;
/// How many processes carol has for each of its sweeps.
const CRASH_PROCESSES: u32 = 3000;

impl Container {
    /// Gives carol an ssh session holding `n` sleeps, and waits until they all run.
    fn crowd_carol(&mut self, n: u32) {
        let child = self
            .ssh_cmd(CAROL, false)
            .arg(format!("for i in $(seq {n}); do sleep 900 & done; exec sleep 900"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.clients.push(child);
        // A shell loop starts them one by one: on a busy machine that can take a while.
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.sleeps_of(CAROL).len() <= n as usize {
            assert!(Instant::now() < deadline, "{CAROL}'s {n} processes did not start within 120 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every cgroup under user.slice whose `cgroup.freeze` is 1.
    fn frozen_cgroups(&self) -> String {
        let out =
            self.exec(&["sh", "-c", "grep -l '^1' $(find /sys/fs/cgroup/user.slice -name cgroup.freeze) || true"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts the tool on carol inside the container, and returns it with its pid there.
    fn start_tool_on_carol(&self, tool: &str) -> (Child, u32) {
        let pidfile = format!("/run/lu-crash-{}.pid", std::process::id());
        let _ = self.exec(&["rm", "-f", &pidfile]);
        let child = self
            .script_cmd()
            .arg("exec")
            .args(["sh", "-c", &format!("echo $$ > {pidfile}; exec {tool} {CAROL} --kill-after 0 --timeout 60s")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut pid = None;
        self.wait_for("the tool's pid", 20, || {
            pid = self.run(&["sh", "-c", &format!("cat {pidfile} 2>/dev/null || true")]).trim().parse().ok();
            pid.is_some()
        });
        (child, pid.unwrap())
    }
}

/// Kills the tool with SIGKILL at `CRASH_KILLS` instants spread over whole sweeps of
/// carol's `CRASH_PROCESSES` processes, and after each checks that nothing is frozen and
/// that carol can log in. Returns how many kills left some of her processes behind.
fn crash_test(ct: &mut Container, tool: &str) -> u32 {
    // One whole sweep first, to know how long one takes.
    ct.crowd_carol(CRASH_PROCESSES);
    let started = Instant::now();
    let (mut whole, _) = ct.start_tool_on_carol(tool);
    assert!(whole.wait().unwrap().success(), "the uninterrupted sweep of {CAROL} failed");
    let sweep = started.elapsed();
    assert!(ct.pids_of(CAROL).is_empty());
    let mut interrupted = 0;
    for k in 0..CRASH_KILLS {
        ct.crowd_carol(CRASH_PROCESSES);
        let (mut run, pid) = ct.start_tool_on_carol(tool);
        std::thread::sleep(sweep.mul_f64((f64::from(k) + 0.5) / f64::from(CRASH_KILLS)));
        let _ = ct.exec(&["kill", "-KILL", &pid.to_string()]);
        let _ = run.wait();
        interrupted += u32::from(!ct.pids_of(CAROL).is_empty());
        let frozen = ct.frozen_cgroups();
        assert!(frozen.is_empty(), "kill {k}: frozen after the tool died: {frozen}\n{}", ct.journal());
        let login = Instant::now();
        let out = ct.ssh_cmd(CAROL, false).arg("true").stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "kill {k}: {CAROL} cannot log in: {}", String::from_utf8_lossy(&out.stderr));
        assert!(login.elapsed() < Duration::from_secs(5), "kill {k}: login took {:?}", login.elapsed());
        // Clean up with a whole run before the next kill.
        let (mut rest, _) = ct.start_tool_on_carol(tool);
        assert!(rest.wait().unwrap().success(), "kill {k}: the run after the kill failed");
    }
    interrupted
}
