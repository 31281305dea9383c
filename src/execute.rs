//! Execution and verification: run every action of a [`Plan`] against a [`Backend`], even
//! when one fails, then poll the machine until every targeted session and process is gone
//! or the timeout passes.
//!
//! What is "targeted": each planned session (by id and account, since an id can be reused
//! by a new logon), and, for a user whose processes are terminated, every process of that
//! user in scope (so a process forked during the run counts too); for a user who is only
//! logged off, the user's processes in the logged-off sessions. Zombies count as gone.

use std::time::{Duration, Instant};

use crate::backend::{Backend, Done, TerminateOptions};
use crate::error::ErrorKind;
use crate::model::{Account, Process, Session};
use crate::plan::{Plan, UserPlan, UserStatus};
use crate::report::{ActionRecord, ActionResult, Event, Remaining, UserOutcome, UserResult, Verification};

/// Options for carrying out a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// How long verification may wait; also bounds each process termination.
    pub timeout: Duration,
    /// The wait between the polite and the forceful signal.
    pub grace: Duration,
    /// The first wait between two polls; it doubles up to 500 ms.
    pub poll: Duration,
    /// Include services-session processes.
    pub include_services: bool,
    /// Disconnect sessions instead of logging them off; a session then counts as done
    /// when it is disconnected (or gone).
    pub disconnect: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            timeout: Duration::from_secs(30),
            grace: Duration::from_secs(5),
            poll: Duration::from_millis(50),
            include_services: false,
            disconnect: false,
        }
    }
}

/// What carrying out a plan produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Every action, in order.
    pub actions: Vec<ActionRecord>,
    /// The verification.
    pub verification: Verification,
    /// The outcome per user, in plan order.
    pub users: Vec<UserResult>,
}

/// What must be gone for a user to count as logged off.
struct Target<'a> {
    user: &'a UserPlan,
    account: &'a Account,
}

impl Target<'_> {
    fn remaining(
        &self,
        sessions: &[Session],
        processes: &[Process],
        own: &[u32],
        opts: &ExecOptions,
    ) -> (Remaining, u64) {
        let include_services = opts.include_services;
        let acct_key = |s: &Session| s.user == self.account.user && s.domain == self.account.domain;
        let left_sessions: Vec<String> = self
            .user
            .sessions
            .iter()
            .filter(|planned| {
                sessions.iter().any(|s| {
                    s.id == planned.id
                        && acct_key(s)
                        && !(opts.disconnect && s.state == crate::model::SessionState::Disconnected)
                })
            })
            .map(|s| s.id.clone())
            .collect();
        let ids: Vec<&str> = self.user.sessions.iter().map(|s| s.id.as_str()).collect();
        let mut zombies = 0;
        let mut pids = Vec::new();
        let mut uninterruptible = Vec::new();
        // A disconnected session keeps its processes: that is the point of --disconnect.
        let processes = if opts.disconnect { &[][..] } else { processes };
        for p in processes {
            if own.contains(&p.pid) || !p.is_owned_by(self.account) {
                continue;
            }
            let targeted = if self.user.terminate.is_some() {
                include_services || p.session_id.as_deref() != Some("0")
            } else {
                p.session_id.as_deref().is_some_and(|id| ids.contains(&id))
            };
            if !targeted {
                continue;
            }
            if p.zombie {
                zombies += 1;
            } else {
                pids.push(p.pid);
                if p.uninterruptible {
                    uninterruptible.push(p.pid);
                }
            }
        }
        (Remaining { user: self.account.display_name(), sessions: left_sessions, pids, uninterruptible }, zombies)
    }
}

fn record(action: &str, user: &str, session_id: Option<&str>, reason: Option<&str>) -> ActionRecord {
    ActionRecord {
        action: action.to_string(),
        user: user.to_string(),
        session_id: session_id.map(str::to_string),
        reason: reason.map(str::to_string),
        result: ActionResult::Requested,
        error: None,
        signalled: None,
        method: None,
    }
}

/// Lists what the planner needs from a backend: sessions, processes, the tool's own
/// session and pids, and the platform's rules.
///
/// # Errors
///
/// Fails when sessions or processes cannot be listed. Not knowing the tool's own session
/// is no reason to stop: the own pids still protect it.
pub fn snapshot(backend: &mut dyn Backend) -> crate::error::Result<crate::plan::Snapshot> {
    Ok(crate::plan::Snapshot {
        sessions: backend.list_sessions()?,
        processes: backend.list_processes()?,
        current_session: backend.current_session().unwrap_or(None),
        own_pids: backend.own_pids(),
        policy: backend.policy(),
    })
}

/// Records how an action ended: `Ok(already_gone)`, or an error, where a `NotFound` error
/// also means "already gone". Returns `false` when the action failed.
fn settle(rec: &mut ActionRecord, done: crate::error::Result<bool>) -> bool {
    match done {
        Ok(false) => true,
        Ok(true) => {
            rec.result = ActionResult::AlreadyGone;
            true
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            rec.result = ActionResult::AlreadyGone;
            true
        }
        Err(e) => {
            rec.result = ActionResult::Failed;
            rec.error = Some(e.to_string());
            false
        }
    }
}

/// Carries out `plan` on `backend`, reporting each event to `log` as it happens, then
/// verifies. Every action runs, even after a failure.
pub fn execute(backend: &mut dyn Backend, plan: &Plan, opts: &ExecOptions, log: &mut dyn FnMut(Event)) -> Execution {
    // One deadline for the whole run: a process that cannot die (uninterruptible sleep)
    // must not make the termination and then the verification each wait a full timeout.
    let deadline = Instant::now() + opts.timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let own = backend.own_pids();
    let mut actions = Vec::new();
    let mut failed_users = Vec::new();

    for skip in &plan.skipped {
        log(Event::Skipped {
            session_id: skip.session_id.clone(),
            user: skip.user.clone(),
            reason: skip.reason.clone(),
        });
    }
    for (index, up) in plan.users.iter().enumerate() {
        let Some(account) = &up.account else {
            log(Event::NotLoggedOn { requested: up.requested.clone() });
            continue;
        };
        let who = account.display_name();
        log(Event::User {
            requested: up.requested.clone(),
            user: who.clone(),
            sessions: up.sessions.len(),
            processes: up.pids.len(),
        });
        for note in &up.notes {
            log(Event::Note { user: who.clone(), note: note.clone() });
        }
        for s in &up.sessions {
            if opts.disconnect {
                log(Event::Notice(format!("disconnecting session {} of {who}", s.id)));
            } else {
                log(Event::LoggingOff { user: who.clone(), session_id: s.id.clone(), station: s.station.clone() });
            }
            let (name, result) = if opts.disconnect {
                ("disconnect_session", backend.disconnect_session(s))
            } else {
                ("logoff_session", backend.logoff_session(s))
            };
            let mut rec = record(name, &who, Some(&s.id), None);
            let done = result.map(|d| d == Done::AlreadyGone);
            if !settle(&mut rec, done) {
                failed_users.push(index);
            }
            log(Event::Action(rec.clone()));
            actions.push(rec);
        }
        if let Some(reason) = up.terminate {
            let reason = match reason {
                crate::plan::TerminateReason::Fallback => "fallback",
                crate::plan::TerminateReason::Sweep => "sweep",
            };
            log(Event::Terminating { user: who.clone(), reason: reason.to_string(), processes: up.pids.len() });
            let topts = TerminateOptions {
                grace: opts.grace.min(left()),
                timeout: left(),
                include_services: opts.include_services,
                spare_pids: own.clone(),
                listed_pids: up.pids.clone(),
            };
            let mut rec = record("terminate_processes", &who, None, Some(reason));
            let done = backend.terminate_processes(account, &topts).map(|t| {
                rec.signalled = Some(t.signalled);
                rec.method = Some(t.method);
                false
            });
            if !settle(&mut rec, done) {
                failed_users.push(index);
            }
            log(Event::Action(rec.clone()));
            actions.push(rec);
        }
    }

    let verification = verify(backend, plan, &ExecOptions { timeout: left(), ..opts.clone() }, &own, log);
    let users = plan
        .users
        .iter()
        .enumerate()
        .map(|(i, up)| {
            let user = up.account.as_ref().map(Account::display_name);
            let outcome = match up.status {
                UserStatus::NotLoggedOn => UserOutcome::NotLoggedOn,
                // Every session of the user was left out by a session filter.
                UserStatus::LoggedOn if up.sessions.is_empty() => UserOutcome::LeftAlone,
                // Processes but no session, left alone by --no-process-fallback.
                UserStatus::ProcessesOnly if up.terminate.is_none() => UserOutcome::NotLoggedOn,
                _ if failed_users.contains(&i) => UserOutcome::Failed,
                _ if verification.remaining.iter().any(|r| Some(&r.user) == user.as_ref()) => UserOutcome::Failed,
                _ if opts.disconnect => UserOutcome::Disconnected,
                _ => UserOutcome::LoggedOff,
            };
            UserResult { requested: up.requested.clone(), user, outcome }
        })
        .collect();
    Execution { actions, verification, users }
}

/// The longest message Windows shows (`WTSSendMessageW`); longer ones are refused.
pub const MAX_MESSAGE_CHARS: usize = 255;

/// Sends `text` to every session of `plan`, one `send_message` record per session.
pub fn send_messages(
    backend: &mut dyn Backend,
    plan: &Plan,
    title: &str,
    text: &str,
    log: &mut dyn FnMut(Event),
) -> Vec<ActionRecord> {
    let mut out = Vec::new();
    for up in &plan.users {
        let Some(account) = &up.account else { continue };
        let who = account.display_name();
        for s in &up.sessions {
            let mut rec = record("send_message", &who, Some(&s.id), None);
            if let Err(e) = backend.send_message(s, title, text) {
                rec.result = ActionResult::Failed;
                rec.error = Some(e.to_string());
            }
            log(Event::Action(rec.clone()));
            out.push(rec);
        }
    }
    out
}

/// The points, as time left, at which a grace period of `grace` sends a reminder: each of
/// 1h, 30m, 15m, 10m, 5m, 2m, 1m and 30s that is shorter than the grace period, so a long
/// grace reminds more often as the end nears, and a grace of 30 s or less sends none.
pub fn reminder_points(grace: Duration) -> Vec<Duration> {
    [3600, 1800, 900, 600, 300, 120, 60, 30].into_iter().map(Duration::from_secs).filter(|p| *p < grace).collect()
}

/// Waits out a grace period, logging the countdown and calling `remind` with the time left
/// at each of `points` (see [`reminder_points`]). Returns `false` as soon as `cancel` is set
/// (Ctrl-C, SIGTERM), `true` when the grace period is over.
pub fn wait_grace(
    grace: Duration,
    points: &[Duration],
    cancel: &std::sync::atomic::AtomicBool,
    remind: &mut dyn FnMut(Duration),
    log: &mut dyn FnMut(Event),
) -> bool {
    use std::sync::atomic::Ordering;
    let start = Instant::now();
    let mut points = points.iter().copied().filter(|p| *p < grace).peekable();
    log(Event::Countdown { remaining_ms: grace.as_millis() as u64, reminder: false });
    loop {
        if cancel.load(Ordering::SeqCst) {
            log(Event::Cancelled);
            return false;
        }
        let left = grace.saturating_sub(start.elapsed());
        if left.is_zero() {
            log(Event::Countdown { remaining_ms: 0, reminder: false });
            return true;
        }
        if let Some(point) = points.peek().copied() {
            if left <= point {
                points.next();
                remind(point);
                log(Event::Countdown { remaining_ms: point.as_millis() as u64, reminder: true });
                continue;
            }
        }
        let next = points.peek().map(|p| left.saturating_sub(*p)).unwrap_or(left);
        std::thread::sleep(next.clamp(Duration::from_millis(1), Duration::from_millis(100)));
    }
}

/// Polls the machine until every target of `plan` is gone or `opts.timeout` passes.
pub fn verify(
    backend: &mut dyn Backend,
    plan: &Plan,
    opts: &ExecOptions,
    own: &[u32],
    log: &mut dyn FnMut(Event),
) -> Verification {
    let targets: Vec<Target> = plan
        .users
        .iter()
        .filter_map(|u| u.account.as_ref().map(|account| Target { user: u, account }))
        .filter(|t| !t.user.sessions.is_empty() || t.user.terminate.is_some())
        .collect();
    let start = Instant::now();
    let mut polls = 0;
    let mut errors: Vec<String> = Vec::new();
    let mut wait = opts.poll;
    if !targets.is_empty() {
        // What is left of the run's timeout, shown rounded up to whole seconds.
        let ms = opts.timeout.as_millis() as u64;
        log(Event::Waiting { timeout_ms: if ms >= 1000 { ms.div_ceil(1000) * 1000 } else { ms } });
    }
    loop {
        polls += 1;
        let listed = backend.list_sessions().and_then(|s| Ok((s, backend.list_processes()?)));
        match listed {
            Ok((sessions, processes)) => {
                let mut zombies = 0;
                let mut remaining = Vec::new();
                for t in &targets {
                    let (r, z) = t.remaining(&sessions, &processes, own, opts);
                    zombies += z;
                    if !r.sessions.is_empty() || !r.pids.is_empty() {
                        remaining.push(r);
                    }
                }
                let timed_out = start.elapsed() >= opts.timeout;
                if remaining.is_empty() || timed_out {
                    let verified = remaining.is_empty();
                    for t in &targets {
                        let name = t.account.display_name();
                        match remaining.iter().find(|r| r.user == name) {
                            Some(r) => log(Event::StillPresent {
                                user: name,
                                sessions: r.sessions.clone(),
                                pids: r.pids.clone(),
                                uninterruptible: r.uninterruptible.clone(),
                            }),
                            None => {
                                let (_, z) = t.remaining(&sessions, &processes, own, opts);
                                log(Event::VerifiedGone { user: name, zombies: z });
                            }
                        }
                    }
                    return Verification {
                        verified,
                        timed_out: !verified,
                        elapsed_ms: start.elapsed().as_millis() as u64,
                        polls,
                        zombies,
                        remaining,
                        errors,
                    };
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if !errors.contains(&msg) {
                    errors.push(msg);
                }
                if start.elapsed() >= opts.timeout {
                    let remaining = targets
                        .iter()
                        .map(|t| Remaining {
                            user: t.account.display_name(),
                            sessions: t.user.sessions.iter().map(|s| s.id.clone()).collect(),
                            pids: t.user.pids.clone(),
                            uninterruptible: Vec::new(),
                        })
                        .collect::<Vec<_>>();
                    for r in &remaining {
                        log(Event::StillPresent {
                            user: r.user.clone(),
                            sessions: r.sessions.clone(),
                            pids: r.pids.clone(),
                            uninterruptible: Vec::new(),
                        });
                    }
                    return Verification {
                        verified: false,
                        timed_out: true,
                        elapsed_ms: start.elapsed().as_millis() as u64,
                        polls,
                        zombies: 0,
                        remaining,
                        errors,
                    };
                }
            }
        }
        let left = opts.timeout.saturating_sub(start.elapsed());
        std::thread::sleep(wait.min(left).max(Duration::from_millis(1)));
        wait = (wait * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Policy;
    use crate::backend::fake::{Fake, FakeState};
    use crate::model::SessionState;
    use crate::plan::{PlanOptions, plan};
    use crate::userlist::parse_targets;

    fn s(id: &str, user: &str, domain: &str) -> Session {
        Session {
            domain: Some(domain.into()),
            station: Some(format!("RDP-Tcp#{id}")),
            ..Session::new(id, user, SessionState::Active)
        }
    }

    fn p(pid: u32, user: &str, domain: &str, session: &str) -> Process {
        Process {
            user: Some(user.into()),
            domain: Some(domain.into()),
            session_id: Some(session.into()),
            ..Process::new(pid, "app.exe")
        }
    }

    fn machine() -> FakeState {
        FakeState {
            policy: Policy {
                sweep_after_logoff: false,
                uid_min: None,
                local_domain: Some("PC1".into()),
                ..Policy::default()
            },
            current_session: Some("1".into()),
            sessions: vec![
                s("1", "admin", "PC1"),
                s("2", "alice", "CORP"),
                s("3", "alice", "CORP"),
                s("4", "bob", "CORP"),
            ],
            processes: vec![
                p(10, "admin", "PC1", "1"),
                p(20, "alice", "CORP", "2"),
                p(30, "alice", "CORP", "3"),
                p(40, "bob", "CORP", "4"),
                p(50, "carol", "CORP", "0"),
                p(51, "dave", "CORP", "7"),
            ],
            ..FakeState::default()
        }
    }

    fn opts() -> ExecOptions {
        ExecOptions {
            timeout: Duration::from_millis(300),
            grace: Duration::ZERO,
            poll: Duration::from_millis(5),
            include_services: false,
            disconnect: false,
        }
    }

    fn run(state: FakeState, users: &str) -> (Execution, Fake, Vec<String>) {
        let mut fake = Fake::in_memory(state);
        let snap = snapshot(&mut fake).unwrap();
        let targets = parse_targets(&[users.to_string()]).unwrap();
        let plan = plan(&targets, &[], &snap, PlanOptions::default());
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        let mut lines = Vec::new();
        let exec = execute(&mut fake, &plan, &opts(), &mut |e| lines.push(e.to_string()));
        (exec, fake, lines)
    }

    #[test]
    fn two_sessions_are_logged_off_and_verified() {
        let (exec, fake, lines) = run(machine(), "alice");
        assert!(exec.verification.verified);
        assert_eq!(exec.users[0].outcome, UserOutcome::LoggedOff);
        let acted: Vec<_> = fake.state.actions.iter().map(|a| a.session.clone().unwrap()).collect();
        assert_eq!(acted, ["2", "3"]);
        assert!(fake.state.sessions.iter().any(|s| s.id == "4"), "bystander untouched");
        assert!(fake.state.processes.iter().any(|p| p.pid == 40));
        assert!(lines.iter().any(|l| l == "logging off session 2 (RDP-Tcp#2) of CORP\\alice"), "{lines:#?}");
        assert!(lines.iter().any(|l| l == "verified: CORP\\alice is logged off"), "{lines:#?}");
    }

    #[test]
    fn partial_failure_runs_every_action() {
        let mut st = machine();
        st.faults.logoff_fails.insert("2".into(), "Access is denied.".into());
        let (exec, fake, lines) = run(st, "alice,bob");
        assert_eq!(fake.state.actions.len(), 3, "every action ran after the failure");
        assert_eq!(exec.actions[0].result, ActionResult::Failed);
        assert!(exec.actions[0].error.as_deref().unwrap().contains("Access is denied."));
        assert_eq!(exec.users[0].outcome, UserOutcome::Failed);
        assert_eq!(exec.users[1].outcome, UserOutcome::LoggedOff);
        assert!(!exec.verification.verified);
        assert!(lines.iter().any(|l| l.starts_with("  FAILED: session 2 of CORP\\alice")), "{lines:#?}");
    }

    #[test]
    fn vanished_session_is_already_gone() {
        let mut st = machine();
        st.faults.vanish_before_logoff.push("4".into());
        let (exec, _, _) = run(st, "bob");
        assert_eq!(exec.actions[0].result, ActionResult::AlreadyGone);
        assert!(exec.verification.verified);
        assert_eq!(exec.users[0].outcome, UserOutcome::LoggedOff);
    }

    #[test]
    fn session_that_refuses_to_go_times_out() {
        let mut st = machine();
        st.faults.refuse_to_go.push("4".into());
        let started = Instant::now();
        let (exec, _, lines) = run(st, "bob");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(exec.verification.timed_out);
        assert_eq!(exec.verification.remaining[0].sessions, ["4"]);
        assert_eq!(exec.users[0].outcome, UserOutcome::Failed);
        assert!(exec.verification.polls > 1);
        assert!(lines.iter().any(|l| l.starts_with("STILL PRESENT after the timeout: CORP\\bob")), "{lines:#?}");
    }

    #[test]
    fn fallback_terminates_a_user_without_session() {
        let (exec, fake, lines) = run(machine(), "dave");
        assert_eq!(exec.actions[0].action, "terminate_processes");
        assert_eq!(exec.actions[0].signalled, Some(1));
        assert!(!fake.state.processes.iter().any(|p| p.pid == 51));
        assert!(exec.verification.verified);
        assert!(lines.iter().any(|l| l.contains("no session; fallback")), "{lines:#?}");
    }

    #[test]
    fn surviving_process_fails_verification() {
        let mut st = machine();
        st.faults.survivors.push(51);
        let (exec, _, _) = run(st, "dave");
        assert!(!exec.verification.verified);
        assert_eq!(exec.verification.remaining[0].pids, [51]);
    }

    #[test]
    fn zombies_count_as_gone() {
        let mut st = machine();
        st.faults.survivors.push(51);
        st.processes.iter_mut().find(|p| p.pid == 51).unwrap().zombie = true;
        st.processes.push(p(52, "dave", "CORP", "7"));
        let (exec, _, _) = run(st, "dave");
        assert!(exec.verification.verified);
        assert_eq!(exec.verification.zombies, 1);
    }

    #[test]
    fn user_not_logged_on_is_done_without_actions() {
        let (exec, fake, lines) = run(machine(), "nosuch");
        assert!(fake.state.actions.is_empty());
        assert_eq!(exec.users[0].outcome, UserOutcome::NotLoggedOn);
        assert_eq!(lines, ["user nosuch: not logged on, nothing to do"]);
    }

    #[test]
    fn reminders_come_more_often_as_the_end_nears() {
        let secs = |g: u64| reminder_points(Duration::from_secs(g)).iter().map(Duration::as_secs).collect::<Vec<_>>();
        assert_eq!(secs(20), Vec::<u64>::new());
        assert_eq!(secs(90), [60, 30]);
        assert_eq!(secs(300), [120, 60, 30]);
        assert_eq!(secs(5400), [3600, 1800, 900, 600, 300, 120, 60, 30]);
    }

    #[test]
    fn grace_wait_counts_down_reminds_and_can_be_cancelled() {
        use std::sync::atomic::AtomicBool;
        let cancel = AtomicBool::new(false);
        let mut reminded = Vec::new();
        let mut lines = Vec::new();
        let started = Instant::now();
        let points = [Duration::from_millis(200)];
        let done = wait_grace(
            Duration::from_millis(400),
            &points,
            &cancel,
            &mut |left| reminded.push((left, started.elapsed())),
            &mut |e| lines.push(e.to_string()),
        );
        assert!(done);
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(reminded.len(), 1);
        assert!(reminded[0].1 >= Duration::from_millis(190), "reminded at {:?}", reminded[0].1);
        assert_eq!(
            lines,
            [
                "countdown: 400ms left (Ctrl-C or SIGTERM cancels)",
                "countdown: 200ms left; reminder sent",
                "grace period over: acting now"
            ]
        );

        let cancel = AtomicBool::new(true);
        let mut lines = Vec::new();
        let started = Instant::now();
        let done = wait_grace(Duration::from_secs(60), &[], &cancel, &mut |_| {}, &mut |e| lines.push(e.to_string()));
        assert!(!done);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(lines.last().unwrap(), "cancelled during the grace period: no one was logged off");
    }

    #[test]
    fn disconnect_mode_verifies_the_disconnected_state() {
        let mut st = machine();
        st.policy.can_disconnect = true;
        let mut fake = Fake::in_memory(st);
        let snap = snapshot(&mut fake).unwrap();
        let targets = parse_targets(&["alice".to_string()]).unwrap();
        let plan = plan(&targets, &[], &snap, PlanOptions { disconnect: true, ..PlanOptions::default() });
        let o = ExecOptions { disconnect: true, ..opts() };
        let exec = execute(&mut fake, &plan, &o, &mut |_| {});
        assert!(exec.verification.verified, "{:?}", exec.verification);
        assert_eq!(exec.users[0].outcome, UserOutcome::Disconnected);
        assert_eq!(exec.actions.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["disconnect_session"; 2]);
        let states: Vec<_> = fake.state.sessions.iter().filter(|s| s.user == "alice").map(|s| s.state).collect();
        assert_eq!(states, [SessionState::Disconnected; 2]);
        assert!(fake.state.processes.iter().any(|p| p.pid == 20), "processes are kept");
    }

    #[test]
    fn all_spares_the_tools_session() {
        let (exec, fake, _) = run(machine(), "ALL");
        assert!(exec.verification.verified);
        let acted: Vec<_> = fake.state.actions.iter().map(|a| a.session.clone().unwrap()).collect();
        assert_eq!(acted, ["2", "3", "4"]);
        assert!(fake.state.sessions.iter().any(|s| s.id == "1"));
    }
}
