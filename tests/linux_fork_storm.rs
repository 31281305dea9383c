//! Real-system test (root only): one call of the sweep ends a fork storm.
//!
//! The storm is bounded twice: RLIMIT_NPROC caps the user at 3000 processes, and every
//! process stops forking and exits 20 s after the storm began, so a failed test cannot
//! leave it running.

#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{TestUser, backend, real_tests, terminate_options};

/// Every process forks two children and exits, so pids churn all the time; the test
/// process is a child subreaper that reaps the orphans at once, so exits free
/// RLIMIT_NPROC slots for new forks (on a host whose PID 1 reaps slowly, zombies would
/// otherwise choke the storm).
const STORM: &str = r#"
ulimit -u 3000
END=$((EPOCHSECONDS + 20))
storm() { ((EPOCHSECONDS < END)) || exit 0; storm & storm & exit 0; }
storm
"#;

/// Makes this process a child subreaper and reaps every child in a thread until `stop`.
fn reap_orphans(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    // SAFETY: prctl with integer arguments only changes this process's reaper flag.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let mut status = 0;
            // SAFETY: waitpid writes the status into a valid local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

#[test]
fn one_sweep_ends_a_fork_storm() {
    if !real_tests("one_sweep_ends_a_fork_storm") {
        return;
    }
    let user = TestUser::create();
    let stop = Arc::new(AtomicBool::new(false));
    let reaper = reap_orphans(stop.clone());
    let mut leader = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={}", user.uid),
            &format!("--regid={}", user.gid),
            "--clear-groups",
            "bash",
            "-c",
            STORM,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the storm");

    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(3) {
        peak = peak.max(user.live_processes().len());
        if peak >= 1000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(peak >= 200, "the storm did not start (peak {peak})");

    let utmp = tempfile::NamedTempFile::new().unwrap();
    let mut linux = backend(utmp.path());
    let spare = linux.own_pids();
    let t = Instant::now();
    let done = linux.terminate_processes(&user.account(), &terminate_options(spare, 500, 15)).unwrap();
    let took = t.elapsed();
    assert!(started.elapsed() < Duration::from_secs(20), "the storm ended by itself first: proves nothing");
    assert_eq!(done.remaining, 0, "{done:?}");
    let left = user.live_processes();
    assert!(left.is_empty(), "{} processes survived one sweep: {done:?}", left.len());
    eprintln!("storm peak {peak}+, swept in {took:?}: {done:?}");
    stop.store(true, Ordering::Relaxed);
    reaper.join().unwrap();
    // Most likely reaped by the reaper already (ECHILD then).
    let _ = leader.wait();
}
