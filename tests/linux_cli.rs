//! Real-system tests (root only) of the real binary on Linux, without logind: sessions from
//! a utmp file the test writes, processes the test starts as users it creates. The tool's
//! JSON must say what happened, the targets must end with no process, the bystander must
//! keep every process, and a second run must find nothing to do.

#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::{TestUser, json_of, real_tests, reap, run_tool, start_time, utmp_now, utmp_record};
use logoff_users::testing::linux::utmp::{self, USER_PROCESS};

/// The remote host the test's utmp records name.
const HOST: &str = "198.51.100.9";

const BIN: &str = env!("CARGO_BIN_EXE_logoff-users");

#[test]
fn the_binary_logs_off_two_users_and_spares_the_bystander() {
    if !real_tests("the_binary_logs_off_two_users_and_spares_the_bystander") {
        return;
    }
    let (a, b, c) = (TestUser::create(), TestUser::create(), TestUser::create());
    let mut leader_a = vec![a.spawn("sleep", &["600"])];
    let leader_c = vec![c.spawn("sleep", &["600"])];
    let mut procs_a = a.spawn_sleeps(500);
    let mut procs_b = b.spawn_sleeps(50);
    let procs_c = c.spawn_sleeps(30);
    let bystander: Vec<(u32, Option<i64>)> =
        procs_c.iter().chain(&leader_c).map(|p| (p.id(), start_time(p.id()))).collect();
    // The logon time must not predate the leaders.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let file = tempfile::NamedTempFile::new().unwrap();
    let utmp_path = file.path().to_str().unwrap().to_string();
    utmp::write_file(
        file.path(),
        &[
            utmp_record(USER_PROCESS, leader_a[0].id(), &a.name, "pts/911", HOST, utmp_now()),
            utmp_record(USER_PROCESS, leader_c[0].id(), &c.name, "pts/912", HOST, utmp_now()),
        ],
    )
    .unwrap();

    // --list shows the utmp sessions.
    let o = run_tool(&["--source", "utmp", "--utmp", &utmp_path, "--list", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let list = json_of(&o);
    let users: Vec<&str> =
        list["hosts"][0]["sessions"].as_array().unwrap().iter().map(|s| s["user"].as_str().unwrap()).collect();
    assert_eq!(users, [a.name.as_str(), c.name.as_str()]);
    assert_eq!(list["hosts"][0]["backend"], "utmp");

    let targets = format!("{},{}", a.name, b.name.to_uppercase());
    let o = run_tool(&["--source", "utmp", "--utmp", &utmp_path, &targets, "--format", "json", "--grace", "1s"]);
    let doc = json_of(&o);
    assert_eq!(o.status.code(), Some(0), "{doc:#}");
    reap(&mut leader_a);
    reap(&mut procs_a);
    reap(&mut procs_b);
    assert!(a.live_processes().is_empty(), "{} kept {:?}", a.name, a.live_processes());
    assert!(b.live_processes().is_empty(), "{} kept {:?}", b.name, b.live_processes());
    for (pid, t) in &bystander {
        assert_eq!(start_time(*pid), *t, "bystander process {pid} was touched");
    }
    let host = &doc["hosts"][0];
    let plan_users = host["plan"]["users"].as_array().unwrap();
    assert_eq!(plan_users[0]["status"], "logged_on");
    assert_eq!(plan_users[0]["terminate"], "sweep");
    assert_eq!(plan_users[1]["status"], "processes_only");
    assert_eq!(plan_users[1]["terminate"], "fallback");
    let actions: Vec<(&str, &str)> = host["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap(), a["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("logoff_session", "requested"), ("terminate_processes", "requested"), ("terminate_processes", "requested")]
    );
    assert_eq!(host["verification"]["verified"], true);
    assert_eq!(doc["summary"]["users_logged_off"], 2);
    assert!(doc["summary"]["processes_terminated"].as_u64().unwrap() >= 550, "{:#}", doc["summary"]);

    // A second run finds nothing to do and exits 0.
    let o = run_tool(&["--source", "utmp", "--utmp", &utmp_path, &targets, "--format", "json"]);
    let doc = json_of(&o);
    assert_eq!(o.status.code(), Some(0), "{doc:#}");
    assert_eq!(doc["summary"]["users_not_logged_on"], 2, "{:#}", doc["summary"]);
    assert!(doc["hosts"][0]["actions"].as_array().unwrap().is_empty());
    drop(procs_c);
    drop(leader_c);
}

#[test]
fn without_root_the_binary_exits_3_and_touches_nothing() {
    if !real_tests("without_root_the_binary_exits_3_and_touches_nothing") {
        return;
    }
    let t = TestUser::create();
    let mut victim = t.spawn("sleep", &["600"]);
    let empty = tempfile::NamedTempFile::new().unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN, "--source", "utmp", "--utmp"])
        .arg(empty.path())
        .arg(&t.name)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("root"), "the message must say to run as root: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(victim.try_wait().unwrap().is_none(), "the unprivileged run touched a process");
    victim.kill().unwrap();
    victim.wait().unwrap();
}

/// The plan lists the same processes whether they come from the BPF task iterator
/// (`--process-source bpf`) or from /proc (`procfs`, and `auto` on this small machine), including one that is the user's by
/// effective uid only; a dry run touches none of them.
#[test]
fn both_process_sources_plan_the_same_processes() {
    if !real_tests("both_process_sources_plan_the_same_processes") {
        return;
    }
    let t = TestUser::create();
    let mut children = t.spawn_sleeps(5);
    children.push(Command::new("perl").args(["-e", "$> = shift; sleep 600", &t.uid.to_string()]).spawn().unwrap());
    let mut expected: Vec<u64> = children.iter().map(|c| u64::from(c.id())).collect();
    expected.sort_unstable();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.live_processes().len() < expected.len() {
        assert!(std::time::Instant::now() < deadline, "the perl process never took the uid");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let empty = tempfile::NamedTempFile::new().unwrap();
    let utmp = empty.path().to_str().unwrap();
    for source in ["bpf", "procfs", "auto"] {
        let extra = ["--process-source", source];
        let mut args = vec!["--source", "utmp", "--utmp", utmp, "--dry-run", "--format", "json", &t.name];
        args.extend_from_slice(&extra);
        let o = run_tool(&args);
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        let json = json_of(&o);
        let user = &json["hosts"][0]["plan"]["users"][0];
        assert_eq!(user["status"], "processes_only", "{extra:?}: {user}");
        let mut pids: Vec<u64> = user["pids"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
        pids.sort_unstable();
        assert_eq!(pids, expected, "{extra:?}");
    }
    for c in &mut children {
        assert!(c.try_wait().unwrap().is_none(), "the dry run touched {}", c.id());
        c.kill().unwrap();
    }
    reap(&mut children);
}

/// The BPF task iterator is an opt-in: a default run on a machine with 1,500 processes
/// makes no `bpf()` call (seen by strace), while `--process-source bpf` does.
#[test]
fn a_default_run_makes_no_bpf_call() {
    if !real_tests("a_default_run_makes_no_bpf_call") {
        return;
    }
    let user = TestUser::create();
    let on_machine = || {
        std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).count()
    };
    let mut procs = user.spawn_sleeps(1500usize.saturating_sub(on_machine()) + 10);
    assert!(on_machine() >= 1500, "only {} processes", on_machine());
    let empty = tempfile::NamedTempFile::new().unwrap();
    let bpf_calls = |extra: &[&str]| -> usize {
        let trace = tempfile::NamedTempFile::new().unwrap();
        let mut args = vec!["-f", "-e", "trace=bpf", "-o", trace.path().to_str().unwrap(), BIN];
        args.extend(["--source", "utmp", "--utmp", empty.path().to_str().unwrap(), "--kill-after", "0"]);
        args.extend(extra);
        args.push(&user.name);
        let out = Command::new("strace").args(&args).output().expect("run strace (apt-get install strace)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(trace.path()).unwrap().lines().filter(|l| l.contains("bpf(")).count()
    };
    assert_eq!(bpf_calls(&["--dry-run"]), 0, "a default dry run called bpf()");
    assert!(bpf_calls(&["--dry-run", "--process-source", "bpf"]) > 0, "strace saw no bpf() even when asked for");
    // A real run, that sweeps the user's 1,500 processes, makes none either.
    assert_eq!(bpf_calls(&[]), 0, "a default run called bpf()");
    assert!(user.live_processes().is_empty());
    reap(&mut procs);
}
