//! A small driver of the logind client, for the real-logind test (`tests/linux_logind.rs`)
//! until the `logoff-users` binary has a Linux backend. It speaks the same contract as the
//! binary for what the test needs:
//!
//! ```text
//! logind_probe --list --format json     the --list document: {"version":1,"hosts":[...]}
//! logind_probe USERS [--timeout 30s]    terminate every session of USERS (a comma list,
//!                                       or ALL: every user with uid >= 1000), except the
//!                                       probe's own session; wait until they are gone;
//!                                       exit 0 when they are, 1 when not
//! logind_probe --session-of PID         print the session id of PID, or "none"
//! ```
//!
//! It does not sweep leftover processes: logind's TerminateSession kills a session's whole
//! scope, which is enough for sessions; processes outside any session are the binary's job.

#[cfg(target_os = "linux")]
fn main() {
    std::process::exit(probe::run(std::env::args().skip(1).collect()));
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("logind_probe: Linux only");
    std::process::exit(3);
}

#[cfg(target_os = "linux")]
mod probe {
    use std::time::{Duration, Instant};

    use logoff_users::backend::Done;
    use logoff_users::backend::linux::logind::Logind;
    use logoff_users::model::Session;

    /// Accounts below this uid are never logged off by ALL (login.defs UID_MIN).
    const UID_MIN: u32 = 1000;

    pub fn run(args: Vec<String>) -> i32 {
        let logind = match Logind::connect() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("logind_probe: {e}");
                return 3;
            }
        };
        match args.first().map(String::as_str) {
            Some("--list") => list(&logind),
            Some("--session-of") => {
                let Some(pid) = args.get(1).and_then(|p| p.parse().ok()) else {
                    eprintln!("logind_probe: --session-of needs a pid");
                    return 2;
                };
                match logind.session_of_pid(pid) {
                    Ok(id) => {
                        println!("{}", id.as_deref().unwrap_or("none"));
                        0
                    }
                    Err(e) => {
                        eprintln!("logind_probe: {e}");
                        1
                    }
                }
            }
            Some(users) if !users.starts_with('-') => {
                let timeout = args
                    .iter()
                    .position(|a| a == "--timeout")
                    .and_then(|i| args.get(i + 1))
                    .and_then(|t| t.trim_end_matches('s').parse().ok())
                    .unwrap_or(30);
                logoff(&logind, users, Duration::from_secs(timeout))
            }
            _ => {
                eprintln!("usage: logind_probe --list --format json | USERS [--timeout 30s] | --session-of PID");
                2
            }
        }
    }

    fn list(logind: &Logind) -> i32 {
        match logind.list_sessions() {
            Ok(sessions) => {
                let doc = serde_json::json!({
                    "version": 1,
                    "hosts": [{"host": "localhost", "backend": "logind", "sessions": sessions}],
                });
                println!("{doc:#}");
                0
            }
            Err(e) => {
                eprintln!("logind_probe: {e}");
                1
            }
        }
    }

    fn is_target(s: &Session, users: &str) -> bool {
        if users.eq_ignore_ascii_case("all") {
            return s.uid.is_some_and(|u| u >= UID_MIN);
        }
        users.split(',').map(str::trim).any(|u| u == s.user)
    }

    fn logoff(logind: &Logind, users: &str, timeout: Duration) -> i32 {
        let own = match logind.session_of_pid(std::process::id()) {
            Ok(own) => own,
            Err(e) => {
                eprintln!("logind_probe: {e}");
                return 1;
            }
        };
        let sessions = match logind.list_sessions() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("logind_probe: {e}");
                return 1;
            }
        };
        let targets: Vec<Session> =
            sessions.into_iter().filter(|s| is_target(s, users) && Some(&s.id) != own.as_ref()).collect();
        let mut code = 0;
        for s in &targets {
            match logind.terminate_session(&s.id) {
                Ok(Done::Requested) => {
                    println!("session {} of {}: terminate requested", s.id, s.user)
                }
                Ok(Done::AlreadyGone) => println!("session {} of {}: already gone", s.id, s.user),
                Err(e) => {
                    println!("session {} of {}: {e}", s.id, s.user);
                    code = 1;
                }
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left: Vec<String> = match logind.list_sessions() {
                Ok(now) => now
                    .into_iter()
                    .filter(|s| targets.iter().any(|t| t.id == s.id))
                    .map(|s| format!("{} ({}, {})", s.id, s.user, s.state))
                    .collect(),
                Err(e) => {
                    eprintln!("logind_probe: {e}");
                    return 1;
                }
            };
            if left.is_empty() {
                println!("own session: {}", own.as_deref().unwrap_or("none"));
                return code;
            }
            if Instant::now() >= deadline {
                println!("still there after {}s: {}", timeout.as_secs(), left.join(", "));
                return 1;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
