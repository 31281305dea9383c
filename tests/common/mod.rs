//! Helpers of the real-system Linux tests: the root gate, throw-away users, and processes
//! the tests start themselves (the only processes they ever signal); [`container`], the
//! systemd-nspawn container of the real-logind tests.

#![allow(dead_code)]

pub mod container;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use logoff_users::backend::TerminateOptions;
use logoff_users::testing::linux;
use logoff_users::testing::linux::procfs::ProcFs;

/// Whether the real-system tests can run: they need root. Without root they are skipped
/// with a note, unless `LOGOFF_REQUIRE_REAL_TESTS=1`, which turns the skip into a failure
/// (CI sets it, so that a lost privilege cannot make the suite pass vacuously).
pub fn real_tests(test: &str) -> bool {
    is_root() || skip(test, "real-system tests need root")
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips `test` for `why` with a note, or fails it when real tests are required
/// (`LOGOFF_REQUIRE_REAL_TESTS=1`); returns `false` (the test does not run).
pub fn skip(test: &str, why: &str) -> bool {
    if std::env::var("LOGOFF_REQUIRE_REAL_TESTS").as_deref() == Ok("1") {
        panic!("{test}: real test required (LOGOFF_REQUIRE_REAL_TESTS=1) but {why}");
    }
    eprintln!("note: skipping {test}: {why} (set LOGOFF_REQUIRE_REAL_TESTS=1 to fail instead)");
    false
}

/// A user made with `useradd`, deleted with `userdel -r` when dropped (after its remaining
/// processes, which only the test can have started, are killed as that user).
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

fn id(flag: &str, name: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().expect("run id");
    assert!(out.status.success(), "id {flag} {name} failed");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("numeric id")
}

impl TestUser {
    pub fn create() -> TestUser {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!(
            "lut{:x}{:x}{}",
            std::process::id() & 0xfff,
            nanos & 0xffff,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let status = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", &name])
            .stdout(Stdio::null())
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd {name} failed");
        let (uid, gid) = (id("-u", &name), id("-g", &name));
        assert_ne!(uid, 0);
        TestUser { name, uid, gid }
    }

    /// Starts `program args` as this user (no supplementary groups).
    pub fn spawn(&self, program: &str, args: &[&str]) -> Child {
        let mut cmd = Command::new(program);
        cmd.args(args).uid(self.uid).gid(self.gid).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // As a login gives them: a test run under `nohup` or as a background job would
        // otherwise hand its ignored SIGHUP, SIGINT and SIGQUIT to the user's processes.
        // SAFETY: signal() is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap_or_else(|e| panic!("spawn {program} as {}: {e}", self.name))
    }

    /// Starts `n` idle `sleep` processes as this user.
    pub fn spawn_sleeps(&self, n: usize) -> Vec<Child> {
        (0..n).map(|_| self.spawn("sleep", &["600"])).collect()
    }

    /// Live (non-zombie) processes whose real, effective or saved uid is this user's.
    pub fn live_processes(&self) -> Vec<u32> {
        ProcFs::new("/proc")
            .owned_by(self.uid)
            .unwrap()
            .into_iter()
            .filter(|(_, st)| !st.is_dead())
            .map(|(p, _)| p)
            .collect()
    }

    pub fn account(&self) -> logoff_users::identity::Account {
        logoff_users::identity::Account {
            id: logoff_users::identity::AccountId::Uid(self.uid),
            user: self.name.clone(),
            domain: None,
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Leftovers after a failed assertion: kill(-1) as the user reaches only its processes.
        let _ = Command::new("setpriv")
            .args([
                &format!("--reuid={}", self.uid),
                &format!("--regid={}", self.gid),
                "--clear-groups",
                "kill",
                "-KILL",
                "-1",
            ])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.live_processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("userdel").args(["-r", &self.name]).stderr(Stdio::null()).status();
    }
}

/// Reaps children that should be dead, without hanging on one that is not.
pub fn reap(children: &mut [Child]) {
    for c in children.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The start time of `pid`, as the library reads it.
pub fn start_time(pid: u32) -> Option<i64> {
    ProcFs::new("/proc").start_time(pid)
}

/// The Linux backend over a utmp file of the test's own (empty unless the test writes it).
pub fn backend(utmp: &std::path::Path) -> Box<dyn logoff_users::backend::Backend> {
    backend_with(utmp, logoff_users::backend::ProcessSource::Auto)
}

/// [`backend`], with processes from `processes`.
pub fn backend_with(
    utmp: &std::path::Path,
    processes: logoff_users::backend::ProcessSource,
) -> Box<dyn logoff_users::backend::Backend> {
    let opts = logoff_users::backend::NativeOptions {
        source: logoff_users::backend::SessionSource::Utmp,
        utmp_path: Some(utmp.to_path_buf()),
        processes,
        ..Default::default()
    };
    linux::open_backend(&opts).expect("open the Linux backend")
}

pub fn terminate_options(spare: Vec<u32>, grace_ms: u64, timeout_s: u64) -> TerminateOptions {
    TerminateOptions {
        grace: Duration::from_millis(grace_ms),
        timeout: Duration::from_secs(timeout_s),
        spare: logoff_users::backend::Sparing { pids: spare, sessions: Vec::new() },
    }
}

/// Runs the real binary with `args` (and no `LOGOFF_USERS` from the environment).
pub fn run_tool(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_logoff-users")).args(args).env_remove("LOGOFF_USERS").output().unwrap()
}

/// The JSON document the binary printed, or a panic showing what it printed instead.
pub fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("bad JSON ({e}): {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

/// Now, as the 32-bit seconds a utmp record holds.
pub fn utmp_now() -> i32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i32
}

/// A utmp record of `kind` for `pid`, as login programs write them (the id is the last four
/// characters of the line).
pub fn utmp_record(kind: i16, pid: u32, user: &str, line: &str, host: &str, tv_sec: i32) -> linux::utmp::Record {
    linux::utmp::Record {
        kind,
        pid: pid as i32,
        line: line.into(),
        id: line.chars().rev().take(4).collect(),
        user: user.into(),
        host: host.into(),
        tv_sec,
        ..Default::default()
    }
}
