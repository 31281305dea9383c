//! Real-system test (root only): the BPF task iterator loads on this kernel and agrees with
//! /proc, process by process, including processes whose uids differ from one another.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::{TestUser, real_tests, reap};
use logoff_users::testing::linux::bpf_iter::TaskIter;
use logoff_users::testing::linux::passwd::Passwd;
use logoff_users::testing::linux::procfs::ProcFs;

/// Starts a thread that sleeps, then ends the main thread alone (`exit`, not `exit_group`).
const LEADERLESS: &str = "import threading, time, ctypes\n\
threading.Thread(target=time.sleep, args=(600,)).start()\n\
time.sleep(0.1)\n\
ctypes.CDLL(None).syscall(60, 0)\n";

/// Waits until `pid`'s status satisfies `ready`.
fn wait_for(pid: u32, ready: impl Fn(&logoff_users::testing::linux::procfs::Status) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ProcFs::new("/proc").status(pid).is_some_and(|st| ready(&st)) {
        assert!(Instant::now() < deadline, "process {pid} never got ready");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_task_iterator_agrees_with_proc() {
    if !real_tests("the_task_iterator_agrees_with_proc") {
        return;
    }
    let iter = TaskIter::open().expect("the BPF task iterator must load here (root, initial namespaces, BTF)");
    let user = TestUser::create();
    let u = user.uid.to_string();
    let mut children = vec![
        // All four uids the user's.
        user.spawn("sleep", &["600"]),
        // Real uid 0, effective uid U, saved uid 0, set in-process (kill(-1) as U misses it).
        std::process::Command::new("perl").args(["-e", "$> = shift; sleep 600", &u]).spawn().unwrap(),
        // Real uid U, effective and saved uid 0, like a setuid program the user started.
        std::process::Command::new("perl").args(["-e", "$< = shift; sleep 600", &u]).spawn().unwrap(),
        // A zombie of U: the shell's child exits and the exec'd sleep never reaps it.
        user.spawn("sh", &["-c", "sleep 0 & exec sleep 600"]),
        // U's process whose main thread exits (raw SYS_exit) while another thread sleeps:
        // /proc shows it `Z`, yet it is alive.
        user.spawn("python3", &["-c", LEADERLESS]),
    ];
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    wait_for(pids[1], |st| st.uids[1] == user.uid);
    wait_for(pids[2], |st| st.uids[0] == user.uid);
    wait_for(pids[3], |st| st.name == "sleep");
    wait_for(pids[4], |st| st.state == 'Z' && st.threads >= 2);
    // The zombie child of the fourth process.
    let deadline = Instant::now() + Duration::from_secs(10);
    let zombie = loop {
        let owned = ProcFs::new("/proc").owned_by(user.uid).unwrap();
        if let Some((pid, _)) = owned.iter().find(|(_, st)| st.is_dead() && st.ppid == pids[3]) {
            break *pid;
        }
        assert!(Instant::now() < deadline, "no zombie appeared");
        std::thread::sleep(Duration::from_millis(10));
    };
    // A thread of this test process: a task the iterator must not list as a process.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
        let _ = stop_rx.recv();
    });
    let tid = tid_rx.recv().unwrap();

    // The iterator alone (no /proc merge) must see every process this test made.
    let tasks = iter.tasks().unwrap();
    let procfs = ProcFs::new("/proc");
    let mut checked = pids.clone();
    checked.extend([zombie, std::process::id()]);
    for pid in &checked {
        let task = tasks.iter().find(|t| t.pid == *pid).unwrap_or_else(|| panic!("pid {pid} not listed"));
        let st = procfs.status(*pid).unwrap();
        assert_eq!(task.uids, st.uids, "uids of {pid}");
        assert_eq!(task.state, st.state, "state of {pid}");
        assert_eq!(task.name, st.name, "name of {pid}");
    }
    let by_pid = |pid: u32| tasks.iter().find(|t| t.pid == pid).unwrap();
    assert_eq!(by_pid(pids[1]).uids[..3], [0, user.uid, 0]);
    assert_eq!(by_pid(pids[2]).uids[..3], [user.uid, 0, 0]);
    assert!(by_pid(zombie).is_dead());
    let leaderless = by_pid(pids[4]);
    assert_eq!(leaderless.state, 'Z');
    assert!(leaderless.live_threads >= 1 && !leaderless.is_dead(), "{leaderless:?}");
    assert!(!procfs.status(pids[4]).unwrap().is_dead());
    assert!(tasks.iter().all(|t| t.pid != tid), "thread {tid} listed as a process");
    // Live ones only: a zombie of an earlier test user with the same (recycled) uid may
    // still wait for PID 1 to reap it.
    let mut owned: Vec<u32> = tasks.iter().filter(|t| t.is_owned_by(user.uid) && !t.is_dead()).map(|t| t.pid).collect();
    owned.sort_unstable();
    let mut expected = pids.clone();
    expected.sort_unstable();
    assert_eq!(owned, expected);
    assert!(tasks.iter().any(|t| t.pid == 2 && t.name == "kthreadd"));

    // With /proc merged in: everything the iterator saw, and PID 1 (which this sandbox's
    // kernel hides from task iterators).
    let merged = iter.scan(&procfs, &procfs.pids().unwrap()).unwrap();
    assert!(merged.iter().any(|t| t.pid == 1));
    assert!(tasks.iter().all(|t| merged.iter().any(|m| m.pid == t.pid)));
    checked.push(1);

    // The model's view: the same processes and flags as the /proc listing.
    let passwd = Passwd::load("/etc/passwd".as_ref());
    let fast = iter.list_processes(&procfs, &procfs.pids().unwrap(), &passwd).unwrap();
    let slow = procfs.list_processes(&passwd).unwrap();
    for pid in &checked {
        let a = fast.iter().find(|p| p.pid == *pid).unwrap();
        let b = slow.iter().find(|p| p.pid == *pid).unwrap();
        assert_eq!(a, b, "process {pid}");
    }
    assert_eq!(fast.iter().find(|p| p.pid == pids[0]).unwrap().user.as_deref(), Some(user.name.as_str()));

    stop_tx.send(()).unwrap();
    thread.join().unwrap();
    for c in &mut children {
        c.kill().unwrap();
    }
    reap(&mut children);
    // Gone from the next pass.
    let after = iter.tasks().unwrap();
    assert!(pids.iter().all(|p| after.iter().all(|t| t.pid != *p)));
}
