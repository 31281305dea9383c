//! Real-system tests (root, cgroup v2), on a uid's slice (`user.slice/user-UID.slice`,
//! which these tests create themselves on the host's cgroup2 mount, since the host has no
//! systemd): the sweep ends the user's processes in it without ever freezing it or writing
//! `cgroup.kill`; it never touches a root process in it; and a slice that an earlier run
//! left frozen is thawed, and said so, before the user is logged off.

#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{TestUser, backend, json_of, real_tests, reap, terminate_options};
use logoff_users::testing::linux::cgroup;

/// The tests share `user.slice`: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// `user.slice/user-UID.slice/lu-test.scope` on the cgroup2 mount, removed when dropped.
struct TestSlice {
    user_slice: PathBuf,
    slice: PathBuf,
    leaf: PathBuf,
    mount: PathBuf,
}

impl TestSlice {
    fn create(uid: u32) -> TestSlice {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mount = cgroup::parse_cgroup2_mount(&mountinfo).expect("a cgroup2 mount of the namespace root");
        let user_slice = mount.join("user.slice");
        let slice = user_slice.join(format!("user-{uid}.slice"));
        let leaf = slice.join("lu-test.scope");
        std::fs::create_dir_all(&leaf).unwrap();
        assert!(slice.join("cgroup.freeze").exists());
        TestSlice { user_slice, slice, leaf, mount }
    }

    /// Moves `pid` into the leaf.
    fn add(&self, pid: u32) {
        std::fs::write(self.leaf.join("cgroup.procs"), pid.to_string()).unwrap();
    }

    fn event(&self, key: &str) -> Option<bool> {
        cgroup::parse_events(&std::fs::read_to_string(self.slice.join("cgroup.events")).ok()?, key)
    }
}

impl Drop for TestSlice {
    fn drop(&mut self) {
        let _ = std::fs::write(self.slice.join("cgroup.freeze"), "0");
        // Whatever is left (only processes these tests started) goes back to the root.
        let leaf = &self.leaf;
        if let Ok(procs) = std::fs::read_to_string(leaf.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = std::fs::write(self.mount.join("cgroup.procs"), pid);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while leaf.exists() && std::fs::remove_dir(leaf).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir(&self.slice);
        let _ = std::fs::remove_dir(&self.user_slice); // fails while another user's is there
    }
}

/// Runs the library's sweep of `user` with no grace, watching the slice's `cgroup.events`
/// all along, and checks what every case expects: `kill(-1) as uid`, nothing left of the
/// user's, and the slice never frozen, not even for a moment.
fn sweep_and_check(user: &TestUser, slice: &TestSlice) {
    let utmp = tempfile::NamedTempFile::new().unwrap();
    let mut linux = backend(utmp.path());
    let spare = linux.own_pids();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (done, seen_frozen) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut frozen = false;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                frozen |= slice.event("frozen") == Some(true);
            }
            frozen
        });
        let done = linux.terminate_processes(&user.account(), &terminate_options(spare, 0, 30));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (done, watcher.join().unwrap())
    });
    let done = done.unwrap();
    assert_eq!(done.method, "kill(-1) as uid", "{done:?}");
    assert_eq!(done.remaining, 0, "{done:?}");
    assert!(user.live_processes().is_empty(), "{:?}", user.live_processes());
    assert!(!seen_frozen, "the slice was frozen during the sweep");
    assert_eq!(std::fs::read_to_string(slice.slice.join("cgroup.freeze")).unwrap().trim(), "0");
}

fn alive(c: &mut Child) -> bool {
    c.try_wait().unwrap().is_none()
}

/// The user's processes in the slice, one of them the user's by effective uid only (which
/// `kill(-1)` as the uid cannot reach): all go, the slice is never frozen, bystanders live.
#[test]
fn a_slice_of_the_users_processes_is_swept_without_freezing_it() {
    if !real_tests("a_slice_of_the_users_processes_is_swept_without_freezing_it") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (user, bystander) = (TestUser::create(), TestUser::create());
    let slice = TestSlice::create(user.uid);
    let mut inside = user.spawn_sleeps(20);
    inside.push(Command::new("perl").args(["-e", "$> = shift; sleep 600", &user.uid.to_string()]).spawn().unwrap());
    for c in &inside {
        slice.add(c.id());
    }
    let mut outside = user.spawn_sleeps(5);
    let mut others = bystander.spawn_sleeps(5);
    let deadline = Instant::now() + Duration::from_secs(10);
    while user.live_processes().len() < 26 {
        assert!(Instant::now() < deadline, "the perl process never took the uid");
        std::thread::sleep(Duration::from_millis(10));
    }

    sweep_and_check(&user, &slice);
    reap(&mut inside);
    reap(&mut outside);
    for c in &mut others {
        assert!(alive(c), "bystander {} was touched", c.id());
        c.kill().unwrap();
    }
    reap(&mut others);
}

/// A root process in the user's slice (a `sudo -i` shell): the sweep never touches root;
/// the user's processes still go.
#[test]
fn a_root_process_in_the_slice_keeps_it_from_being_killed() {
    if !real_tests("a_root_process_in_the_slice_keeps_it_from_being_killed") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let user = TestUser::create();
    let slice = TestSlice::create(user.uid);
    let mut inside = user.spawn_sleeps(10);
    let mut root = Command::new("sleep").arg("600").spawn().unwrap();
    for pid in inside.iter().map(Child::id).chain([root.id()]) {
        slice.add(pid);
    }

    sweep_and_check(&user, &slice);
    std::thread::sleep(Duration::from_millis(100));
    assert!(alive(&mut root), "the root process in the slice was killed");
    reap(&mut inside);
    root.kill().unwrap();
    root.wait().unwrap();
}

/// A slice left frozen (as a tool of version 0.1.0 killed mid-sweep left it, and every new
/// login of the user then hung): the binary thaws it first, says so, and logs the user off.
#[test]
fn a_slice_left_frozen_by_an_earlier_run_is_thawed_and_reported() {
    if !real_tests("a_slice_left_frozen_by_an_earlier_run_is_thawed_and_reported") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let user = TestUser::create();
    let slice = TestSlice::create(user.uid);
    let mut inside = user.spawn_sleeps(10);
    for c in &inside {
        slice.add(c.id());
    }
    std::fs::write(slice.slice.join("cgroup.freeze"), "1").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while slice.event("frozen") != Some(true) {
        assert!(Instant::now() < deadline, "the test could not freeze the slice");
        std::thread::sleep(Duration::from_millis(5));
    }
    let empty = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logoff-users"))
        .args(["--source", "utmp", "--utmp", empty.path().to_str().unwrap(), "--kill-after", "2s", &user.name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let repaired = format!("repaired: the cgroup slice of {} ({}) was frozen", user.name, slice.slice.display());
    assert!(text.lines().any(|l| l.starts_with(&repaired) && l.ends_with("thawed by writing cgroup.freeze")), "{text}");
    assert_eq!(slice.event("frozen"), Some(false));
    assert!(user.live_processes().is_empty(), "{:?}", user.live_processes());
    reap(&mut inside);
}

/// The tool itself runs in the user's slice (as with sudo from the user's own session): it
/// must not freeze its own slice. It ends the user's processes with `kill(-1)` and exits.
#[test]
fn the_tool_never_freezes_the_slice_it_runs_in() {
    if !real_tests("the_tool_never_freezes_the_slice_it_runs_in") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let user = TestUser::create();
    let slice = TestSlice::create(user.uid);
    let mut inside = user.spawn_sleeps(10);
    for c in &inside {
        slice.add(c.id());
    }
    let empty = tempfile::NamedTempFile::new().unwrap();
    let script = format!(
        "echo $$ > '{}' && exec '{}' --source utmp --utmp '{}' --kill-after 0 --format json '{}'",
        slice.leaf.join("cgroup.procs").display(),
        env!("CARGO_BIN_EXE_logoff-users"),
        empty.path().display(),
        user.name
    );
    let mut tool = Command::new("sh").args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(&mut tool) {
        if Instant::now() > deadline {
            let _ = std::fs::write(slice.slice.join("cgroup.freeze"), "0");
            tool.kill().unwrap();
            panic!("the tool hung (did it freeze its own slice?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = tool.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let doc = json_of(&out);
    let methods: Vec<&str> =
        doc["hosts"][0]["actions"].as_array().unwrap().iter().filter_map(|a| a["method"].as_str()).collect();
    assert_eq!(methods, ["kill(-1) as uid"], "{doc:#}");
    assert!(user.live_processes().is_empty(), "{:?}", user.live_processes());
    assert_eq!(slice.event("frozen"), Some(false));
    reap(&mut inside);
}
