//! Real-system test of the sweep (root only): two target users with many processes, one
//! of them also owning a process only by effective uid, and a bystander whose processes
//! must all survive.

#![cfg(target_os = "linux")]

mod common;

use common::{TestUser, backend, backend_with, real_tests, reap, start_time, terminate_options};
use logoff_users::backend::{ProcessSource, TerminateTarget};

/// Scans through the BPF task iterator (the default from a thousand processes on).
#[test]
fn sweep_ends_every_target_process_and_spares_bystanders() {
    if !real_tests("sweep_ends_every_target_process_and_spares_bystanders") {
        return;
    }
    sweep_scenario(ProcessSource::TaskIter);
}

/// The same, reading every process's uids from /proc, as where BPF is not allowed.
#[test]
fn sweep_with_procfs_only_ends_every_target_process_and_spares_bystanders() {
    if !real_tests("sweep_with_procfs_only_ends_every_target_process_and_spares_bystanders") {
        return;
    }
    sweep_scenario(ProcessSource::Procfs);
}

fn sweep_scenario(processes: ProcessSource) {
    let (a, b, bystander) = (TestUser::create(), TestUser::create(), TestUser::create());
    let mut a_children = a.spawn_sleeps(500);
    let mut b_children = b.spawn_sleeps(50);
    // Real uid 0, effective uid A, saved uid 0: kill(-1) as A cannot reach it, so the
    // pidfd straggler pass must.
    let euid_only = std::process::Command::new("perl")
        .args(["-e", "$> = shift; sleep 600", &a.uid.to_string()])
        .spawn()
        .expect("spawn perl");
    a_children.push(euid_only);
    let mut by_children = bystander.spawn_sleeps(30);
    let bystanders: Vec<(u32, Option<i64>)> = by_children.iter().map(|c| (c.id(), start_time(c.id()))).collect();

    // Wait until the perl process has dropped its effective uid.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while a.live_processes().len() < 501 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(a.live_processes().len(), 501);
    let perl = logoff_users::testing::linux::procfs::ProcFs::new("/proc").status(a_children[500].id()).unwrap();
    assert_eq!(perl.uids[..3], [0, a.uid, 0], "the perl process should be A's by effective uid only");
    assert_eq!(b.live_processes().len(), 50);

    let utmp = tempfile::NamedTempFile::new().unwrap();
    let mut linux = backend_with(utmp.path(), processes);
    let spare = linux.own_pids();
    for (user, expected) in [(&a, 501), (&b, 50)] {
        // As the tool does: the listing just before the sweep is its count of `signalled`.
        let (account, listed) = (user.account(), user.live_processes());
        let target = TerminateTarget { account: &account, listed_pids: &listed };
        let done = linux.terminate_all(&[target], &terminate_options(spare.clone(), 2000, 30)).pop().unwrap().unwrap();
        assert_eq!(done.remaining, 0, "{done:?}");
        assert_eq!(done.method, "kill(-1) as uid");
        assert!(done.signalled >= expected, "{done:?}");
        assert!(user.live_processes().is_empty(), "{} has {:?}", user.name, user.live_processes());
    }
    reap(&mut a_children);
    reap(&mut b_children);
    assert!(a.live_processes().is_empty() && b.live_processes().is_empty());

    for (pid, started) in &bystanders {
        assert!(started.is_some());
        assert_eq!(start_time(*pid), *started, "bystander {pid} is gone or was replaced");
    }
    assert_eq!(bystander.live_processes().len(), 30);
    for c in &mut by_children {
        assert!(c.try_wait().unwrap().is_none(), "bystander {} exited", c.id());
        c.kill().unwrap();
        c.wait().unwrap();
    }

    // Nothing left: a second sweep finds nothing alive. (Its `signalled` may count zombies
    // of an earlier user with the same, recycled uid that are not reaped yet.)
    let again = linux.terminate_processes(&a.account(), &terminate_options(spare, 0, 5)).unwrap();
    assert_eq!(again.remaining, 0, "{again:?}");
    assert!(a.live_processes().is_empty());
}

#[test]
fn sweep_of_root_is_refused() {
    if !real_tests("sweep_of_root_is_refused") {
        return;
    }
    let utmp = tempfile::NamedTempFile::new().unwrap();
    let mut linux = backend(utmp.path());
    let root = logoff_users::identity::Account {
        id: logoff_users::identity::AccountId::Uid(0),
        user: "root".into(),
        domain: None,
    };
    let err = linux.terminate_processes(&root, &terminate_options(vec![], 0, 1)).unwrap_err();
    assert_eq!(err.kind, logoff_users::error::ErrorKind::InvalidInput);
    let by_name = logoff_users::identity::Account::by_name("root", None);
    assert!(linux.terminate_processes(&by_name, &terminate_options(vec![], 0, 1)).is_err());
}
