//! Verification's listing on Linux (`Backend::find_processes`): only the planned accounts'
//! processes, by real, effective or saved uid, including those started after the plan;
//! never a bystander's. Real processes of test users; needs root.

#![cfg(target_os = "linux")]

mod common;

use common::{TestUser, backend, real_tests, reap};
use logoff_users::identity::AccountId;

#[test]
fn finds_the_accounts_processes_and_those_started_later_and_no_others() {
    if !real_tests("linux_verify") {
        return;
    }
    let target = TestUser::create();
    let bystander = TestUser::create();
    let utmp = tempfile::NamedTempFile::new().unwrap();
    let mut linux = backend(utmp.path());
    let mut children = target.spawn_sleeps(2);
    let mut others = bystander.spawn_sleeps(2);
    // Real uid root, effective uid the target's: the target's too.
    let euid_only = std::process::Command::new("perl")
        .args(["-e", &format!("$> = {}; sleep 600", target.uid)])
        .spawn()
        .expect("start perl");
    children.push(euid_only);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // perl takes its effective uid a moment after it starts.
    while target.live_processes().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "the target's processes never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    let id = AccountId::Uid(target.uid);
    let pids = |linux: &mut Box<dyn logoff_users::backend::Backend>| -> Vec<u32> {
        linux.find_processes(&[&id]).unwrap().into_iter().map(|p| p.pid).collect()
    };
    let found = pids(&mut linux);
    for c in &children {
        assert!(found.contains(&c.id()), "pid {} of the target not found in {found:?}", c.id());
    }
    for o in &others {
        assert!(!found.contains(&o.id()), "the bystander's pid {} was listed", o.id());
    }
    // A process the account starts after the first listing is found by the next one.
    children.push(target.spawn("sleep", &["600"]));
    let later = children.last().unwrap().id();
    assert!(!found.contains(&later));
    assert!(pids(&mut linux).contains(&later), "a process started later was not found");

    for c in children.iter_mut().chain(others.iter_mut()) {
        let _ = c.kill();
    }
    reap(&mut children);
    reap(&mut others);
}
