//! Scheduled logoffs through the real binary against the fake backend (issue 14): `--detach`
//! (its runner a real detached process), `--pending`, `--cancel`, every state a job goes
//! through, a cancel racing the due time, corrupt and untrusted job files, and the JSON
//! documents, deserialized into this file's own copy of their schema with
//! `deny_unknown_fields`.
//!
//! Needs no root: each test has its own job directory (`--job-dir`, hidden), its own.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::Deserialize;

const BIN: &str = env!("CARGO_BIN_EXE_logoff-users");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Targets {
    all: bool,
    users: Vec<String>,
    exclude: Vec<String>,
    disconnected_only: bool,
    idle_over_s: Option<u64>,
    disconnect: bool,
    orphans: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Job {
    id: String,
    state: String,
    scheduled_by: String,
    scheduled_at: i64,
    due: i64,
    targets: Targets,
    message: Option<String>,
    grace_ms: u64,
    mechanism: Option<String>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    exit_code: Option<i32>,
    error: Option<String>,
    cancelled_by: Option<String>,
    summary: Option<serde_json::Value>,
    drained: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleDoc {
    version: u32,
    tool: String,
    job: Option<Job>,
    error: Option<String>,
    hosts: Vec<serde_json::Value>,
    exit_code: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Refused {
    file: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingDoc {
    version: u32,
    tool: String,
    dir: String,
    jobs: Vec<Job>,
    refused: Vec<Refused>,
    error: Option<String>,
    exit_code: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelDoc {
    version: u32,
    tool: String,
    request: String,
    cancelled: Vec<Job>,
    too_late: Vec<Job>,
    unknown: Option<String>,
    refused: Vec<Refused>,
    messages: Vec<serde_json::Value>,
    error: Option<String>,
    exit_code: i32,
}

/// A fake machine (a copy of `tests/fixtures/rds.json`) and a job directory of its own.
struct Bed {
    dir: tempfile::TempDir,
    state: PathBuf,
    jobs: PathBuf,
}

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rds.json"), &state).unwrap();
        let jobs = dir.path().join("jobs");
        Bed { dir, state, jobs }
    }

    /// A fake machine that can drain new logons, none refused yet.
    fn drainable() -> Bed {
        let b = Bed::new();
        let mut v = b.state();
        v["drain"] = serde_json::json!({ "in_force": null });
        std::fs::write(&b.state, serde_json::to_vec(&v).unwrap()).unwrap();
        b
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap()
    }

    /// Whether the fake machine refuses new logons.
    fn draining(&self) -> bool {
        self.state()["drain"]["in_force"].is_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--fake-state")
            .arg(&self.state)
            .arg("--job-dir")
            .arg(&self.jobs)
            .args(args)
            .env_remove("LOGOFF_USERS")
            .output()
            .unwrap()
    }

    /// `--detach` for `args`; returns the scheduling document.
    fn detach(&self, args: &[&str]) -> ScheduleDoc {
        let mut all = args.to_vec();
        all.extend(["--detach", "--format", "json"]);
        let o = self.run(&all);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    }

    fn pending(&self) -> PendingDoc {
        let o = self.run(&["--pending", "--format", "json"]);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    }

    fn job(&self, id: &str) -> Job {
        self.pending().jobs.into_iter().find(|j| j.id == id).unwrap_or_else(|| panic!("no job {id}"))
    }

    /// Waits until job `id` is over (done, failed or cancelled).
    fn finished(&self, id: &str, within: Duration) -> Job {
        let deadline = Instant::now() + within;
        loop {
            let j = self.job(id);
            if !["pending", "running"].contains(&j.state.as_str()) {
                return j;
            }
            assert!(Instant::now() < deadline, "job {id} still {} after {within:?}", j.state);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The requests the fake machine received, as `action:session`.
    fn actions(&self) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap();
        v["actions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|a| format!("{}:{}", a["action"].as_str().unwrap(), a["session"].as_str().unwrap_or("-")))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn logoffs(&self) -> usize {
        self.actions().iter().filter(|a| a.starts_with("logoff_session:")).count()
    }
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn detach_returns_at_once_and_the_job_logs_off_at_its_due_time() {
    let b = Bed::new();
    let t0 = Instant::now();
    let o = b.run(&["CORP\\jsmith", "--detach", "--message", "Save your work", "--grace", "2s"]);
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(took < Duration::from_secs(2), "--detach took {took:?}");
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "warning 2 session(s): \"Save your work (You will be logged off in 2s.)\"", "{out}");
    assert_eq!(
        lines[1..3],
        ["  ok: session 2 of CORP\\jsmith: message delivered", "  ok: session 3 of CORP\\jsmith: message delivered"]
    );
    let id = lines[3].strip_prefix("scheduled: job ").unwrap().split(' ').next().unwrap().to_string();
    assert!(
        lines[3].contains(" logs off CORP\\jsmith at ")
            && lines[3].ends_with(&format!("cancel with: logoff-users --cancel {id}")),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    // Nothing but the warning yet.
    assert_eq!(b.actions(), ["send_message:2", "send_message:3"]);
    let j = b.job(&id);
    assert_eq!(
        (j.state.as_str(), j.grace_ms, j.targets.users.as_slice()),
        ("pending", 2000, &["CORP\\jsmith".to_string()][..])
    );
    assert_eq!(j.due - j.scheduled_at, 2, "{j:?}");
    assert_eq!(j.mechanism.as_deref(), Some("daemon (setsid, double fork)"));
    let j = b.finished(&id, Duration::from_secs(15));
    assert_eq!((j.state.as_str(), j.exit_code), ("done", Some(0)), "{j:?}");
    assert!(j.started_at.unwrap() >= j.due - 1 && j.finished_at.unwrap() >= j.started_at.unwrap());
    assert_eq!(j.summary.as_ref().unwrap()["sessions_logged_off"], 2, "{j:?}");
    assert_eq!(b.actions(), ["send_message:2", "send_message:3", "logoff_session:2", "logoff_session:3"]);
    // The text table, and the log of its runner.
    let o = b.run(&["--pending"]);
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(table.lines().nth(1).unwrap().starts_with(&format!("{id}  done (exit 0)  ")), "{table}");
    let log = std::fs::read_to_string(b.jobs.join(format!("{id}.log"))).unwrap();
    assert!(
        log.contains("verified: CORP\\jsmith is logged off") && log.contains(&format!("job {id}: done (exit 0)")),
        "{log}"
    );
}

#[test]
fn a_cancelled_job_logs_no_one_off_and_cancel_exit_codes_say_what_happened() {
    let b = Bed::new();
    let doc = b.detach(&["ALL", "--message", "Maintenance", "--grace", "3s"]);
    assert_eq!((doc.version, doc.exit_code), (1, 0));
    let id = doc.job.unwrap().id;
    assert_eq!(doc.hosts.len(), 1);
    let o = b.run(&["--cancel", &id, "--message", "Maintenance called off", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c: CancelDoc = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((c.request.as_str(), c.cancelled.len(), c.too_late.len()), (id.as_str(), 1, 0));
    assert_eq!(c.cancelled[0].state, "cancelled");
    assert!(c.messages[0]["actions"].as_array().unwrap().iter().all(|a| a["action"] == "send_message"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(b.logoffs(), 0, "{:?}", b.actions());
    let j = b.job(&id);
    assert_eq!(j.state, "cancelled");
    assert!(j.cancelled_by.is_some());
    // Every session got the warning, then the "called off" message: 5 sessions each (ALL
    // leaves the admin's console, the tool's own session, and the DWM account alone).
    let msgs = b.actions().iter().filter(|a| a.starts_with("send_message")).count();
    assert_eq!(msgs, 10, "{:?}", b.actions());
    // Again: cancelled already, exit 0. Unknown: 6. Not an id: 2. Nothing pending: 0.
    assert_eq!(b.run(&["--cancel", &id]).status.code(), Some(0));
    let o = b.run(&["--cancel", "0123abcd"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(text(&o).contains("unknown job: no job 0123abcd in "), "{}", text(&o));
    let o = b.run(&["--cancel", "../../etc"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = b.run(&["--cancel", "ALL"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("nothing to cancel: no job is pending"), "{}", text(&o));
}

#[test]
fn a_cancel_after_the_job_started_is_too_late_exit_5() {
    let b = Bed::new();
    let id = b.detach(&["CORP\\jsmith"]).job.unwrap().id;
    let j = b.finished(&id, Duration::from_secs(15));
    assert_eq!(j.state, "done");
    let o = b.run(&["--cancel", &id]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains(&format!("too late: job {id} started logging off at ")), "{}", text(&o));
}

/// The cancel racing the due time, through real processes: a job due in 1 s, and a cancel
/// sent from 120 ms before to 120 ms after that, 16 times. A cancel that says "cancelled"
/// (exit 0) means no logoff; one that says "too late" (exit 5) means the job logged off;
/// nothing else happens.
#[test]
fn a_cancel_racing_the_due_time_either_wins_or_says_too_late() {
    let (mut won, mut late) = (0, 0);
    for i in 0..16u64 {
        let b = Bed::new();
        let t0 = Instant::now();
        let id = b.detach(&["CORP\\jsmith", "--message", "m", "--grace", "1s", "--timeout", "5s"]).job.unwrap().id;
        let at = Duration::from_millis(880 + (i * 97) % 240);
        std::thread::sleep(at.saturating_sub(t0.elapsed()));
        let o = b.run(&["--cancel", &id]);
        let j = b.finished(&id, Duration::from_secs(15));
        match o.status.code() {
            Some(0) => {
                won += 1;
                assert_eq!(j.state, "cancelled");
                assert_eq!(b.logoffs(), 0, "cancelled, yet logged off: {:?}", b.actions());
            }
            Some(5) => {
                late += 1;
                assert_eq!(j.state, "done");
                assert_eq!(b.logoffs(), 2, "{:?}", b.actions());
            }
            other => panic!("cancel exited {other:?}: {}", text(&o)),
        }
    }
    eprintln!("cancel vs due time: {won} cancelled, {late} too late");
    assert!(won > 0 && late > 0, "both sides of the race must have been run: {won} cancelled, {late} too late");
}

#[test]
fn bad_input_schedules_nothing_and_warns_no_one() {
    let b = Bed::new();
    // A protected account named without --force: exit 2, no job, no warning.
    let o = b.run(&["CORP\\jsmith,DWM-6", "--detach", "--message", "x"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(b.actions().is_empty());
    assert!(!b.jobs.exists() || std::fs::read_dir(&b.jobs).unwrap().count() == 0);
    // --detach with --dry-run: a usage error.
    assert_eq!(b.run(&["jsmith", "--detach", "--dry-run"]).status.code(), Some(2));
    // A job directory others may write to: nothing scheduled, no warning, exit 1.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(&b.jobs).unwrap();
        std::fs::set_permissions(&b.jobs, std::fs::Permissions::from_mode(0o777)).unwrap();
        let o = b.run(&["jsmith", "--detach", "--message", "x", "--format", "json"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let doc: ScheduleDoc = serde_json::from_slice(&o.stdout).unwrap();
        assert!(doc.job.is_none() && doc.error.unwrap().contains("writable by its group or others"));
        assert!(b.actions().is_empty(), "{:?}", b.actions());
        assert!(text(&o).contains("nothing was scheduled"), "{}", text(&o));
    }
}

#[test]
fn corrupt_and_untrusted_job_files_are_reported_and_never_run() {
    let b = Bed::new();
    let id = b.detach(&["CORP\\jsmith", "--message", "m", "--grace", "30s"]).job.unwrap().id;
    let write = |name: &str, body: &str, mode: u32| {
        let p = b.jobs.join(name);
        std::fs::write(&p, body).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
    };
    write("0000000a.json", "{\"version\": 1, \"id\": \"0000000a\", \"state\": \"pend", 0o600);
    let good = std::fs::read_to_string(b.jobs.join(format!("{id}.json"))).unwrap();
    write("0000000b.json", &good.replace(&id, "0000000b"), 0o646);
    let doc = b.pending();
    assert_eq!(doc.exit_code, 1);
    let refused: Vec<(&str, &str)> = doc.refused.iter().map(|r| (r.file.as_str(), r.reason.as_str())).collect();
    assert!(refused[0].0 == "0000000a.json" && refused[0].1.contains("corrupt JSON"), "{refused:?}");
    assert!(refused[1].0 == "0000000b.json" && refused[1].1.contains("writable by its group or others"), "{refused:?}");
    assert_eq!(doc.jobs.len(), 1, "the good job is still listed");
    let o = b.run(&["--pending"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("REFUSED: job file 0000000a.json: not a job file (corrupt JSON")
    );
    for bad in ["0000000a", "0000000b"] {
        let o = b.run(&["--run-job", bad]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(&format!("REFUSED: job file {bad}.json")), "{}", text(&o));
        assert_eq!(b.run(&["--cancel", bad]).status.code(), Some(1));
    }
    assert_eq!(b.logoffs(), 0);
    // `--cancel all` cancels the good job, reports the others, and exits 1 for them.
    let o = b.run(&["--cancel", "all", "--format", "json"]);
    let c: CancelDoc = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((c.exit_code, c.cancelled.len(), c.refused.len()), (1, 1, 2), "{c:?}");
}

#[test]
fn detach_with_drain_drains_before_the_warning_and_cancel_reopens() {
    let b = Bed::drainable();
    let o = b.run(&["ALL", "--drain", "--message", "Patching", "--grace", "30s", "--detach"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let drained = out.lines().position(|l| l.starts_with("drain: new logons refused")).expect(&out);
    let warned = out.lines().position(|l| l.starts_with("warning ")).expect(&out);
    assert!(drained < warned, "new logons stop before the warning:\n{out}");
    assert!(b.draining(), "the drain is in force during the grace period");
    let id = b.pending().jobs[0].id.clone();
    let j = b.job(&id);
    assert!(j.drained && j.targets.all && !j.targets.orphans, "{j:?}");
    let table = String::from_utf8(b.run(&["--pending"]).stdout).unwrap();
    assert!(table.contains("ALL (host drained)"), "{table}");

    // The cancel reopens what the scheduling closed, and logs no one off.
    let o = b.run(&["--cancel", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("undrain: new logons allowed again"), "{}", text(&o));
    assert!(!b.draining(), "{:?}", b.state()["drain"]);
    assert_eq!(b.logoffs(), 0, "{:?}", b.actions());

    // A job that runs leaves the drain in force after it, as a run does.
    let doc = b.detach(&["CORP\\jsmith", "--drain"]);
    let j = b.finished(&doc.job.unwrap().id, Duration::from_secs(15));
    assert_eq!((j.state.as_str(), j.exit_code, j.drained), ("done", Some(0), true), "{j:?}");
    assert!(b.draining());
    assert_eq!(b.logoffs(), 2, "{:?}", b.actions());
}

#[test]
fn a_job_keeps_orphans_and_the_profile_wait() {
    let b = Bed::new();
    let doc = b.detach(&["--orphans", "--wait-profile", "90s", "--message", "Bye", "--grace", "30s"]);
    let j = doc.job.unwrap();
    assert!(j.targets.orphans && !j.targets.all && j.targets.users.is_empty() && !j.drained, "{j:?}");
    let table = String::from_utf8(b.run(&["--pending"]).stdout).unwrap();
    assert!(table.lines().nth(1).is_some_and(|l| l.ends_with("  orphans")), "{table}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.jobs.join(format!("{}.json", j.id))).unwrap()).unwrap();
    assert_eq!(
        (file["spec"]["orphans"].as_bool(), file["spec"]["wait_profile_ms"].as_u64()),
        (Some(true), Some(90_000))
    );
    assert_eq!(b.run(&["--cancel", &j.id]).status.code(), Some(0));
}
