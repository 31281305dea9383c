//! The job directory, the lock, the race between a job's start and a cancel, and the
//! runner against the fake backend (in-process: the runner is a function; starting it as
//! its own process is the CLI tests' and the container test's part).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::*;
use crate::backend::NativeOptions;
use crate::backend::fake::FakeState;
use crate::model::{Process, Session, SessionState};
use crate::plan::PlanOptions;
use crate::run::Warning;
use crate::userlist::parse_targets;

fn opts(list: &str, grace_ms: u64, message: Option<&str>) -> RunOptions {
    RunOptions {
        targets: parse_targets(&[list.to_string()]).unwrap(),
        exclude: vec![],
        plan: PlanOptions::default(),
        dry_run: false,
        timeout: Duration::from_secs(5),
        kill_after: Duration::ZERO,
        warning: message.map(|t| Warning { text: t.into(), grace: Duration::from_millis(grace_ms) }),
        drain: None,
        wait_profile: None,
    }
}

/// A fake machine with bob (two sessions) and carol (one), written to `dir/state.json`.
fn machine(dir: &Path) -> PathBuf {
    let mut state = FakeState::default();
    for (id, user, uid) in [("2", "bob", 1001), ("3", "bob", 1001), ("4", "carol", 1002)] {
        state.sessions.push(Session { uid: Some(uid), ..Session::new(id, user, SessionState::Active) });
        state.processes.push(Process {
            uid: Some(uid),
            user: Some(user.into()),
            session_id: Some(id.into()),
            ..Process::new(4000 + uid, "sh")
        });
    }
    let path = dir.join("state.json");
    std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
    path
}

fn fake_actions(state: &Path) -> Vec<(String, Option<String>)> {
    let s: FakeState = serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    s.actions.iter().map(|a| (a.action.to_string(), a.session.clone())).collect()
}

fn spec(o: &RunOptions, state: &Path) -> JobSpec {
    let hosts = JobHosts::new(Some(state.to_path_buf()), vec![], &NativeOptions::default());
    JobSpec::new(o, hosts, JobAudit::default())
}

/// Writes a new pending job of `o` into `dir`.
fn write_job(dir: &JobDir, o: &RunOptions, state: &Path) -> Job {
    let locked = dir.lock().unwrap();
    let job = Job::new(locked.new_id(), spec(o, state), "tester".into(), now_ms(), os::boot_id());
    locked.write(&job).unwrap();
    job
}

fn job_dir(base: &Path) -> JobDir {
    JobDir::open(&base.join("jobs"), true).unwrap().unwrap()
}

#[test]
fn jobs_are_written_atomically_and_read_back() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let job = write_job(&d, &opts("bob", 1000, Some("hi")), &state);
    let locked = d.lock().unwrap();
    assert_eq!(locked.read(&job.id).unwrap().unwrap(), job);
    assert_eq!(locked.read(&JobId::from_bits(7)).unwrap(), None);
    // Nothing but the job, its lock and no temp file is left in the directory.
    let mut names: Vec<String> =
        std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, [format!("{}.json", job.id), "lock".to_string()]);
    let (jobs, refused) = locked.list().unwrap();
    assert_eq!((jobs.len(), refused.len()), (1, 0));
}

/// Another program holding the job file open (a scanner, an editor; on Windows before
/// 1709 that makes the rename over it fail until it is closed) delays a write, never
/// fails it, when it lets go within the second the write retries for.
#[test]
fn a_write_waits_for_a_reader_that_holds_the_file_open() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let mut job = write_job(&d, &opts("bob", 1000, Some("hi")), &state);
    let reader = std::fs::File::open(d.path().join(format!("{}.json", job.id))).unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(reader);
    });
    job.mechanism = Some("test".into());
    let locked = d.lock().unwrap();
    locked.write(&job).unwrap();
    holder.join().unwrap();
    assert_eq!(locked.read(&job.id).unwrap().unwrap().mechanism.as_deref(), Some("test"));
}

#[test]
fn corrupt_foreign_and_odd_files_are_refused_never_trusted() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let good = write_job(&d, &opts("bob", 1000, None), &state);
    let text = std::fs::read_to_string(d.job_path(&good.id)).unwrap();
    let write = |name: &str, body: &str| {
        let p = d.path().join(name);
        let mut f = os::create_new(&p).unwrap();
        f.write_all(body.as_bytes()).unwrap();
    };
    write("00000001.json", "{ not json");
    write("00000002.json", &text.replace("\"version\": 1", "\"version\": 9"));
    write("00000003.json", &text); // holds another id
    write("00000004.json", &text.replace("\"all\": false", "\"all\": false, \"exec\": \"/bin/sh\""));
    let other = text.replace(good.id.as_str(), "00000005");
    write("00000005.json", &other.replace("\"name\": \"bob\"", "\"name\": \"\""));
    write("notajob.json", "ignored: not a job's name");
    let refused = d.lock().unwrap().list().unwrap().1;
    let reasons: Vec<(&str, &str)> = refused.iter().map(|r| (r.file.as_str(), r.reason.as_str())).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].1.contains("corrupt JSON"), "{reasons:?}");
    assert!(reasons[1].1.contains("version Some(9)"), "{reasons:?}");
    assert!(reasons[2].1.contains(&format!("holds job {}", good.id)), "{reasons:?}");
    assert!(reasons[3].1.contains("unknown field `exec`"), "{reasons:?}");
    assert!(reasons[4].1.contains("not a valid job"), "{reasons:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let p = d.job_path(&good.id);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let r = d.lock().unwrap().read(&good.id).unwrap_err();
        assert!(r.reason.contains("writable by its group or others"), "{r:?}");
        assert!(d.peek(&good.id).is_err(), "the runner's poll refuses it too");
    }
    // A refused file is never acted on: cancel reports it (exit 1), the runner refuses it.
    let mut audit = AuditTrail::open(false);
    let doc = cancel(d.path(), &CancelTarget::Id(JobId::from_bits(1)), None, &mut audit, &mut |_| {});
    assert_eq!((doc.exit_code, doc.refused.len(), doc.cancelled.len()), (1, 1, 0));
    assert_eq!(run_job(d.path(), &JobId::from_bits(1), &AtomicBool::new(false)), 1);
    let doc = pending(d.path());
    assert_eq!(doc.exit_code, 1);
    assert_eq!(doc.refused.len(), if cfg!(unix) { 6 } else { 5 });
}

#[test]
fn finished_jobs_are_pruned_after_a_while_pending_ones_never() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let pending_job = write_job(&d, &opts("bob", 1000, None), &state);
    let mut old = write_job(&d, &opts("bob", 1000, None), &state);
    old.cancel("x", 5).unwrap();
    let locked = d.lock().unwrap();
    locked.write(&old).unwrap();
    assert_eq!(locked.prune(10).unwrap(), [old.id.clone()]);
    assert_eq!(locked.prune(u64::MAX).unwrap(), Vec::<JobId>::new());
    assert!(locked.read(&pending_job.id).unwrap().is_some());
}

/// The race a cancel in a job's last second runs: the job's start and the cancel, each
/// under the lock, on two threads released by one barrier, each first sleeping for a random
/// 0 to 2 ms, 2,000 times. Exactly one of them wins each time, the
/// file says which, and the job "logs off" (counts) only when its start won.
#[test]
fn a_cancel_racing_the_start_either_wins_or_is_told_it_is_too_late() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = Arc::new(job_dir(base.path()));
    let logged_off = Arc::new(AtomicU32::new(0));
    let (mut started, mut cancelled) = (0u32, 0u32);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (runner_delay, cancel_delay) = ((seed >> 8) % 2000, (seed >> 32) % 2000);
        let job = write_job(&d, &opts("bob", 0, None), &state);
        let barrier = Arc::new(Barrier::new(2));
        let runner = {
            let (d, barrier, id, logged_off) =
                (Arc::clone(&d), Arc::clone(&barrier), job.id.clone(), Arc::clone(&logged_off));
            std::thread::spawn(move || {
                barrier.wait();
                std::thread::sleep(Duration::from_micros(runner_delay));
                let locked = d.lock().unwrap();
                let mut j = locked.read(&id).unwrap().unwrap();
                let won = j.start(now_ms()).is_ok();
                if won {
                    locked.write(&j).unwrap();
                }
                drop(locked);
                if won {
                    logged_off.fetch_add(1, Ordering::SeqCst);
                }
                won
            })
        };
        let canceller = {
            let (d, barrier, id) = (Arc::clone(&d), Arc::clone(&barrier), job.id.clone());
            std::thread::spawn(move || {
                barrier.wait();
                std::thread::sleep(Duration::from_micros(cancel_delay));
                let locked = d.lock().unwrap();
                let mut j = locked.read(&id).unwrap().unwrap();
                let cancel = j.cancel("admin", now_ms());
                if cancel == Ok(true) {
                    locked.write(&j).unwrap();
                }
                cancel
            })
        };
        let won = runner.join().unwrap();
        let cancel = canceller.join().unwrap();
        let after = d.lock().unwrap().read(&job.id).unwrap().unwrap();
        match (won, cancel) {
            (true, Err(job::NotAllowed(JobState::Running))) => {
                started += 1;
                assert_eq!(after.state, JobState::Running);
            }
            (false, Ok(true)) => {
                cancelled += 1;
                assert_eq!(after.state, JobState::Cancelled);
            }
            other => panic!("both or neither won: {other:?}, file says {:?}", after.state),
        }
        std::fs::remove_file(d.job_path(&job.id)).unwrap();
    }
    assert_eq!(logged_off.load(Ordering::SeqCst), started, "a job logged off only when its start won");
    assert_eq!(started + cancelled, 2000);
    eprintln!("race: the start won {started} times, the cancel {cancelled} times");
    // Both sides must have won often, or the race was not run.
    assert!(started >= 100 && cancelled >= 100, "start {started}, cancel {cancelled}");
}

/// `ALL --detach` from carol's session: the runner, which runs in no session, spares hers
/// as the scheduling run would have.
#[test]
fn the_runner_spares_the_session_it_was_scheduled_from() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let s: FakeState = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let carol = s.sessions.iter().find(|x| x.id == "4").unwrap();
    let mut spec = spec(&opts("ALL", 0, None), &state);
    spec.caller_sessions = vec![CallerSession::of("localhost", carol)];
    let job = {
        let locked = d.lock().unwrap();
        let job = Job::new(locked.new_id(), spec, "tester".into(), now_ms(), os::boot_id());
        locked.write(&job).unwrap();
        job
    };
    run_job(d.path(), &job.id, &AtomicBool::new(false));
    let acts = fake_actions(&state);
    let logoffs: Vec<_> = acts.iter().filter(|(a, _)| a == "logoff_session").map(|(_, s)| s.clone().unwrap()).collect();
    assert_eq!(logoffs, ["2", "3"], "{acts:?}");
}

#[test]
fn the_runner_waits_reminds_and_logs_off_what_is_there_at_the_due_time() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let job = write_job(&d, &opts("bob,carol", 1200, Some("Save your work")), &state);
    // carol leaves during the grace period: she counts as done.
    let mut s: FakeState = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    s.sessions.retain(|x| x.user != "carol");
    s.processes.retain(|x| x.user.as_deref() != Some("carol"));
    std::fs::write(&state, serde_json::to_string(&s).unwrap()).unwrap();
    let t0 = Instant::now();
    let code = run_job(d.path(), &job.id, &AtomicBool::new(false));
    assert_eq!(code, 0);
    assert!(t0.elapsed() >= Duration::from_millis(1000), "it waited for the due time: {:?}", t0.elapsed());
    let acts = fake_actions(&state);
    let logoffs: Vec<_> = acts.iter().filter(|(a, _)| a == "logoff_session").map(|(_, s)| s.clone().unwrap()).collect();
    assert_eq!(logoffs, ["2", "3"], "{acts:?}");
    let after = d.peek(&job.id).unwrap().unwrap();
    assert_eq!((after.state, after.exit_code), (JobState::Done, Some(0)));
    let summary = after.summary.unwrap();
    assert_eq!((summary["users_logged_off"].as_u64(), summary["users_not_logged_on"].as_u64()), (Some(1), Some(1)));
    assert_eq!(after.runner_pid, Some(std::process::id()));
    let log = std::fs::read_to_string(d.log_path(&job.id)).unwrap();
    assert!(log.contains("due: logging off now"), "{log}");
    assert!(log.contains(&format!("job {}: done (exit 0)", job.id)), "{log}");
    // It runs once: a second runner finds it done and does nothing.
    assert_eq!(run_job(d.path(), &job.id, &AtomicBool::new(false)), 0);
    assert_eq!(fake_actions(&state).len(), acts.len());
}

#[test]
fn a_job_cancelled_while_it_waits_logs_no_one_off_and_the_runner_leaves_at_once() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let job = write_job(&d, &opts("ALL", 60_000, Some("Save your work")), &state);
    let dir = d.path().to_path_buf();
    let id = job.id.clone();
    let t0 = Instant::now();
    let runner = std::thread::spawn(move || run_job(&dir, &id, &AtomicBool::new(false)));
    std::thread::sleep(Duration::from_millis(300));
    let mut audit = AuditTrail::open(false);
    let mut lines = Vec::new();
    let doc =
        cancel(d.path(), &CancelTarget::All, Some("Logoff cancelled"), &mut audit, &mut |l| lines.push(l.to_string()));
    assert_eq!((doc.exit_code, doc.cancelled.len()), (0, 1), "{lines:?}");
    assert_eq!(runner.join().unwrap(), 0);
    assert!(t0.elapsed() < Duration::from_secs(5), "the runner noticed the cancel: {:?}", t0.elapsed());
    let acts = fake_actions(&state);
    assert!(acts.iter().all(|(a, _)| a == "send_message"), "only the cancel message: {acts:?}");
    assert_eq!(acts.len(), 3, "bob's two sessions and carol's: {acts:?}");
    let s: FakeState = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(s.actions.iter().all(|a| a.text.as_deref() == Some("Logoff cancelled")));
    assert!(lines.iter().any(|l| l.starts_with(&format!("cancelled: job {} (log off ALL at ", job.id))), "{lines:?}");
    // Cancelling it again: cancelled already (exit 0); an unknown id: exit 6.
    let doc = cancel(d.path(), &CancelTarget::Id(job.id.clone()), None, &mut audit, &mut |_| {});
    assert_eq!(doc.exit_code, 0);
    let doc = cancel(d.path(), &CancelTarget::Id(JobId::from_bits(9)), None, &mut audit, &mut |_| {});
    assert_eq!((doc.exit_code, doc.unknown.as_deref()), (EXIT_UNKNOWN_JOB, Some("00000009")));
    let doc = cancel(d.path(), &CancelTarget::All, None, &mut audit, &mut |_| {});
    assert_eq!((doc.exit_code, doc.cancelled.len()), (0, 0), "nothing pending");
}

#[test]
fn a_cancel_after_the_start_is_too_late_and_says_so() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let job = write_job(&d, &opts("bob", 0, None), &state);
    assert_eq!(run_job(d.path(), &job.id, &AtomicBool::new(false)), 0);
    let mut audit = AuditTrail::open(false);
    let mut lines = Vec::new();
    let doc = cancel(d.path(), &CancelTarget::Id(job.id.clone()), None, &mut audit, &mut |l| lines.push(l.to_string()));
    assert_eq!((doc.exit_code, doc.too_late.len()), (EXIT_TOO_LATE, 1));
    assert!(lines[0].starts_with(&format!("too late: job {} started logging off at ", job.id)), "{lines:?}");
    // `all` leaves finished jobs alone: nothing pending.
    let doc = cancel(d.path(), &CancelTarget::All, None, &mut audit, &mut |_| {});
    assert_eq!(doc.exit_code, 0);
}

#[test]
fn a_stopped_runner_abandons_its_job_and_a_job_of_another_boot_never_runs() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let job = write_job(&d, &opts("bob", 60_000, Some("x")), &state);
    assert_eq!(run_job(d.path(), &job.id, &AtomicBool::new(true)), 1);
    let after = d.peek(&job.id).unwrap().unwrap();
    assert_eq!(after.state, JobState::Failed);
    assert!(after.error.unwrap().contains("stopped before the due time"));
    // From another boot: the runner (or --pending) marks it failed and logs no one off.
    let mut old = write_job(&d, &opts("bob", 0, None), &state);
    old.boot_id = Some("another-boot".into());
    d.lock().unwrap().write(&old).unwrap();
    if os::boot_id().is_some() {
        assert_eq!(run_job(d.path(), &old.id, &AtomicBool::new(false)), 1);
        assert_eq!(d.peek(&old.id).unwrap().unwrap().state, JobState::Failed);
    }
    assert!(fake_actions(&state).iter().all(|(a, _)| a != "logoff_session"));
    // A failed job that never started: nothing to cancel, exit 0.
    let mut audit = AuditTrail::open(false);
    let doc = cancel(d.path(), &CancelTarget::Id(job.id.clone()), None, &mut audit, &mut |_| {});
    assert_eq!(doc.exit_code, 0);
}

#[test]
fn overlapping_jobs_each_do_their_part() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let a = write_job(&d, &opts("bob,carol", 300, Some("a")), &state);
    let b = write_job(&d, &opts("bob", 300, Some("b")), &state);
    let runners: Vec<_> = [a.id.clone(), b.id.clone()]
        .into_iter()
        .map(|id| {
            let dir = d.path().to_path_buf();
            std::thread::spawn(move || run_job(&dir, &id, &AtomicBool::new(false)))
        })
        .collect();
    let codes: Vec<i32> = runners.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(codes, [0, 0], "nobody is logged off twice with an error");
    let logoffs: Vec<_> = fake_actions(&state).into_iter().filter(|(a, _)| a == "logoff_session").collect();
    assert_eq!(logoffs.len(), 3, "each session once: {logoffs:?}");
    for id in [&a.id, &b.id] {
        assert_eq!(d.peek(id).unwrap().unwrap().state, JobState::Done);
    }
}

#[test]
fn pending_lists_jobs_by_due_time_and_views_say_what_they_target() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let later = write_job(&d, &opts("bob", 60_000, Some("m")), &state);
    let sooner = write_job(&d, &opts("ALL", 30_000, Some("m")), &state);
    let doc = pending(d.path());
    assert_eq!(doc.exit_code, 0);
    let ids: Vec<&str> = doc.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [sooner.id.as_str(), later.id.as_str()]);
    assert!(doc.jobs[0].targets.all && doc.jobs[1].targets.users == ["bob"]);
    let table = crate::text::pending_table(&doc);
    assert!(table.starts_with("ID "), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.lines().nth(2).unwrap().contains("pending") && table.contains("tester"), "{table}");
    // No directory at all: nothing pending, exit 0.
    let doc = pending(&base.path().join("absent"));
    assert_eq!((doc.exit_code, doc.jobs.len()), (0, 0));
}

#[cfg(target_os = "linux")]
#[test]
fn a_job_whose_runner_is_gone_is_marked_failed_and_never_runs() {
    let base = tempfile::tempdir().unwrap();
    let state = machine(base.path());
    let d = job_dir(base.path());
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let mut pending_job = write_job(&d, &opts("bob", 60_000, Some("m")), &state);
    pending_job.runner_pid = Some(dead);
    let mut running = write_job(&d, &opts("carol", 0, None), &state);
    running.start(now_ms()).unwrap();
    running.runner_pid = Some(dead);
    let mut alive = write_job(&d, &opts("bob", 60_000, Some("m")), &state);
    alive.runner_pid = Some(std::process::id());
    {
        let locked = d.lock().unwrap();
        for j in [&pending_job, &running, &alive] {
            locked.write(j).unwrap();
        }
    }
    let doc = pending(d.path());
    let state_of = |id: &JobId| doc.jobs.iter().find(|j| j.id == id.as_str()).unwrap().clone();
    let p = state_of(&pending_job.id);
    assert_eq!(p.state, JobState::Failed);
    assert!(p.error.unwrap().contains(&format!("its runner (pid {dead}) is gone")));
    let r = state_of(&running.id);
    assert_eq!(r.state, JobState::Failed);
    assert!(r.error.unwrap().contains("died while logging off"));
    assert_eq!(state_of(&alive.id).state, JobState::Pending, "a live runner's job stays pending");
    assert!(fake_actions(&state).is_empty());
}
