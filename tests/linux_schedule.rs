//! Scheduled logoffs against a real systemd and logind (issue 14): a Debian 12 container
//! booted with systemd-nspawn (`ci/container.sh`), real ssh logins, and the tool run inside.
//!
//! - `--detach` run through sudo from an admin's ssh session returns within 2 s; the test
//!   then kills that whole session (every process of it, SIGKILL), and the job still logs
//!   its users off at the due time, with the warning and the 30 s reminder on their
//!   terminals: its runner is a transient systemd service, outside the caller's cgroup.
//! - The same from a service standing in for an RMM agent, stopped (its cgroup killed)
//!   right after the tool returned; its job overlaps the first one (bob is in both): both
//!   end done, exit 0.
//! - A job cancelled with `--cancel ID --message` logs no one off, and its user reads the
//!   message.
//! - The control: a job whose runner is a daemon (`--detach-via daemon`, hidden), scheduled
//!   from a session that is then killed, dies with it (under systemd a daemon is still in
//!   the caller's cgroup): the kill is real, and only systemd's unit survives it. `--pending`
//!   then reports that job failed: its runner is gone.
//! - A job file owned by a user, or writable by others, is refused by `--pending`,
//!   `--cancel` and the runner.
//! - The audit trail (journal) has the scheduling, the cancel, the job's start and end.
//!
//! Needs root and the rootfs (`ci/container.sh build`); skips, or fails with
//! `LOGOFF_REQUIRE_REAL_TESTS=1`. Everything it stops it started: its own container
//! (`tests/common/container.rs`: own machine name, state directory and port), the users
//! inside it, its own ssh clients.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use common::container::{Container, printed, should_run, spare_uid_base};

const ALICE: &str = "ls_alice";
const BOB: &str = "ls_bob";
const CAROL: &str = "ls_carol";
const ADMIN: &str = "ls_admin";
const TOOL: &str = "/opt/logoff/logoff-users";
const GRACE_SECS: u64 = 35;

/// Output into a new file at `path`.
fn to_file(path: &Path) -> Stdio {
    Stdio::from(std::fs::File::create(path).unwrap())
}

impl Container {
    /// Runs `command` in a new ssh session of `user` that then stays open (`sleep`), its
    /// output going to `out`; returns the session's id once `marker` is in the output.
    fn session_running(&mut self, user: &str, command: &str, out: &Path, marker: &str) -> String {
        let before = self.sessions_of(user);
        let child = self
            .ssh_cmd(user, false)
            .arg(format!("{command}; exec sleep 900"))
            .stdin(Stdio::null())
            .stdout(to_file(out))
            .stderr(to_file(&out.with_extension("err")))
            .spawn()
            .unwrap();
        self.clients.push(child);
        self.wait_for(&format!("{marker:?} from {user}'s session"), 30, || {
            std::fs::read_to_string(out).unwrap_or_default().contains(marker)
        });
        let new: Vec<String> = self.sessions_of(user).difference(&before).cloned().collect();
        assert_eq!(new.len(), 1, "one new session of {user}: {new:?}");
        new[0].clone()
    }

    fn pending(&self) -> serde_json::Value {
        let out = self.exec(&[TOOL, "--pending", "--format", "json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--pending JSON: {e}: {out:?}"))
    }

    fn job<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
        doc["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).unwrap_or_else(|| panic!("no job {id}: {doc}"))
    }
}

/// The users get four consecutive uids in a range of their own, 62000 and up (the logind
/// test takes 61000 to 61999, the maintenance test 52000 to 59999).
fn setup_users(ct: &Container) {
    let base = spare_uid_base(62_000..64_000, 10, 4);
    for (i, user) in [ALICE, BOB, CAROL, ADMIN].into_iter().enumerate() {
        ct.add_user(user, base + i as u32);
    }
    ct.allow_sudo(ADMIN);
}

/// The job id and elapsed milliseconds a `--detach ... --format json` run printed (through
/// the shell wrapper that timed it).
fn scheduled(out: &str) -> (String, u64, serde_json::Value) {
    let json_end = out.rfind('}').unwrap_or_else(|| panic!("no JSON in {out}"));
    let doc: serde_json::Value =
        serde_json::from_str(&out[out.find('{').unwrap()..=json_end]).unwrap_or_else(|e| panic!("{e}: {out}"));
    let ms = out
        .lines()
        .find_map(|l| l.strip_prefix("tool-ms="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no timing in {out}"));
    assert!(out.contains("tool-exit=0"), "--detach did not exit 0:\n{out}");
    (doc["job"]["id"].as_str().unwrap().to_string(), ms, doc)
}

/// A shell line that runs the tool with `args`, and prints its exit code and how long it
/// took.
fn timed(prefix: &str, args: &str) -> String {
    format!(
        "t0=$(date +%s%N); {prefix}{TOOL} {args}; rc=$?; t1=$(date +%s%N); echo; echo tool-exit=$rc; echo tool-ms=$(( (t1 - t0) / 1000000 ))"
    )
}

#[test]
fn detached_logoffs_outlive_their_caller_and_cancel_works() {
    if !should_run("linux_schedule", &[]) {
        return;
    }
    let t0 = Instant::now();
    let mut ct = Container::start("logoff-sched");
    setup_users(&ct);
    let dir = ct.state.path().to_path_buf();
    let (alice_tty, bob_tty, carol_tty) = (dir.join("alice.tty"), dir.join("bob.tty"), dir.join("carol.tty"));
    ct.open_session_with(ALICE, 900, true, to_file(&alice_tty));
    ct.open_session_with(BOB, 900, true, to_file(&bob_tty));
    let carol_session = ct.open_session_with(CAROL, 900, true, to_file(&carol_tty));
    let message = "logoff-users test: save your work";

    // (a) From the admin's ssh session, through sudo: returns within 2 s, then the whole
    // session is killed.
    let a_out = dir.join("a.out");
    let args = format!("{ALICE},{BOB} --detach --message '{message}' --grace {GRACE_SECS}s --format json");
    let admin_a = ct.session_running(ADMIN, &timed("sudo -n ", &args), &a_out, "tool-ms=");
    let (job_a, ms, doc) = scheduled(&std::fs::read_to_string(&a_out).unwrap());
    assert!(ms < 2000, "--detach took {ms} ms");
    let mechanism = doc["job"]["mechanism"].as_str().unwrap();
    assert_eq!(mechanism, format!("systemd unit logoff-users-job-{job_a}.service"), "{doc}");
    let delivered =
        doc["hosts"][0]["actions"].as_array().unwrap().iter().filter(|a| a["result"] == "requested").count();
    assert_eq!(delivered, 2, "the warning went to alice's and bob's sessions: {doc}");
    ct.run(&["loginctl", "kill-session", &admin_a, "--signal=SIGKILL"]);
    ct.wait_for("the admin's session to end", 20, || !ct.sessions_of(ADMIN).contains(&admin_a));

    // (b) From a service standing in for an RMM agent, whose cgroup is killed (the unit
    // stopped) right after the tool returned. Bob is in both jobs.
    let b_args = format!("{BOB} --detach --message '{message}' --grace {GRACE_SECS}s --format json");
    ct.run(&[
        "systemd-run",
        "--unit=ls-fake-agent",
        "-p",
        "KillMode=control-group",
        "sh",
        "-c",
        &format!("{{ {}; }} > /run/ls-agent.out 2>&1; exec sleep 900", timed("", &b_args)),
    ]);
    ct.wait_for("the agent's tool run", 20, || {
        ct.exec(&["grep", "-q", "tool-ms=", "/run/ls-agent.out"]).status.success()
    });
    let (job_b, ms, _) = scheduled(&ct.run(&["cat", "/run/ls-agent.out"]));
    assert!(ms < 2000, "--detach took {ms} ms");
    ct.run(&["systemctl", "stop", "ls-fake-agent"]);
    assert!(!ct.exec(&["systemctl", "is-active", "--quiet", "ls-fake-agent"]).status.success());

    // (c) Carol's job is cancelled, with a message to her.
    let out = ct.run(&[TOOL, CAROL, "--detach", "--message", message, "--grace", "30s", "--format", "json"]);
    let job_c = serde_json::from_str::<serde_json::Value>(&out).unwrap()["job"]["id"].as_str().unwrap().to_string();
    let out = ct.exec(&[TOOL, "--cancel", &job_c, "--message", "logoff-users test: logoff cancelled"]);
    let log = printed(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains(&format!("cancelled: job {job_c} (log off {CAROL} at ")), "{log}");
    assert!(log.contains(&format!("  ok: session {carol_session} of {CAROL}: message delivered")), "{log}");

    // (d) The control: a daemon runner, scheduled from a session that is then killed,
    // dies with it under systemd. Carol again, due in 5 s.
    let d_out = dir.join("d.out");
    let d_args = format!("{CAROL} --detach --detach-via daemon --message '{message}' --grace 5s --format json");
    let admin_d = ct.session_running(ADMIN, &timed("sudo -n ", &d_args), &d_out, "tool-ms=");
    let (job_d, _, doc) = scheduled(&std::fs::read_to_string(&d_out).unwrap());
    assert!(doc["job"]["mechanism"].as_str().unwrap().starts_with("daemon"), "{doc}");
    ct.run(&["loginctl", "kill-session", &admin_d, "--signal=SIGKILL"]);
    ct.wait_for("the admin's second session to end", 20, || !ct.sessions_of(ADMIN).contains(&admin_d));

    // (e) A job file that a user owns, or that others may write, is refused everywhere.
    let jobs = "/run/logoff-users/jobs";
    ct.run(&[
        "sh",
        "-c",
        &format!("cp {jobs}/{job_c}.json {jobs}/0badf11e.json && chown {ALICE} {jobs}/0badf11e.json"),
    ]);
    ct.run(&[
        "sh",
        "-c",
        &format!(
            "sed 's/{job_c}/0badf11f/' {jobs}/{job_c}.json > {jobs}/0badf11f.json && chmod 666 {jobs}/0badf11f.json"
        ),
    ]);
    let out = ct.exec(&[TOOL, "--pending"]);
    let log = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("REFUSED: job file 0badf11e.json: owned by uid"), "{log}");
    assert!(log.contains("REFUSED: job file 0badf11f.json: writable by its group or others (mode 666)"), "{log}");
    for id in ["0badf11e", "0badf11f"] {
        assert_eq!(ct.exec(&[TOOL, "--cancel", id]).status.code(), Some(1), "--cancel {id}");
        assert_eq!(ct.exec(&[TOOL, "--run-job", id]).status.code(), Some(1), "--run-job {id}");
    }
    ct.run(&["rm", &format!("{jobs}/0badf11e.json"), &format!("{jobs}/0badf11f.json")]);

    // The due time: alice and bob are logged off by jobs a and b; carol is not.
    let t_scheduled = t0.elapsed();
    ct.wait_for("jobs a and b to finish", GRACE_SECS + 40, || {
        let doc = ct.pending();
        ["done", "failed"].contains(&Container::job(&doc, &job_a)["state"].as_str().unwrap())
            && ["done", "failed"].contains(&Container::job(&doc, &job_b)["state"].as_str().unwrap())
    });
    let doc = ct.pending();
    for id in [&job_a, &job_b] {
        let j = Container::job(&doc, id);
        assert_eq!((j["state"].as_str(), j["exit_code"].as_i64()), (Some("done"), Some(0)), "{j}\n{}", ct.journal());
    }
    assert_eq!(Container::job(&doc, &job_c)["state"], "cancelled");
    // The control job's runner died with the session: it never ran, and --pending says so.
    let d = Container::job(&doc, &job_d);
    assert_eq!(d["state"], "failed", "{d}");
    assert!(d["error"].as_str().unwrap().contains(") is gone, killed before the due time"), "{d}");
    assert!(d["started_at"].is_null(), "{d}");
    for user in [ALICE, BOB] {
        assert!(ct.sessions_of(user).is_empty(), "{user} still has sessions\n{}", ct.journal());
        assert!(ct.pids_of(user).is_empty(), "{user} still has processes {:?}", ct.pids_of(user));
    }
    assert_eq!(ct.sessions_of(CAROL), BTreeSet::from([carol_session.clone()]), "carol must keep her session");
    for tty in [&alice_tty, &bob_tty] {
        let text = std::fs::read_to_string(tty).unwrap();
        assert!(text.contains(&format!("{message} (You will be logged off in {GRACE_SECS}s.)")), "{text}");
        assert!(text.contains(&format!("Reminder: you will be logged off in 30s. {message}")), "{text}");
    }
    let carol_text = std::fs::read_to_string(&carol_tty).unwrap();
    assert!(carol_text.contains("logoff-users test: logoff cancelled"), "{carol_text}");
    assert!(!carol_text.contains("Reminder"), "a cancelled job sends no reminder: {carol_text}");

    // Nothing to cancel in the control job (it failed before it ran: exit 0); the units
    // are all gone.
    let out = ct.exec(&[TOOL, "--cancel", &job_d]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("job {job_d}: failed, not pending")), "{out:?}");
    let units = ct.run(&["systemctl", "list-units", "--all", "--no-legend", "logoff-users-job-*"]);
    assert!(units.trim().is_empty(), "transient units left: {units}");

    // The audit trail.
    let journal = ct.run(&["journalctl", "--no-pager", "-t", "logoff-users"]);
    for want in [
        format!("action=schedule_job job={job_a} targets={ALICE},{BOB} "),
        format!("action=job_start job={job_a} "),
        format!("action=job_end job={job_a} state=done exit_code=0 "),
        format!("action=job_end job={job_b} state=done exit_code=0 "),
        format!("action=cancel_job job={job_c} targets={CAROL} result=cancelled "),
        "action=job_refused file=0badf11e.json".to_string(),
    ] {
        assert!(journal.contains(&want), "no {want:?} in the journal:\n{journal}");
    }
    eprintln!("linux_schedule timings: scheduled after {t_scheduled:?}, all checked after {:?}", t0.elapsed());
}
