//! Real-system test (root only) of disconnected utmp sessions: a USER_PROCESS record whose
//! leader has died while its session still has processes of the user. Every process here is
//! started by the test as users it creates; the bystander's processes are checked by pid.

#![cfg(target_os = "linux")]

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::{TestUser, backend, json_of, real_tests, reap, run_tool, start_time, utmp_now, utmp_record};
use logoff_users::model::SessionState;
use logoff_users::testing::linux::procfs::ProcFs;
use logoff_users::testing::linux::utmp::{self, USER_PROCESS};

/// The remote host the test's utmp records name.
const HOST: &str = "203.0.113.5";

/// Starts, as `user`, a session leader (`sleep 601`, pid == session id) with a background
/// `sleep 600` in its session; returns the leader and the background pid.
fn session_with_child(user: &TestUser) -> (Child, u32) {
    let mut leader = user.spawn("setsid", &["sh", "-c", "sleep 600 & exec sleep 601"]);
    let sid = leader.id();
    let procfs = ProcFs::new("/proc");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut members = Vec::new();
    while Instant::now() < deadline {
        let exec_done = procfs.status(sid).is_some_and(|st| st.name == "sleep");
        members = procfs.session_members(&[sid]).unwrap();
        let others: Vec<u32> = members.iter().map(|m| m.0).filter(|&p| p != sid).collect();
        if exec_done && others.len() == 1 && procfs.session_of(sid) == Some(sid) {
            return (leader, others[0]);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The leader is the test's child; its user's other processes go when the user is dropped.
    leader.kill().unwrap();
    leader.wait().unwrap();
    panic!("the session of {sid} never settled: {members:?}");
}

/// Waits until `pid` no longer names the process that started at `started`.
fn wait_gone(pid: u32, started: Option<i64>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let alive = ProcFs::new("/proc").status(pid).is_some_and(|st| !st.is_dead());
        if !alive || start_time(pid) != started {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_session_whose_leader_died_is_disconnected_and_logged_off() {
    if !real_tests("a_session_whose_leader_died_is_disconnected_and_logged_off") {
        return;
    }
    let (a, b) = (TestUser::create(), TestUser::create());
    let (mut leader_a, orphan) = session_with_child(&a);
    let orphan_started = start_time(orphan);
    assert!(orphan_started.is_some());
    // A session that ended with its leader: a stale record.
    let mut stale = a.spawn("setsid", &["true"]);
    let stale_pid = stale.id();
    stale.wait().unwrap();
    let mut leader_b = b.spawn("sleep", &["600"]);
    let procs_b = b.spawn_sleeps(3);
    let bystander: Vec<(u32, Option<i64>)> =
        procs_b.iter().chain([&leader_b]).map(|p| (p.id(), start_time(p.id()))).collect();
    // The logon time must not predate the leaders.
    std::thread::sleep(Duration::from_millis(1100));
    let t = utmp_now();

    let file = tempfile::NamedTempFile::new().unwrap();
    let utmp_path = file.path().to_str().unwrap().to_string();
    utmp::write_file(
        file.path(),
        &[
            utmp_record(USER_PROCESS, leader_a.id(), &a.name, "pts/921", HOST, t),
            utmp_record(USER_PROCESS, stale_pid, &a.name, "pts/922", HOST, t),
            utmp_record(USER_PROCESS, leader_b.id(), &b.name, "pts/923", HOST, t),
        ],
    )
    .unwrap();

    let id_a = format!("utmp:{}", leader_a.id());
    let id_b = format!("utmp:{}", leader_b.id());
    let mut linux = backend(file.path());
    let before = linux.list_sessions().unwrap();
    let states: Vec<(&str, SessionState)> = before.iter().map(|s| (s.id.as_str(), s.state)).collect();
    assert_eq!(states, [(id_a.as_str(), SessionState::LoggedIn), (id_b.as_str(), SessionState::LoggedIn)]);

    // The leader dies (the test started it); its background child stays in the session.
    leader_a.kill().unwrap();
    leader_a.wait().unwrap();

    let sessions = linux.list_sessions().unwrap();
    let states: Vec<(&str, SessionState)> = sessions.iter().map(|s| (s.id.as_str(), s.state)).collect();
    assert_eq!(
        states,
        [(id_a.as_str(), SessionState::Disconnected), (id_b.as_str(), SessionState::LoggedIn)],
        "the stale record utmp:{stale_pid} must not be listed"
    );
    let sa = &sessions[0];
    assert_eq!((sa.leader, sa.uid, sa.user.as_str()), (None, Some(a.uid), a.name.as_str()));
    assert_eq!(sa.station.as_deref(), Some("pts/921"));
    assert_eq!(sa.remote_host.as_deref(), Some("203.0.113.5"));
    // The tool's own session is none of these.
    assert_eq!(linux.current_session().unwrap(), None);

    let o = run_tool(&["--source", "utmp", "--utmp", &utmp_path, "--list", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let list = json_of(&o);
    let listed: Vec<(&str, &str)> = list["hosts"][0]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(id_a.as_str(), "disconnected"), (id_b.as_str(), "logged_in")]);

    let targets = format!("{},{}", a.name, b.name);
    let o = run_tool(&[
        "--source",
        "utmp",
        "--utmp",
        &utmp_path,
        "--disconnected-only",
        &targets,
        "--format",
        "json",
        "--grace",
        "1s",
    ]);
    let doc = json_of(&o);
    assert_eq!(o.status.code(), Some(0), "{doc:#}");
    assert!(wait_gone(orphan, orphan_started), "the background sleep {orphan} of the session survived");
    assert!(a.live_processes().is_empty(), "{} kept {:?}", a.name, a.live_processes());

    let host = &doc["hosts"][0];
    let actions: Vec<(&str, &str, &str)> = host["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["action"].as_str().unwrap(), x["session_id"].as_str().unwrap_or(""), x["result"].as_str().unwrap()))
        .collect();
    assert_eq!(actions[0], ("logoff_session", id_a.as_str(), "requested"), "{doc:#}");
    assert!(actions.iter().all(|x| x.1 != id_b), "the bystander's session was acted on: {actions:?}");
    let skipped = host["plan"]["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["session_id"] == id_b.as_str()
            && s["reason"].as_str().unwrap().contains("not disconnected (state logged_in)")),
        "{doc:#}"
    );
    assert_eq!(doc["summary"]["users_left_alone"], 1, "{:#}", doc["summary"]);
    assert_eq!(doc["summary"]["users_logged_off"], 1, "{:#}", doc["summary"]);
    for (pid, started) in &bystander {
        assert_eq!(start_time(*pid), *started, "bystander process {pid} was touched");
    }
    assert!(leader_b.try_wait().unwrap().is_none(), "the bystander's leader must be untouched");

    // Nothing is left of the session: it is no longer listed, and logging it off again
    // finds it already gone.
    let after = linux.list_sessions().unwrap();
    assert!(after.iter().all(|s| s.id != id_a), "{after:?}");
    assert_eq!(linux.logoff_session(sa).unwrap(), logoff_users::backend::Done::AlreadyGone);

    drop(procs_b);
    leader_b.kill().unwrap();
    let mut rest = vec![leader_b];
    reap(&mut rest);
}
