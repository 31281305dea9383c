//! Scheduled logoffs without logind (issue 14): utmp sessions on this host (no systemd
//! here), so the runner is a daemon.
//!
//! A stand-in RMM agent (a shell in a session and process group of its own) runs
//! `--detach` and is then killed whole: SIGKILL to its process group and to every process
//! of its session. The job still logs off the two users of its utmp file at the due time,
//! with the warning and the 30 s reminder on their terminals (real ptys the test opens),
//! and a third user's job, cancelled, logs no one off.
//!
//! Root only. Users are made with `useradd` and removed after; the processes signalled are
//! the test's own (its users' sleeps and its stand-in agent).
#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestUser, real_tests, utmp_now, utmp_record};
use logoff_users::testing::linux::procfs::ProcFs;
use logoff_users::testing::linux::utmp::{self, USER_PROCESS};

const TOOL: &str = env!("CARGO_BIN_EXE_logoff-users");
const GRACE_SECS: u64 = 32;

/// A pseudo-terminal: its master (which the test reads) and its slave's name (`pts/N`).
struct Pty {
    master: std::fs::File,
    line: String,
}

impl Pty {
    fn open() -> Pty {
        // SAFETY: posix_openpt takes flags and returns a new descriptor or -1.
        let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a new descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut name = [0 as libc::c_char; 64];
        // SAFETY: grantpt and unlockpt take the master descriptor; ptsname_r writes a
        // NUL-terminated name of at most name.len() bytes.
        unsafe {
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
            assert_eq!(libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK), 0);
        }
        // SAFETY: ptsname_r wrote a NUL-terminated string into name.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
        let line = path.strip_prefix("/dev/").expect("a /dev/pts name").to_string();
        Pty { master: std::fs::File::from(owned), line }
    }

    /// What was written to the terminal so far.
    fn read_all(&mut self, into: &mut String) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.master.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alive(pid: u32) -> bool {
    ProcFs::new("/proc").status(pid).is_some_and(|s| !s.is_dead())
}

/// The pids of this machine whose session id is `sid`.
fn session_members(sid: u32) -> Vec<u32> {
    ProcFs::new("/proc").session_members(&[sid]).unwrap().into_iter().map(|(pid, _, _)| pid).collect()
}

fn pending(dir: &std::path::Path) -> serde_json::Value {
    let out = Command::new(TOOL).args(["--pending", "--format", "json", "--job-dir"]).arg(dir).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_detached_job_outlives_its_killed_caller_and_logs_utmp_users_off() {
    if !real_tests("a_detached_job_outlives_its_killed_caller_and_logs_utmp_users_off") {
        return;
    }
    let users = [TestUser::create(), TestUser::create(), TestUser::create()];
    let mut ptys: Vec<Pty> = users.iter().map(|_| Pty::open()).collect();
    let mut leaders: Vec<std::process::Child> = users.iter().map(|u| u.spawn("sleep", &["600"])).collect();
    // The leaders exist before the records' logon time.
    std::thread::sleep(Duration::from_millis(1100));
    let t = utmp_now();
    let work = tempfile::tempdir().unwrap();
    let utmp_path = work.path().join("utmp");
    let records: Vec<utmp::Record> = users
        .iter()
        .zip(&leaders)
        .zip(&ptys)
        .map(|((u, l), p)| utmp_record(USER_PROCESS, l.id(), &u.name, &p.line, "192.0.2.9", t))
        .collect();
    utmp::write_file(&utmp_path, &records).unwrap();
    let jobs = work.path().join("jobs");
    let message = "logoff-users test: save your work";
    // The audit trail: the job's records (the runner's too) go to this socket.
    let log_path = work.path().join("log");
    let log = std::os::unix::net::UnixDatagram::bind(&log_path).unwrap();
    log.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    // Read as they come: a full socket queue would block the writers.
    let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (records, reading) = (records.clone(), reading.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while reading.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(n) = log.recv(&mut buf) {
                    records.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        })
    };

    // The stand-in agent: a shell in a session of its own that runs the tool and stays.
    let out_path = work.path().join("agent.out");
    let cmd = format!(
        "{TOOL} --source utmp --utmp {utmp} --job-dir {jobs} --audit-socket {log} {a},{b} --detach --message '{message}' --grace {GRACE_SECS}s --format json > {out}; echo tool-exit=$? >> {out}.rc; exec sleep 600",
        utmp = utmp_path.display(),
        jobs = jobs.display(),
        log = log_path.display(),
        a = users[0].name,
        b = users[1].name,
        out = out_path.display()
    );
    let started = Instant::now();
    // setsid(1) makes the shell the leader of a new session and process group (it is not
    // a group leader when it starts, so it does not fork).
    let mut agent = Command::new("setsid").args(["sh", "-c", &cmd]).stdin(Stdio::null()).spawn().unwrap();
    let rc_path = work.path().join("agent.out.rc");
    wait_for("the agent's tool run", 10, || rc_path.exists());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "--detach took {took:?}");
    assert_eq!(std::fs::read_to_string(&rc_path).unwrap().trim(), "tool-exit=0");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let job = doc["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(doc["job"]["mechanism"], "daemon (setsid, double fork)", "{doc}");

    // Kill the agent whole: its process group, and every process of its session.
    let agent_pid = agent.id();
    // SAFETY: kill with a negative pid signals the agent's own process group.
    assert_eq!(unsafe { libc::kill(-(agent_pid as i32), libc::SIGKILL) }, 0);
    let _ = agent.wait();
    for pid in session_members(agent_pid) {
        // SAFETY: only processes of the agent's own session (none should be left).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }

    // The runner lives on, outside the agent's group and session.
    assert_eq!(pending(&jobs)["jobs"][0]["state"], "pending");
    let runner_pid = {
        let mut pid = None;
        wait_for("the runner's pid in the job file", 5, || {
            let text = std::fs::read_to_string(jobs.join(format!("{job}.json"))).unwrap_or_default();
            pid = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["runner_pid"].as_u64());
            pid.is_some()
        });
        pid.unwrap() as u32
    };
    assert!(alive(runner_pid), "the runner died with the agent");
    let stat = std::fs::read_to_string(format!("/proc/{runner_pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let (pgrp, session): (u32, u32) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
    assert_ne!((pgrp, session), (agent_pid, agent_pid), "the runner is out of the agent's group and session");
    assert_eq!(session, pgrp, "the runner's session is its own");
    assert_ne!(session, runner_pid, "the runner is not its session's leader (double fork)");
    // It holds nothing of the agent's: its output is not the agent's (an agent reading the
    // script's output until EOF would wait for it otherwise).
    for fd in std::fs::read_dir(format!("/proc/{runner_pid}/fd")).unwrap().flatten() {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert!(!target.starts_with(work.path().join("agent.out")), "the runner holds {}", target.display());
    }
    assert_eq!(std::fs::read_link(format!("/proc/{runner_pid}/fd/1")).unwrap(), std::path::Path::new("/dev/null"));

    // A third user's job, cancelled: no one logged off.
    let out = Command::new(TOOL)
        .args(["--source", "utmp", "--utmp"])
        .arg(&utmp_path)
        .arg("--job-dir")
        .arg(&jobs)
        .args([users[2].name.as_str(), "--detach", "--message", message, "--grace", "3s", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cancelled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cancelled = cancelled["job"]["id"].as_str().unwrap().to_string();
    let out = Command::new(TOOL)
        .arg("--job-dir")
        .arg(&jobs)
        .arg("--audit-socket")
        .arg(&log_path)
        .args(["--cancel", &cancelled])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // The due time.
    wait_for("the job to finish", GRACE_SECS + 30, || {
        pending(&jobs)["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == job.as_str() && j["state"] != "pending" && j["state"] != "running")
    });
    let doc = pending(&jobs);
    let j = doc["jobs"].as_array().unwrap().iter().find(|j| j["id"] == job.as_str()).unwrap();
    assert_eq!(
        (j["state"].as_str(), j["exit_code"].as_i64()),
        (Some("done"), Some(0)),
        "{doc}\n{}",
        std::fs::read_to_string(jobs.join(format!("{job}.log"))).unwrap_or_default()
    );
    assert_eq!(j["summary"]["users_logged_off"], 2, "{j}");
    for (u, l) in users.iter().zip(leaders.iter_mut()).take(2) {
        wait_for("the leader to be reaped", 5, || l.try_wait().unwrap().is_some());
        assert!(u.live_processes().is_empty(), "{} still has processes", u.name);
    }
    assert!(leaders[2].try_wait().unwrap().is_none(), "the cancelled job's user must keep her session");
    let c = doc["jobs"].as_array().unwrap().iter().find(|j| j["id"] == cancelled.as_str()).unwrap();
    assert_eq!(c["state"], "cancelled");
    for p in ptys.iter_mut().take(2) {
        let mut text = String::new();
        p.read_all(&mut text);
        assert!(text.contains(&format!("{message} (You will be logged off in {GRACE_SECS}s.)")), "{text:?}");
        assert!(text.contains(&format!("Reminder: you will be logged off in 30s. {message}")), "{text:?}");
    }
    let mut third = String::new();
    ptys[2].read_all(&mut third);
    assert!(third.contains(message) && !third.contains("Reminder"), "{third:?}");
    assert!(!alive(runner_pid), "the runner exits when its job is done");
    let _ = leaders[2].kill();
    let _ = leaders[2].wait();

    // The audit trail: the scheduling, the cancel, and the job's start, actions and end.
    std::thread::sleep(Duration::from_millis(300));
    reading.store(false, std::sync::atomic::Ordering::SeqCst);
    reader.join().unwrap();
    let all = records.lock().unwrap().join("\n");
    for want in [
        format!("action=schedule_job job={job} targets={},{} ", users[0].name, users[1].name),
        format!("action=cancel_job job={cancelled} targets={} result=cancelled ", users[2].name),
        format!("action=job_start job={job} "),
        format!("action=logoff_session host=localhost user={} ", users[0].name),
        format!("action=job_end job={job} state=done exit_code=0 "),
    ] {
        assert!(all.contains(&want), "no {want:?} in the audit trail:\n{all}");
    }
}
