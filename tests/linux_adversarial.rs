//! Adversarial real-system cases (root only), run through the real binary: a process that
//! ignores SIGTERM, and a process in uninterruptible sleep (a frozen cgroup-v1 freezer
//! group: state D, and SIGKILL takes effect only when it is thawed). Every process here is
//! one the test started as a user it created.

#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestUser, json_of, real_tests, reap, run_tool, utmp_now};

#[test]
fn a_process_that_ignores_sigterm_is_gone_after_the_grace() {
    if !real_tests("a_process_that_ignores_sigterm_is_gone_after_the_grace") {
        return;
    }
    let u = TestUser::create();
    // SIG_IGN survives exec, so the sleep ignores SIGTERM too.
    let mut stubborn = vec![u.spawn("sh", &["-c", "trap '' TERM; exec sleep 600"]), u.spawn("sleep", &["600"])];
    std::thread::sleep(Duration::from_millis(200));
    let empty = tempfile::NamedTempFile::new().unwrap();
    let started = Instant::now();
    let o = run_tool(&[
        "--source",
        "utmp",
        "--utmp",
        empty.path().to_str().unwrap(),
        &u.name,
        "--grace",
        "1s",
        "--format",
        "json",
    ]);
    let took = started.elapsed();
    let doc = json_of(&o);
    assert_eq!(o.status.code(), Some(0), "{doc:#}");
    assert!(took >= Duration::from_secs(1), "SIGKILL came before the grace was over ({took:?})");
    assert!(took < Duration::from_secs(10), "{took:?}");
    reap(&mut stubborn);
    assert!(u.live_processes().is_empty(), "{:?}", u.live_processes());
    assert_eq!(doc["hosts"][0]["verification"]["verified"], true);
}

/// A cgroup-v1 freezer group of the test's own, thawed and removed on drop.
struct Frozen {
    dir: PathBuf,
}

impl Frozen {
    fn new(pid: u32) -> Frozen {
        let root = Path::new("/sys/fs/cgroup/freezer");
        assert!(root.join("tasks").exists(), "no cgroup-v1 freezer at {}", root.display());
        // One group per frozen process: tests run side by side in one test process.
        let dir = root.join(format!("logoff-users-test-{}-{pid}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tasks"), pid.to_string()).unwrap();
        std::fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(dir.join("freezer.state")).unwrap().trim() != "FROZEN" {
            assert!(Instant::now() < deadline, "the freezer did not freeze");
            std::thread::sleep(Duration::from_millis(10));
        }
        Frozen { dir }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("freezer.state"), "THAWED");
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn a_process_in_uninterruptible_sleep_is_reported_and_the_timeout_holds() {
    if !real_tests("a_process_in_uninterruptible_sleep_is_reported_and_the_timeout_holds") {
        return;
    }
    let u = TestUser::create();
    let mut stuck = vec![u.spawn("sleep", &["600"])];
    let mut other = vec![u.spawn("sleep", &["600"])];
    let pid = stuck[0].id();
    let frozen = Frozen::new(pid);
    let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(state.contains("State:\tD"), "not in D state:\n{state}");

    let empty = tempfile::NamedTempFile::new().unwrap();
    let started = Instant::now();
    let o = run_tool(&[
        "--source",
        "utmp",
        "--utmp",
        empty.path().to_str().unwrap(),
        &u.name,
        "--grace",
        "200ms",
        "--timeout",
        "2s",
        "--format",
        "json",
    ]);
    let took = started.elapsed();
    let doc = json_of(&o);
    assert_eq!(o.status.code(), Some(1), "{doc:#}");
    assert!(took < Duration::from_secs(4), "the run hung past its 2 s timeout: {took:?}");
    let v = &doc["hosts"][0]["verification"];
    assert_eq!(v["verified"], false);
    assert_eq!(v["timed_out"], true);
    assert_eq!(v["remaining"][0]["pids"], serde_json::json!([pid]), "{v:#}");
    assert_eq!(v["remaining"][0]["uninterruptible"], serde_json::json!([pid]), "{v:#}");
    assert_eq!(doc["hosts"][0]["users"][0]["outcome"], "failed");
    reap(&mut other);

    // The text log says why.
    let o = run_tool(&["--source", "utmp", "--utmp", empty.path().to_str().unwrap(), &u.name, "--timeout", "1s"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("in uninterruptible sleep (D state, they die only when they wake): [{pid}]")),
        "{text}"
    );

    // Thawed, the SIGKILL it got takes effect.
    drop(frozen);
    reap(&mut stuck);
    assert!(stuck[0].try_wait().unwrap().is_some(), "the thawed process did not die");
}

#[test]
fn a_utmp_session_of_an_odd_name_is_logged_off_and_nothing_is_run() {
    use logoff_users::testing::linux::utmp::{self, Record, USER_PROCESS};
    use std::os::unix::process::ExitStatusExt;
    if !real_tests("a_utmp_session_of_an_odd_name_is_logged_off_and_nothing_is_run") {
        return;
    }
    let u = TestUser::create();
    let mut leader = u.spawn("sleep", &["600"]);
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    // A name with a space, Unicode, and shell metacharacters, as a utmp record may hold
    // (ut_user has 32 bytes); a shell run in `dir` would create the canary.
    let odd = "ü ser;$(touch pwned)".to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let now = utmp_now();
    let file = tempfile::NamedTempFile::new().unwrap();
    let record = Record {
        kind: USER_PROCESS,
        pid: leader.id() as i32,
        line: "pts/933".into(),
        user: odd.clone(),
        tv_sec: now,
        ..Default::default()
    };
    utmp::write_file(file.path(), &[record]).unwrap();
    let utmp_path = file.path().to_str().unwrap();

    let o = run_tool(&["--utmp", utmp_path, "--list", "--format", "json"]);
    assert_eq!(json_of(&o)["hosts"][0]["sessions"][0]["user"], odd.as_str());
    let o = Command::new(env!("CARGO_BIN_EXE_logoff-users"))
        .current_dir(dir.path())
        .args(["--utmp", utmp_path, "--users", &format!("'{odd}'"), "--format", "json", "--timeout", "5s"])
        .output()
        .unwrap();
    let doc = json_of(&o);
    assert_eq!(o.status.code(), Some(0), "{doc:#}");
    assert_eq!(doc["hosts"][0]["actions"][0]["action"], "logoff_session");
    assert_eq!(doc["hosts"][0]["actions"][0]["result"], "requested", "{doc:#}");
    let status = leader.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGHUP), "{status:?}");
    assert!(!canary.exists(), "a shell ran the name");
}

/// Whether `c` may not reach a terminal or a log but as a line's newline (the library's
/// independently written table, `testing::fuzz::render::forbidden`).
fn forbidden(c: char) -> bool {
    c != '\n' && logoff_users::testing::fuzz::render::forbidden(c)
}
fn assert_clean(what: &str, text: &str) {
    let bad: Vec<char> = text.chars().filter(|&c| forbidden(c)).collect();
    assert!(bad.is_empty(), "{what}: {bad:?} reached the output:\n{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("verified:") && !line.starts_with("summary: 0 failed"),
            "{what}: forged line: {line}"
        );
    }
}

/// The record (issue 17): a utmp line field that would print a fake "verified" line
/// and clear the screen, a host field that would print a fake summary and retitle the
/// terminal. `--list` and `--dry-run` show both escaped, each record on its own line; the
/// JSON keeps them exact.
#[test]
fn a_forged_utmp_record_cannot_forge_lines_or_reach_the_terminal() {
    use logoff_users::testing::linux::utmp::{self, Record, USER_PROCESS};
    if !real_tests("a_forged_utmp_record_cannot_forge_lines_or_reach_the_terminal") {
        return;
    }
    let u = TestUser::create();
    let mut leader = vec![u.spawn("sleep", &["600"])];
    let line = "pts/9\nverified: root is\x1b[2J";
    let host = "x\nsummary: 0 failed\x1b]0;pwned\x07";
    std::thread::sleep(Duration::from_millis(1100));
    let file = tempfile::NamedTempFile::new().unwrap();
    let record = Record {
        kind: USER_PROCESS,
        pid: leader[0].id() as i32,
        line: line.into(),
        user: u.name.clone(),
        host: host.into(),
        tv_sec: utmp_now(),
        ..Default::default()
    };
    utmp::write_file(file.path(), &[record]).unwrap();
    let utmp_path = file.path().to_str().unwrap();
    let session = format!("utmp:{}", leader[0].id());

    let o = run_tool(&["--source", "utmp", "--utmp", utmp_path, "--list"]);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{table}");
    assert_clean("--list", &table);
    assert_eq!(table.lines().count(), 3, "a header, one session and the drain state:\n{table}");
    assert!(table.lines().nth(2).unwrap().starts_with("host localhost: new logons "), "{table}");
    let row = table.lines().nth(1).unwrap();
    assert!(row.contains(&format!("{session}  {}  pts/9\\nverified: root is\\x1b[2J  ", u.name)), "{row}");
    assert!(row.ends_with("  x\\nsummary: 0 failed\\x1b]0;pwned\\x07"), "{row}");

    let o = run_tool(&["--source", "utmp", "--utmp", utmp_path, "--dry-run", &u.name]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert_clean("--dry-run", &text);
    assert!(
        text.contains(&format!("would log off session {session} (pts/9\\nverified: root is\\x1b[2J) of {}\n", u.name)),
        "{text}"
    );
    assert_eq!(text.lines().filter(|l| l.starts_with("summary:")).count(), 1, "{text}");
    assert!(text.lines().last().unwrap().starts_with("summary: 1 user(s) targeted"), "{text}");

    let o = run_tool(&["--source", "utmp", "--utmp", utmp_path, "--list", "--format", "json"]);
    let s = &json_of(&o)["hosts"][0]["sessions"][0];
    assert_eq!(s["station"], line);
    assert_eq!(s["remote_host"], host);
    for c in &mut leader {
        c.kill().unwrap();
    }
    reap(&mut leader);
}

/// A process that named itself to forge lines (`prctl(PR_SET_NAME)`) and cannot be killed
/// (frozen: uninterruptible sleep) appears in the STILL PRESENT line by its name, escaped.
#[test]
fn a_hostile_process_name_is_escaped_in_the_still_present_line() {
    if !real_tests("a_hostile_process_name_is_escaped_in_the_still_present_line") {
        return;
    }
    let u = TestUser::create();
    // 14 bytes: comm holds 15.
    let name = "x\x1b[2J\nverified";
    let script = "import ctypes, time\n\
                  ctypes.CDLL(None).prctl(15, b'x\\x1b[2J\\nverified', 0, 0, 0)\n\
                  time.sleep(600)\n";
    let mut renamed = vec![u.spawn("python3", &["-c", script])];
    let pid = renamed[0].id();
    let deadline = Instant::now() + Duration::from_secs(10);
    // /proc/PID/comm shows the name as set (only status escapes it).
    while std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default() != format!("{name}\n").as_bytes() {
        assert!(Instant::now() < deadline, "the process did not rename itself");
        std::thread::sleep(Duration::from_millis(20));
    }
    let frozen = Frozen::new(pid);

    let empty = tempfile::NamedTempFile::new().unwrap();
    let args = ["--source", "utmp", "--utmp", empty.path().to_str().unwrap(), &u.name, "--grace", "200ms"];
    let o = run_tool(&[&args[..], &["--timeout", "1s"]].concat());
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert_clean("the run", &text);
    assert_clean("the run's stderr", &String::from_utf8_lossy(&o.stderr));
    let still = format!(
        "STILL PRESENT after the timeout: {}: session(s) [], process(es) [{pid} (x\\x1b[2J\\nverified)]",
        u.name
    );
    assert!(text.contains(&still), "{text}");

    // The JSON names it exactly.
    let o = run_tool(&[&args[..], &["--timeout", "1s", "--format", "json"]].concat());
    let remaining = &json_of(&o)["hosts"][0]["verification"]["remaining"][0];
    assert_eq!(remaining["pids"], serde_json::json!([pid]));
    assert_eq!(remaining["names"], serde_json::json!([name]));

    // Thawed, the SIGKILL it got takes effect.
    drop(frozen);
    reap(&mut renamed);
    assert!(renamed[0].try_wait().unwrap().is_some(), "the thawed process did not die");
}
