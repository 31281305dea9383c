//! CLI tests of the real binary against the fake backend: text, JSON and exit codes.
//!
//! The JSON document is deserialized into this file's own copy of the schema, with
//! `deny_unknown_fields` everywhere, so that any change to the schema fails here first.
//! (Fields that no test reads still pin the schema, hence `dead_code` is allowed.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

const BIN: &str = env!("CARGO_BIN_EXE_logoff-users");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    version: u32,
    tool: String,
    request: Request,
    error: Option<String>,
    hosts: Vec<Host>,
    summary: Summary,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    all: bool,
    users: Vec<String>,
    exclude: Vec<String>,
    dry_run: bool,
    timeout_ms: u64,
    orphans: bool,
    drain: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Host {
    host: String,
    backend: String,
    error: Option<String>,
    drain: Option<DrainReport>,
    plan: Option<Plan>,
    actions: Vec<Action>,
    verification: Option<Verification>,
    users: Vec<UserResult>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plan {
    users: Vec<UserPlan>,
    skipped: Vec<Skipped>,
    spared: Vec<Spared>,
    refused: Vec<Refusal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spared {
    user: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainReport {
    action: String,
    draining: bool,
    mechanism: Option<String>,
    ours: Option<DrainRecord>,
    detail: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainStatus {
    draining: bool,
    mechanism: Option<String>,
    ours: Option<DrainRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainRecord {
    version: u32,
    by: String,
    at: i64,
    set: String,
    previous: String,
    previous_value: Option<u32>,
    set_value: Option<u32>,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPlan {
    requested: String,
    account: Option<Account>,
    status: String,
    sessions: Vec<Session>,
    pids: Vec<u32>,
    terminate: Option<String>,
    notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Account {
    user: String,
    domain: Option<String>,
    uid: Option<u32>,
    sid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Session {
    id: String,
    user: String,
    domain: Option<String>,
    uid: Option<u32>,
    sid: Option<String>,
    station: Option<String>,
    state: String,
    remote_host: Option<String>,
    logon_time: Option<i64>,
    idle_seconds: Option<u64>,
    idle_source: String,
    class: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    leader: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Skipped {
    session_id: String,
    user: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    requested: String,
    user: String,
    session_id: Option<String>,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Action {
    action: String,
    user: String,
    session_id: Option<String>,
    reason: Option<String>,
    result: String,
    error: Option<String>,
    signalled: Option<u64>,
    method: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Verification {
    verified: bool,
    timed_out: bool,
    elapsed_ms: u64,
    polls: u32,
    zombies: u64,
    remaining: Vec<Remaining>,
    errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Remaining {
    user: String,
    sessions: Vec<String>,
    pids: Vec<u32>,
    names: Vec<String>,
    uninterruptible: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserResult {
    requested: String,
    user: Option<String>,
    outcome: String,
    /// `true`, `false` or `"unknown"`; `null` where profiles are not checked.
    profile_unloaded: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Summary {
    users_targeted: u64,
    users_logged_off: u64,
    users_not_logged_on: u64,
    users_failed: u64,
    users_disconnected: u64,
    users_left_alone: u64,
    sessions_logged_off: u64,
    sessions_already_gone: u64,
    processes_terminated: u64,
    actions_failed: u64,
    hosts_failed: u64,
    messages_delivered: u64,
    messages_failed: u64,
    profiles_still_loaded: u64,
    cancelled: bool,
    exit_code: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionList {
    version: u32,
    hosts: Vec<HostSessions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSessions {
    host: String,
    backend: String,
    error: Option<String>,
    drain: Option<DrainStatus>,
    sessions: Vec<Session>,
}

/// A private copy of a fixture state file, which the fake rewrites as it acts.
struct Machine {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Machine {
    fn new(fixture: &str) -> Machine {
        Machine::edit(fixture, |_| {})
    }

    fn edit(fixture: &str, f: impl FnOnce(&mut serde_json::Value)) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
        f(&mut v);
        let path = dir.path().join("state.json");
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
        Machine { _dir: dir, path }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--fake-state").arg(&self.path).args(args).env_remove("LOGOFF_USERS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.path).unwrap()).unwrap()
    }

    /// The requests the fake received, as `action:session:user`.
    fn actions(&self) -> Vec<String> {
        let state = self.state();
        let none = Vec::new();
        state["actions"]
            .as_array()
            .unwrap_or(&none)
            .iter()
            .map(|a| {
                format!(
                    "{}:{}:{}",
                    a["action"].as_str().unwrap(),
                    a["session"].as_str().unwrap_or("-"),
                    a["user"].as_str().unwrap()
                )
            })
            .collect()
    }

    fn session_ids(&self) -> Vec<String> {
        self.state()["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn report(o: &Output) -> Report {
    let r: Report = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", stdout(o)));
    assert_eq!(r.version, 2);
    assert!(r.tool.starts_with("logoff-users "));
    r
}

#[test]
fn logs_off_a_domain_user_and_says_so() {
    let m = Machine::new("rds.json");
    let o = m.run(&["CORP\\jsmith", "--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "host rds01 (backend fake)",
            "processing user CORP\\jsmith: 2 session(s), 2 process(es)",
            "logging off session 2 (RDP-Tcp#2) of CORP\\jsmith",
            "  ok: session 2 of CORP\\jsmith: logoff requested",
            "logging off session 3 of CORP\\jsmith",
            "  ok: session 3 of CORP\\jsmith: logoff requested",
            "verifying: waiting up to 2s for sessions and processes to go",
            "verified: CORP\\jsmith is logged off",
            "summary: 1 user(s) targeted: 1 logged off, 0 not logged on, 0 failed; 2 session(s) logged off, 0 already gone, 0 process(es) terminated, 0 action(s) failed (exit 0)",
        ]
    );
    assert_eq!(m.actions(), ["logoff_session:2:CORP\\jsmith", "logoff_session:3:CORP\\jsmith"]);
    // The local jsmith, and everyone else, are untouched.
    assert_eq!(m.session_ids(), ["1", "4", "5", "6", "7"]);
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal");
}

#[test]
fn json_report_holds_plan_actions_verification_and_summary() {
    let m = Machine::new("rds.json");
    let o = m.run(&["--users", "jsmith, 'John Smith', émile, nosuch", "--format", "json", "--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert!(r.error.is_none());
    assert!(!r.request.all);
    assert_eq!(r.request.users, ["jsmith", "John Smith", "émile", "nosuch"]);
    assert!(r.request.exclude.is_empty());
    assert!(!r.request.dry_run);
    assert_eq!(r.request.timeout_ms, 2000);
    assert_eq!(r.hosts.len(), 1);
    let h = &r.hosts[0];
    assert_eq!((h.host.as_str(), h.backend.as_str()), ("rds01", "fake"));
    assert!(h.error.is_none());
    let plan = h.plan.as_ref().unwrap();
    assert!(plan.refused.is_empty() && plan.skipped.is_empty());
    let planned: Vec<(String, Vec<String>)> = plan
        .users
        .iter()
        .map(|u| {
            (
                u.account
                    .as_ref()
                    .map(|a| format!("{}\\{}", a.domain.clone().unwrap_or_default(), a.user))
                    .unwrap_or_default(),
                u.sessions.iter().map(|s| s.id.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        planned,
        [
            ("CORP\\jsmith".to_string(), vec!["2".to_string(), "3".to_string()]),
            ("RDS01\\jsmith".to_string(), vec!["4".to_string()]),
            ("CORP\\John Smith".to_string(), vec!["5".to_string()]),
            ("CORP\\Émile".to_string(), vec!["7".to_string()]),
            (String::new(), vec![]),
        ]
    );
    assert_eq!(plan.users[4].status, "not_logged_on");
    assert_eq!(plan.users[0].status, "logged_on");
    assert_eq!(plan.users[0].sessions[1].state, "disconnected");
    assert_eq!(h.actions.len(), 5);
    assert!(h.actions.iter().all(|a| a.action == "logoff_session" && a.result == "requested" && a.error.is_none()));
    let v = h.verification.as_ref().unwrap();
    assert!(v.verified && !v.timed_out && v.remaining.is_empty() && v.errors.is_empty());
    assert!(v.polls >= 1);
    let outcomes: Vec<&str> = h.users.iter().map(|u| u.outcome.as_str()).collect();
    assert_eq!(outcomes, ["logged_off", "logged_off", "logged_off", "logged_off", "not_logged_on"]);
    assert_eq!(r.summary.users_targeted, 5);
    assert_eq!(r.summary.users_logged_off, 4);
    assert_eq!(r.summary.users_not_logged_on, 1);
    assert_eq!(r.summary.sessions_logged_off, 5);
    assert_eq!(r.summary.exit_code, 0);
}

#[test]
fn refused_inputs_exit_2_and_do_nothing() {
    let table: &[(&[&str], &str)] = &[
        (&[], "no users given"),
        (&["--users", ""], "no users given"),
        (&["--users", " , ,'' "], "nothing but blanks"),
        (&["--users", "@Users@"], "the RMM did not fill in the parameter"),
        (&["--users", "'@Users@'"], "the RMM did not fill in the parameter"),
        (&["ALL,jsmith"], "ALL cannot be mixed with names"),
        (&["ALL", "jsmith"], "ALL cannot be mixed with names"),
        (&["\\jsmith"], "malformed user name"),
        (&["CORP\\"], "malformed user name"),
        (&["A\\B\\c"], "malformed user name"),
        (&["bad\u{1}name"], "malformed user name"),
        (&["jsmith", "--exclude", "ALL"], "--exclude cannot be ALL"),
        (&["jsmith", "--timeout", "soon"], "bad duration"),
        (&["jsmith", "--bogus"], "unexpected argument"),
        (&["jsmith", "--list"], "cannot be used with"),
    ];
    for (args, message) in table {
        let m = Machine::new("rds.json");
        let o = m.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert!(m.actions().is_empty(), "{args:?} acted");
    }
}

#[test]
fn bad_input_in_json_mode_is_a_json_error() {
    let m = Machine::new("rds.json");
    let o = m.run(&["--users", "@Users@", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let r = report(&o);
    assert!(r.error.unwrap().contains("RMM did not fill in the parameter"));
    assert!(r.hosts.is_empty());
    assert_eq!(r.summary.exit_code, 2);
}

#[test]
fn users_come_from_the_environment_too() {
    let m = Machine::new("rds.json");
    let o = m.run_env(&["--timeout", "2s"], &[("LOGOFF_USERS", "'CORP\\jsmith'")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(m.actions().len(), 2);
    let m = Machine::new("rds.json");
    let o = m.run_env(&[], &[("LOGOFF_USERS", "@Users@")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(m.actions().is_empty());
}

#[test]
fn a_list_in_the_arguments_and_in_the_environment_is_refused() {
    // An RMM template that passes a stray word must not target a user of that name
    // instead of the list the RMM filled in.
    for (args, env) in [(&["tonight"][..], "CORP\\jsmith"), (&["--users", "ALL"][..], "ALL")] {
        let m = Machine::new("rds.json");
        let o = m.run_env(args, &[("LOGOFF_USERS", env)]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("two user lists were given"), "{}", stderr(&o));
        assert!(m.actions().is_empty(), "{args:?} acted");
    }
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let m = Machine::new("rds.json");
    let before = m.state();
    let o = m.run(&["ALL", "--dry-run", "--exclude", "RDS01\\jsmith"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(m.state(), before, "a dry run changes nothing");
    let text = stdout(&o);
    for want in [
        "would skip session 1 of RDS01\\admin: session 1 is the one running this tool",
        "would skip session 4 of RDS01\\jsmith: excluded",
        "would skip session 6 of Window Manager\\DWM-6: DWM-6 is a protected system account (DWM-*)",
        "would log off session 2 (RDP-Tcp#2) of CORP\\jsmith",
        "would log off session 7 (RDP-Tcp#7) of CORP\\Émile",
        "summary: 3 user(s) targeted, 0 not logged on; nothing was done (exit 0)",
    ] {
        assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
    }
    let o = m.run(&["ALL", "--dry-run", "--format", "json"]);
    let r = report(&o);
    assert!(r.request.all && r.request.dry_run);
    assert!(r.hosts[0].actions.is_empty() && r.hosts[0].verification.is_none());
    assert!(r.hosts[0].users.iter().all(|u| u.outcome == "planned"));
    assert_eq!(r.hosts[0].plan.as_ref().unwrap().skipped.len(), 2);
}

#[test]
fn all_logs_off_everyone_but_the_protected_and_the_tools_own_session() {
    let m = Machine::new("rds.json");
    let o = m.run(&["all", "--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(m.session_ids(), ["1", "6"]);
    assert!(m.actions().iter().all(|a| !a.contains(":1:") && !a.contains(":6:")));
}

#[test]
fn protected_accounts_need_force_and_own_session_never_goes() {
    let m = Machine::new("rds.json");
    let o = m.run(&["DWM-6"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("protected system account"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"));
    assert!(m.actions().is_empty());

    let o = m.run(&["DWM-6", "--force", "--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(m.actions(), ["logoff_session:6:Window Manager\\DWM-6"]);

    let m = Machine::new("rds.json");
    let o = m.run(&["admin", "--force", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let r = report(&o);
    let refused = &r.hosts[0].plan.as_ref().unwrap().refused;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].session_id.as_deref(), Some("1"));
    assert_eq!(refused[0].requested, "admin");
    assert!(refused[0].reason.contains("running this tool"));
    assert!(m.actions().is_empty());

    let m = Machine::new("rds.json");
    let o = m.run(&["SYSTEM"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(m.actions().is_empty());
}

#[test]
fn a_session_that_refuses_to_go_exits_1_after_the_timeout() {
    let m = Machine::edit("rds.json", |v| v["faults"]["refuse_to_go"] = serde_json::json!(["2"]));
    let started = std::time::Instant::now();
    let o = m.run(&["CORP\\jsmith", "--timeout", "300ms", "--format", "json"]);
    // The timeout bounds the whole run, actions and verification together.
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(o.status.code(), Some(1));
    let r = report(&o);
    let v = r.hosts[0].verification.as_ref().unwrap();
    assert!(!v.verified && v.timed_out);
    assert!(v.elapsed_ms >= 200, "verification gave up early: {} ms", v.elapsed_ms);
    assert_eq!(v.remaining[0].user, "CORP\\jsmith");
    assert_eq!(v.remaining[0].sessions, ["2"]);
    assert_eq!(r.hosts[0].users[0].outcome, "failed");
    assert_eq!(r.summary.users_failed, 1);
    assert_eq!(r.summary.exit_code, 1);

    let o = m.run(&["CORP\\jsmith", "--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("STILL PRESENT after the timeout: CORP\\jsmith: session(s) [2]"), "{}", stdout(&o));
}

#[test]
fn a_failed_logoff_still_runs_the_rest_and_exits_1() {
    let m = Machine::edit("rds.json", |v| {
        v["faults"]["logoff_fails"] = serde_json::json!({"2": "Access is denied. Grant the Reset permission."})
    });
    let o = m.run(&["CORP\\jsmith,John Smith", "--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains(
            "  FAILED: session 2 of CORP\\jsmith: could not log off session 2 of CORP\\jsmith: Access is denied."
        ),
        "{text}"
    );
    assert_eq!(m.actions().len(), 3, "every action ran");
    assert!(text.contains("verified: CORP\\John Smith is logged off"));
    assert!(text.lines().last().unwrap().contains("1 action(s) failed (exit 1)"));
}

#[test]
fn an_already_gone_session_is_not_an_error() {
    let m = Machine::edit("rds.json", |v| v["faults"]["vanish_before_logoff"] = serde_json::json!(["5"]));
    let o = m.run(&["John Smith", "--timeout", "2s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let r = report(&o);
    assert_eq!(r.hosts[0].actions[0].result, "already_gone");
    assert_eq!(r.summary.sessions_already_gone, 1);
}

#[test]
fn process_fallback_and_its_switch() {
    let m = Machine::new("rds.json");
    let o = m.run(&["svcbackup", "--timeout", "2s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    let a = &r.hosts[0].actions[0];
    assert_eq!(
        (a.action.as_str(), a.reason.as_deref(), a.signalled),
        ("terminate_processes", Some("fallback"), Some(1))
    );
    let pids: Vec<u64> =
        m.state()["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert!(!pids.contains(&800));
    assert!(pids.contains(&801), "the services-session process stays without --include-services");

    let m = Machine::new("rds.json");
    let o = m.run(&["svcbackup", "--no-process-fallback"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(m.actions().is_empty());
    assert!(stdout(&o).contains("left alone (--no-process-fallback)"), "{}", stdout(&o));

    let m = Machine::new("rds.json");
    let o = m.run(&["svcbackup", "--include-services", "--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(m.state()["processes"].as_array().unwrap().iter().filter(|p| p["user"] == "svcbackup").count(), 0);
}

#[test]
fn no_privilege_exits_3_and_does_nothing() {
    let m = Machine::edit("rds.json", |v| v["faults"]["unprivileged"] = serde_json::json!(true));
    let o = m.run(&["jsmith"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("run as root or elevated"), "{}", stderr(&o));
    assert!(m.actions().is_empty());
}

#[test]
fn the_second_run_finds_nothing_to_do() {
    let m = Machine::new("rds.json");
    assert_eq!(m.run(&["jsmith", "--timeout", "2s"]).status.code(), Some(0));
    let n = m.actions().len();
    let o = m.run(&["jsmith", "--timeout", "2s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(m.actions().len(), n);
    assert_eq!(report(&o).summary.users_not_logged_on, 1);
}

#[test]
fn list_as_table_and_json() {
    let m = Machine::new("rds.json");
    let o = m.run(&["--list"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "HOST   ID  USER                  STATION    STATE         IDLE     LOGON (UTC)       FROM");
    assert_eq!(
        lines[2],
        "rds01  2   CORP\\jsmith           RDP-Tcp#2  active        30s      2026-11-18 11:08  10.0.0.5"
    );
    assert_eq!(lines.len(), 8);

    let o = m.run(&["--list", "--format", "json"]);
    let l: SessionList = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(l.version, 2);
    assert_eq!(l.hosts[0].host, "rds01");
    assert!(l.hosts[0].drain.is_none(), "this fake machine has no drain");
    assert_eq!(l.hosts[0].backend, "fake");
    assert!(l.hosts[0].error.is_none());
    let ids: Vec<&str> = l.hosts[0].sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7"]);
    let s = &l.hosts[0].sessions[1];
    assert_eq!((s.user.as_str(), s.domain.as_deref(), s.state.as_str()), ("jsmith", Some("CORP"), "active"));
    assert_eq!(
        (s.remote_host.as_deref(), s.idle_seconds, s.idle_source.as_str(), s.logon_time),
        (Some("10.0.0.5"), Some(30), "last_input", Some(1_795_000_100))
    );
    // Unknown idle time is "unknown", in JSON and in the table, never 0.
    let console = &l.hosts[0].sessions[0];
    assert_eq!((console.idle_seconds, console.idle_source.as_str()), (None, "unknown"));
    assert!(lines[1].contains(" unknown "), "{}", lines[1]);
    assert!(m.actions().is_empty());
}

#[test]
fn an_unreachable_host_is_reported_and_exits_1() {
    let m =
        Machine::edit("rds.json", |v| v["faults"]["unreachable"] = serde_json::json!("The RPC server is unavailable."));
    let o = m.run(&["jsmith", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let r = report(&o);
    assert!(r.hosts[0].error.as_deref().unwrap().contains("The RPC server is unavailable."));
    assert_eq!(r.summary.hosts_failed, 1);
}

#[cfg(not(any(target_os = "linux", windows)))]
#[test]
fn an_unsupported_os_says_so() {
    let o = Command::new(BIN).arg("--list").output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("not supported yet"));
}

#[cfg(unix)]
#[test]
fn every_action_and_the_outcome_reach_the_audit_log() {
    use std::os::unix::net::UnixDatagram;
    let m = Machine::new("rds.json");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("log");
    let server = UnixDatagram::bind(&sock).unwrap();
    server.set_nonblocking(true).unwrap();
    let o = m.run(&["CORP\\jsmith,svcbackup", "--timeout", "2s", "--audit-socket", sock.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut records = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = server.recv(&mut buf) {
        records.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    assert_eq!(records.len(), 4, "{records:#?}");
    let body = |r: &str| r.split_once("]: ").unwrap().1.to_string();
    assert!(records[0].starts_with("<85>logoff-users["), "{}", records[0]);
    assert!(
        body(&records[0])
            .starts_with("action=logoff_session host=rds01 user=CORP\\jsmith session=2 result=requested invoked_by=")
    );
    assert!(body(&records[1]).contains("session=3 result=requested"));
    assert!(body(&records[2]).starts_with(
        "action=terminate_processes host=rds01 user=CORP\\svcbackup reason=fallback result=requested signalled=1 "
    ));
    assert!(
        body(&records[3]).starts_with("action=run targets=CORP\\jsmith,svcbackup users_logged_off=2 "),
        "{}",
        records[3]
    );
    assert!(body(&records[3]).contains(" exit_code=0 "));

    // Messages are actions too; a run with a warning records them before the logoff.
    let m2 = Machine::new("rds.json");
    let o = m2.run(&[
        "John Smith",
        "--message",
        "bye",
        "--grace",
        "100ms",
        "--timeout",
        "2s",
        "--audit-socket",
        sock.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut bodies = Vec::new();
    while let Ok(n) = server.recv(&mut buf) {
        bodies.push(body(std::str::from_utf8(&buf[..n]).unwrap()));
    }
    assert_eq!(bodies.len(), 3, "{bodies:#?}");
    assert!(
        bodies[0].starts_with("action=send_message host=rds01 user=\"CORP\\\\John Smith\" session=5 result=requested"),
        "{}",
        bodies[0]
    );
    assert!(bodies[1].starts_with("action=logoff_session "));
    assert!(bodies[2].starts_with("action=run "));

    // A dry run, and a refused run, write nothing.
    let o = m.run(&["ALL", "--dry-run", "--audit-socket", sock.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(server.recv(&mut buf).is_err());
}

#[test]
fn message_then_grace_then_logoff() {
    let m = Machine::new("rds.json");
    let o = m.run(&[
        "CORP\\jsmith",
        "--message",
        "Maintenance at 22:00: save your work",
        "--grace",
        "1s",
        "--timeout",
        "2s",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        m.actions(),
        [
            "send_message:2:CORP\\jsmith",
            "send_message:3:CORP\\jsmith",
            "logoff_session:2:CORP\\jsmith",
            "logoff_session:3:CORP\\jsmith"
        ]
    );
    let texts: Vec<String> = m.state()["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(texts[0], "Maintenance at 22:00: save your work (You will be logged off in 1s.)");
    let r = report(&o);
    assert_eq!(r.summary.messages_delivered, 2);
    assert_eq!(r.summary.messages_failed, 0);
    let sent: Vec<(&str, Option<&str>, &str)> = r.hosts[0]
        .actions
        .iter()
        .filter(|a| a.action == "send_message")
        .map(|a| (a.action.as_str(), a.session_id.as_deref(), a.result.as_str()))
        .collect();
    assert_eq!(sent, [("send_message", Some("2"), "requested"), ("send_message", Some("3"), "requested")]);

    let m = Machine::new("rds.json");
    let o = m.run(&["CORP\\jsmith", "--message", "bye", "--grace", "300ms", "--timeout", "2s"]);
    let text = stdout(&o);
    for want in [
        "warning 2 session(s): \"bye\"",
        "  ok: session 2 of CORP\\jsmith: message delivered",
        "countdown: 300ms left (Ctrl-C or SIGTERM cancels)",
        "grace period over: acting now",
    ] {
        assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
    }
    assert!(text.lines().last().unwrap().ends_with("2 message(s) delivered, 0 not delivered (exit 0)"), "{text}");
}

#[test]
fn too_long_a_message_is_refused() {
    let m = Machine::new("rds.json");
    let long = "x".repeat(256);
    let o = m.run(&["jsmith", "--message", &long]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--message is 256 characters; at most 255"), "{}", stderr(&o));
    assert!(m.actions().is_empty());
}

/// Starts the tool with `args`, reads its lines until the grace period's countdown starts,
/// calls `during`, then sends SIGTERM to it (our own child, by its pid, once); returns its
/// exit code and every line it printed.
#[cfg(unix)]
fn sigterm_once_counting_down(args: &[&str], during: impl FnOnce()) -> (Option<i32>, Vec<String>) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(BIN).args(args).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let started = line.starts_with("countdown: 1m left");
        seen.push(line);
        if started {
            break;
        }
    }
    during();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    seen.extend(lines.map(|l| l.unwrap()));
    (child.wait().unwrap().code(), seen)
}

#[cfg(unix)]
#[test]
fn sigterm_during_the_grace_period_cancels_and_logs_no_one_off() {
    let m = Machine::new("rds.json");
    let args = ["--fake-state", m.path.to_str().unwrap(), "ALL", "--message", "going down", "--grace", "60s"];
    let (code, seen) = sigterm_once_counting_down(&args, || {});
    assert_eq!(code, Some(4), "{seen:#?}");
    assert!(seen.iter().any(|l| l == "cancelled during the grace period: no one was logged off"), "{seen:#?}");
    assert!(
        seen.last().unwrap().starts_with("summary: cancelled during the grace period; 5 message(s) delivered"),
        "{seen:#?}"
    );
    assert!(m.actions().iter().all(|a| a.starts_with("send_message:")), "{:?}", m.actions());
    assert_eq!(m.session_ids(), ["1", "2", "3", "4", "5", "6", "7"]);
}

#[test]
fn session_filters_pick_disconnected_or_idle_sessions() {
    let m = Machine::new("rds.json");
    let o = m.run(&["jsmith", "--disconnected-only", "--timeout", "2s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(m.actions(), ["logoff_session:3:CORP\\jsmith"]);
    let r = report(&o);
    let skipped = &r.hosts[0].plan.as_ref().unwrap().skipped;
    assert!(skipped.iter().any(|s| s.session_id == "2" && s.reason == "not disconnected (state active)"));
    assert_eq!(r.summary.users_left_alone, 1, "RDS01\\jsmith has no disconnected session");

    let m = Machine::new("rds.json");
    let o = m.run(&["ALL", "--idle-over", "1h", "--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(m.actions(), ["logoff_session:3:CORP\\jsmith"]);
    assert!(stdout(&o).contains("skipping session 2 of CORP\\jsmith: idle 30s, not over 1h"), "{}", stdout(&o));
    assert!(stdout(&o).contains("skipping session 4 of RDS01\\jsmith: idle time unknown"));
}

#[test]
fn disconnect_keeps_the_session_and_needs_a_backend_that_can() {
    let m = Machine::new("rds.json");
    let o = m.run(&["jsmith", "--disconnect"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--disconnect is not possible"), "{}", stderr(&o));
    assert!(m.actions().is_empty());

    let m = Machine::edit("rds.json", |v| v["policy"]["can_disconnect"] = serde_json::json!(true));
    let o = m.run(&["CORP\\jsmith", "--disconnect", "--timeout", "2s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r.hosts[0].users[0].outcome, "disconnected");
    assert_eq!(r.summary.users_disconnected, 1);
    assert_eq!(m.session_ids(), ["1", "2", "3", "4", "5", "6", "7"], "disconnected sessions stay");
}

#[test]
fn odd_names_are_matched_exactly_and_never_reach_a_shell() {
    let odd = ["o'brien", "$(touch pwned)", "a;b", "x y", "ü ser", "back`tick`", "semi;colon&amp", "-dash"];
    let m = Machine::edit("rds.json", |v| {
        let sessions = v["sessions"].as_array_mut().unwrap();
        for (i, name) in odd.iter().enumerate() {
            sessions.push(
                serde_json::json!({"id": format!("{}", 100 + i), "user": name, "domain": "CORP", "state": "active"}),
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    // Each odd name, quoted as an RMM would pass it; -dash goes after `--`.
    let list = odd.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(",");
    let o = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--fake-state", m.path.to_str().unwrap(), "--timeout", "2s", "--users", &list])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let acted: Vec<String> = m.actions();
    assert_eq!(acted.len(), odd.len(), "{acted:#?}");
    for (i, name) in odd.iter().enumerate() {
        assert_eq!(acted[i], format!("logoff_session:{}:CORP\\{name}", 100 + i));
    }
    assert!(!dir.path().join("pwned").exists());
    // Everyone else stays.
    assert_eq!(m.session_ids(), ["1", "2", "3", "4", "5", "6", "7"]);
}

#[test]
fn a_list_of_ten_thousand_names() {
    let m = Machine::new("rds.json");
    let mut names: Vec<String> = (0..9_999).map(|i| format!("user{i:05}")).collect();
    names.push("CORP\\jsmith".to_string());
    let o = m.run(&["--users", &names.join(","), "--timeout", "2s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r.request.users.len(), 10_000);
    assert_eq!(r.summary.users_targeted, 10_000);
    assert_eq!(r.summary.users_not_logged_on, 9_999);
    assert_eq!(r.summary.users_logged_off, 1);
    assert_eq!(m.actions(), ["logoff_session:2:CORP\\jsmith", "logoff_session:3:CORP\\jsmith"]);
}

/// Whether `c` may not reach a terminal or a log but as a line's newline (the library's
/// independently written table, `testing::fuzz::render::forbidden`).
fn forbidden(c: char) -> bool {
    c != '\n' && logoff_users::testing::fuzz::render::forbidden(c)
}

/// The rds.json machine with a session whose user, station and client host were chosen to
/// forge lines and drive the terminal, and a process of that user named to do the same.
fn hostile_machine(fault: serde_json::Value) -> Machine {
    Machine::edit("rds.json", |v| {
        v["sessions"].as_array_mut().unwrap().push(serde_json::json!({
            "id": "8", "user": "ev\nverified: root is\u{202e}", "domain": "CORP", "station": "RDP\u{1b}[2J",
            "state": "active", "remote_host": "x\nsummary: 0 failed\u{1b}]0;pwned\u{7}"
        }));
        v["processes"].as_array_mut().unwrap().push(serde_json::json!({
            "pid": 880, "user": "ev\nverified: root is\u{202e}", "domain": "CORP", "session_id": "8",
            "name": "a\nverified\u{1b}[2J"
        }));
        v["faults"] = fault;
    })
}

fn assert_clean(what: &str, text: &str) {
    let bad: Vec<char> = text.chars().filter(|&c| forbidden(c)).collect();
    assert!(bad.is_empty(), "{what}: {bad:?} in\n{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("verified: root") && !line.starts_with("summary: 0 failed"),
            "{what}: forged: {line}"
        );
    }
}

#[cfg(unix)]
#[test]
fn hostile_text_is_escaped_in_text_and_audit_and_exact_in_json() {
    use std::os::unix::net::UnixDatagram;
    const USER: &str = "CORP\\ev\\nverified: root is\\u{202e}";
    let m = hostile_machine(serde_json::json!({ "refuse_to_go": ["8"], "survivors": [880] }));

    // --list: the table has its 9 lines (header and 8 sessions), the fields escaped.
    let o = m.run(&["--list"]);
    assert_eq!(o.status.code(), Some(0));
    let table = stdout(&o);
    assert_clean("--list", &table);
    assert_eq!(table.lines().count(), 9, "{table}");
    let row = table.lines().find(|l| l.starts_with("rds01  8 ")).unwrap();
    assert!(row.contains(&format!("{USER}  RDP\\x1b[2J")), "{row}");
    assert!(row.ends_with("x\\nsummary: 0 failed\\x1b]0;pwned\\x07"), "{row}");
    // JSON stays exact.
    let o = m.run(&["--list", "--format", "json"]);
    let l: SessionList = serde_json::from_slice(&o.stdout).unwrap();
    let s = l.hosts[0].sessions.iter().find(|s| s.id == "8").unwrap();
    assert_eq!(s.user, "ev\nverified: root is\u{202e}");
    assert_eq!(s.remote_host.as_deref(), Some("x\nsummary: 0 failed\u{1b}]0;pwned\u{7}"));

    // The dry run.
    let o = m.run(&["ALL", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert_clean("--dry-run", &text);
    assert!(text.contains(&format!("would log off session 8 (RDP\\x1b[2J) of {USER}\n")), "{text}");

    // The run: the session refuses to go and the process survives; both are named, escaped,
    // in the STILL PRESENT line; the audit records are one line each.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("log");
    let server = UnixDatagram::bind(&sock).unwrap();
    server.set_nonblocking(true).unwrap();
    let o = m.run(&["ALL", "--timeout", "300ms", "--audit-socket", sock.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert_clean("the run", &text);
    assert_clean("the run's stderr", &stderr(&o));
    let still =
        format!("STILL PRESENT after the timeout: {USER}: session(s) [8], process(es) [880 (a\\nverified\\x1b[2J)]\n");
    assert!(text.contains(&still), "{text}");
    let mut records = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = server.recv(&mut buf) {
        records.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    assert!(records.len() >= 2, "{records:#?}");
    for r in &records {
        assert_clean("an audit record", r);
        assert!(!r.contains('\n'), "{r:?}");
    }
    let quoted = "user=\"CORP\\\\ev\\nverified: root is\\u{202e}\" session=8 result=requested";
    assert!(records.iter().any(|r| r.contains(quoted)), "{records:#?}");

    // A failure whose error text holds the same: one FAILED line.
    let m = hostile_machine(serde_json::json!({ "logoff_fails": { "8": "Access\ndenied\u{1b}[31m" } }));
    let o = m.run(&["ALL", "--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert_clean("a failed run", &text);
    let failed =
        format!("  FAILED: session 8 of {USER}: could not log off session 8 of {USER}: Access\\ndenied\\x1b[31m\n");
    assert!(text.contains(&failed), "{text}");
}

/// A fake machine that can drain, with `in_force` refusing logons already (or nothing).
fn drainable(in_force: Option<&str>) -> Machine {
    Machine::edit("rds.json", |v| v["drain"] = serde_json::json!({ "in_force": in_force }))
}

#[test]
fn drain_alone_then_undrain_restores_logons() {
    let m = drainable(None);
    let o = m.run(&["--drain", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let r = report(&o);
    assert_eq!((r.request.drain.as_deref(), r.request.users.len(), r.request.all), (Some("drain"), 0, false));
    let d = r.hosts[0].drain.as_ref().unwrap();
    assert_eq!((d.action.as_str(), d.draining), ("drained", true));
    let ours = d.ours.as_ref().unwrap();
    assert!(!ours.by.is_empty() && ours.at > 1_700_000_000, "{ours:?}");
    assert_eq!(ours.text.as_deref(), Some("This host is being cleared for maintenance: new logons are refused."));
    assert!(m.actions().is_empty(), "a drain alone logs no one off: {:?}", m.actions());
    assert_eq!(m.session_ids().len(), 7);

    // --list says so, in text and JSON.
    let o = m.run(&["--list"]);
    let text = stdout(&o);
    assert!(text.lines().any(|l| l.starts_with("host rds01: new logons refused by this tool's drain (by ")), "{text}");
    let l: SessionList = serde_json::from_slice(&m.run(&["--list", "--format", "json"]).stdout).unwrap();
    assert!(l.hosts[0].drain.as_ref().is_some_and(|d| d.draining && d.ours.is_some()));

    // A second drain keeps the first; --undrain restores.
    let o = m.run(&["--drain"]);
    assert!(stdout(&o).contains("drain: new logons refused (by "), "{}", stdout(&o));
    assert_eq!(
        report(&m.run(&["--drain", "--format", "json"])).hosts[0].drain.as_ref().unwrap().action,
        "already_drained"
    );
    let o = m.run(&["--undrain"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("undrain: new logons allowed again"), "{text}");
    assert_eq!(text.lines().last(), Some("summary: undrain: new logons allowed (exit 0)"));
    assert!(m.state()["drain"]["in_force"].is_null());
    let o = m.run(&["--undrain", "--format", "json"]);
    assert_eq!(report(&o).hosts[0].drain.as_ref().unwrap().action, "not_draining");
}

#[test]
fn drain_then_log_everyone_off() {
    let m = drainable(None);
    let o = m.run(&["--drain", "ALL", "--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    let drained = text.lines().position(|l| l.starts_with("drain: new logons refused")).expect(&text);
    let first_logoff = text.lines().position(|l| l.starts_with("logging off session")).expect(&text);
    assert!(drained < first_logoff, "new logons stop before anyone is logged off:\n{text}");
    assert!(text.lines().last().unwrap().contains(", drain: new logons refused (exit 0)"), "{text}");
    // The drain stays after the run: that is the point.
    assert!(m.state()["drain"]["in_force"].is_string());
}

#[test]
fn someone_elses_drain_is_left_alone() {
    let m = drainable(Some("TSServerDrainMode = 2 (drain)"));
    let o = m.run(&["--drain", "jsmith", "--timeout", "2s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    let d = r.hosts[0].drain.as_ref().unwrap();
    assert_eq!((d.action.as_str(), d.draining, d.ours.is_none()), ("already_draining", true, true));
    assert!(!m.actions().is_empty(), "the logoff went on");
    // --undrain does not touch it, and says logons are still refused (exit 1).
    let o = m.run(&["--undrain"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("undrain: new logons are still refused"), "{}", stdout(&o));
    assert_eq!(m.state()["drain"]["in_force"], "TSServerDrainMode = 2 (drain)");
}

#[test]
fn a_drain_that_fails_acts_on_nothing() {
    let m = Machine::edit("rds.json", |v| {
        v["drain"] = serde_json::json!({});
        v["faults"]["drain_fails"] = serde_json::json!("Access is denied to the registry key.");
    });
    let o = m.run(&["--drain", "ALL", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let r = report(&o);
    let d = r.hosts[0].drain.as_ref().unwrap();
    assert_eq!(d.action, "failed");
    assert!(d.error.as_deref().unwrap().contains("Access is denied to the registry key."), "{d:?}");
    assert!(r.hosts[0].error.as_deref().unwrap().starts_with("not acted on: "), "{:?}", r.hosts[0].error);
    assert!(m.actions().is_empty(), "{:?}", m.actions());
    // A machine without a drain: exit 3, nothing done.
    let m = Machine::new("rds.json");
    let o = m.run(&["--drain", "ALL"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stderr(&o).contains("could not stop new logons: this fake machine has no drain"), "{}", stderr(&o));
    assert!(m.actions().is_empty());
}

#[cfg(unix)]
#[test]
fn a_cancel_undoes_the_runs_own_drain() {
    let m = drainable(None);
    let args = ["--fake-state", m.path.to_str().unwrap(), "--drain", "ALL", "--message", "patching", "--grace", "60s"];
    let (code, seen) = sigterm_once_counting_down(&args, || {
        assert_eq!(m.state()["drain"]["record"]["text"], "patching", "the warning is the drain's text");
    });
    assert_eq!(code, Some(4), "{seen:#?}");
    assert!(seen.iter().any(|l| l.starts_with("undrain: new logons allowed again: after the cancel")), "{seen:#?}");
    assert!(m.state()["drain"]["in_force"].is_null(), "{}", m.state()["drain"]);
}

/// A Linux-like login node: alice logged on, carol logged out leaving a job (her session
/// "closing"), dave's process outlived a session, erin lingers, nobody and root run daemons.
fn login_node() -> Machine {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let p = |pid: u32, user: &str, uid: u32| serde_json::json!({ "pid": pid, "user": user, "uid": uid, "name": "job" });
    let state = serde_json::json!({
        "policy": { "sweep_after_logoff": true, "uid_min": 1000, "uid_max": 60000 },
        "sessions": [
            { "id": "c1", "user": "alice", "uid": 1001, "state": "active" },
            { "id": "c2", "user": "carol", "uid": 1004, "state": "closing" }
        ],
        "processes": [p(100, "alice", 1001), p(110, "carol", 1004), p(120, "dave", 1005), p(121, "dave", 1005),
                      p(130, "erin", 1006), p(150, "nobody", 65534), p(170, "root", 0)],
        "lingering": [1006]
    });
    std::fs::write(&path, state.to_string()).unwrap();
    Machine { _dir: dir, path }
}

#[test]
fn orphans_are_listed_then_ended() {
    let m = login_node();
    let o = m.run(&["--orphans", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "would log off session c2 of carol",
        "would terminate the 1 process(es) of carol (orphan: no live session)",
        "would terminate the 2 process(es) of dave (orphan: no live session)",
        "sparing user erin (no live session): lingers (loginctl enable-linger)",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(!text.contains("alice") && !text.contains("nobody") && !text.contains("root"), "{text}");
    let o = m.run(&["--orphans", "--timeout", "2s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let r = report(&o);
    assert!(r.request.orphans);
    let plan = r.hosts[0].plan.as_ref().unwrap();
    let orphans: Vec<(&str, &str, Option<&str>)> = plan
        .users
        .iter()
        .map(|u| (u.requested.as_str(), u.account.as_ref().unwrap().user.as_str(), u.terminate.as_deref()))
        .collect();
    assert_eq!(orphans, [("--orphans", "carol", Some("orphan")), ("--orphans", "dave", Some("orphan"))]);
    assert_eq!(plan.spared.iter().map(|s| s.user.as_str()).collect::<Vec<_>>(), ["erin"]);
    let reasons: Vec<Option<&str>> =
        r.hosts[0].actions.iter().filter(|a| a.action == "terminate_processes").map(|a| a.reason.as_deref()).collect();
    assert_eq!(reasons, [Some("orphan"), Some("orphan")]);
    let pids: Vec<u64> =
        m.state()["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids, [100, 130, 150, 170], "alice, erin, nobody and root keep theirs");
    assert_eq!(m.session_ids(), ["c1"]);
}

#[test]
fn a_profile_still_loaded_fails_its_user() {
    // John Smith's profile never unloads, Émile's after two more checks.
    let m =
        Machine::edit("rds.json", |v| v["profiles"] = serde_json::json!({ "John Smith": 4294967295u32, "Émile": 2 }));
    let started = std::time::Instant::now();
    let o = m.run(&["John Smith,Émile", "--timeout", "20s", "--wait-profile", "1s"]);
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("profile of CORP\\Émile: unloaded (hive gone)"), "{text}");
    assert!(
        text.contains("PROFILE STILL LOADED after the timeout: CORP\\John Smith: HKEY_USERS\\S-fake-John Smith still loaded; do not restart yet"),
        "{text}"
    );
    assert!(text.lines().last().unwrap().contains(", 1 profile(s) still loaded (exit 1)"), "{text}");
    assert!(took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(15), "{took:?}");

    let m =
        Machine::edit("rds.json", |v| v["profiles"] = serde_json::json!({ "John Smith": 4294967295u32, "Émile": 2 }));
    let r = report(&m.run(&["John Smith,Émile", "--wait-profile", "1s", "--format", "json"]));
    let got: Vec<(&str, &str, Option<&serde_json::Value>)> = r.hosts[0]
        .users
        .iter()
        .map(|u| (u.requested.as_str(), u.outcome.as_str(), u.profile_unloaded.as_ref()))
        .collect();
    assert_eq!(
        got,
        [
            ("John Smith", "failed", Some(&serde_json::json!(false))),
            ("Émile", "logged_off", Some(&serde_json::json!(true)))
        ]
    );
    assert_eq!((r.summary.profiles_still_loaded, r.summary.users_failed), (1, 1));
    // Where profiles are not checked (Linux), the field is null.
    let r = report(&Machine::new("rds.json").run(&["Émile", "--format", "json"]));
    assert_eq!(r.hosts[0].users[0].profile_unloaded, None);
}
