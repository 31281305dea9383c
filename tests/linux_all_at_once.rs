//! Real-system test (root), without logind: ALL over ten users whose processes ignore
//! SIGTERM and SIGHUP takes one grace period, not ten. Each user has a utmp session (a
//! record the test writes, its leader a process of the user's) and a second process; every
//! one of them ignores SIGTERM and SIGHUP, so only the SIGKILL after the grace ends them. A
//! bystander with a session of its own, excluded, keeps everything.

#![cfg(target_os = "linux")]

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::{TestUser, json_of, real_tests, reap, run_tool, start_time, utmp_now, utmp_record};
use logoff_users::testing::linux::utmp::{self, USER_PROCESS};

const USERS: usize = 10;
const GRACE_S: u64 = 5;

/// A `sleep` of `user` that ignores SIGTERM and SIGHUP (an ignored disposition survives
/// exec), as editors and daemons that save state on the way out do.
fn stubborn(user: &TestUser) -> Child {
    user.spawn("sh", &["-c", "trap '' TERM HUP; exec sleep 600"])
}

#[test]
fn all_ten_stubborn_users_go_in_one_grace_period() {
    if !real_tests("all_ten_stubborn_users_go_in_one_grace_period") {
        return;
    }
    let users: Vec<TestUser> = (0..USERS).map(|_| TestUser::create()).collect();
    let bystander = TestUser::create();
    let mut leaders: Vec<Child> = users.iter().map(stubborn).collect();
    let mut others: Vec<Child> = users.iter().map(stubborn).collect();
    let mut by_procs = vec![stubborn(&bystander), stubborn(&bystander)];
    let kept: Vec<(u32, Option<i64>)> = by_procs.iter().map(|c| (c.id(), start_time(c.id()))).collect();
    // The utmp logon time must not predate the leaders.
    std::thread::sleep(Duration::from_millis(1100));
    let mut records: Vec<utmp::Record> = users
        .iter()
        .zip(&leaders)
        .enumerate()
        .map(|(i, (u, leader))| {
            utmp_record(USER_PROCESS, leader.id(), &u.name, &format!("pts/{}", 940 + i), "", utmp_now())
        })
        .collect();
    records.push(utmp_record(USER_PROCESS, by_procs[0].id(), &bystander.name, "pts/959", "", utmp_now()));
    let file = tempfile::NamedTempFile::new().unwrap();
    utmp::write_file(file.path(), &records).unwrap();

    let started = Instant::now();
    let o = run_tool(&[
        "--source",
        "utmp",
        "--utmp",
        file.path().to_str().unwrap(),
        "ALL",
        "--exclude",
        &bystander.name,
        "--kill-after",
        &format!("{GRACE_S}s"),
        "--timeout",
        "60s",
        "--format",
        "json",
    ]);
    let took = started.elapsed();
    let doc = json_of(&o);
    assert_eq!(o.status.code(), Some(0), "{doc:#}");
    // One grace period and the kernel's work, well under two.
    assert!(took >= Duration::from_secs(GRACE_S), "the grace period was not waited: {took:?}");
    assert!(took < Duration::from_secs(2 * GRACE_S - 2), "took {took:?} for {USERS} users");
    assert_eq!(doc["summary"]["users_logged_off"], USERS as u64, "{:#}", doc["summary"]);
    reap(&mut leaders);
    reap(&mut others);
    for u in &users {
        assert!(u.live_processes().is_empty(), "{} kept {:?}", u.name, u.live_processes());
    }
    for (pid, t) in &kept {
        assert_eq!(start_time(*pid), *t, "the excluded bystander's process {pid} was touched");
    }
    for c in &mut by_procs {
        c.kill().unwrap();
    }
    reap(&mut by_procs);
}
