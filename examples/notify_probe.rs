//! A driver of the Linux backend's `send_message` for a graphical session, for the
//! real-logind test (`tests/linux_logind.rs`): ssh sessions are of type `tty`, so the test
//! cannot open an `x11` or `wayland` session, and this probe hands the backend one.
//!
//! ```text
//! notify_probe USER TITLE TEXT     as root: send the message to a made-up session of
//!                                  USER of type x11 without a terminal (so only the
//!                                  desktop notification can deliver it)
//! ```
//!
//! Prints `delivered` or `failed: <error>`, then `threads: N, all uid 0` when every
//! thread of the probe still has root's credentials afterwards (the notification is sent
//! from a thread that dropped its credentials), or `threads: ... not root`. Exit 0 when
//! delivered and all threads are root, 1 otherwise.

#[cfg(target_os = "linux")]
fn main() {
    std::process::exit(probe::run(std::env::args().skip(1).collect()));
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("notify_probe: Linux only");
    std::process::exit(3);
}

#[cfg(target_os = "linux")]
mod probe {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use logoff_users::backend::{Backend, NativeOptions, SessionSource};
    use logoff_users::model::{Session, SessionState};
    use logoff_users::testing::linux::{Linux, passwd::Passwd};

    pub fn run(args: Vec<String>) -> i32 {
        let [user, title, text] = args.as_slice() else {
            eprintln!("usage: notify_probe USER TITLE TEXT");
            return 2;
        };
        let Some(uid) = Passwd::load(Path::new("/etc/passwd")).by_name(user).map(|e| e.uid) else {
            eprintln!("notify_probe: no such user {user}");
            return 2;
        };
        let opts = NativeOptions { source: SessionSource::Logind, ..Default::default() };
        let mut backend = match Linux::open(&opts) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("notify_probe: {e}");
                return 2;
            }
        };
        let session = Session {
            uid: Some(uid),
            kind: Some(logoff_users::model::SessionType::X11),
            station: None,
            ..Session::new("probe", user.as_str(), SessionState::Active)
        };
        let delivered = match backend.send_message(&session, title, text) {
            Ok(()) => {
                println!("delivered");
                true
            }
            Err(e) => {
                println!("failed: {e}");
                false
            }
        };
        // A thread that has just been joined may linger in /proc for a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let uids = thread_uids();
            let all_root = uids.iter().all(|u| u == "0\t0\t0\t0");
            if all_root || Instant::now() > deadline {
                if all_root {
                    println!("threads: {}, all uid 0", uids.len());
                } else {
                    println!("threads: {uids:?} not root");
                }
                return if delivered && all_root { 0 } else { 1 };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `Uid:` line (real, effective, saved, fs) of every thread of this process.
    fn thread_uids() -> Vec<String> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            if let Some(line) = status.lines().find_map(|l| l.strip_prefix("Uid:")) {
                out.push(line.trim().to_string());
            }
        }
        out
    }
}
