//! The execute phase on one host: every action of a [`Plan`] against a [`Backend`], even
//! when one fails; then the verify phase, and the outcome per user.
//!
//! The users are handled side by side, not one after the other: every user's sessions are
//! asked to end first (logind's `TerminateSession` and `WTSLogoffSession`
//! return at once), then every targeted account's processes are terminated in ONE call with
//! ONE grace period ([`Backend::terminate_all`]), then one verification covers everyone. A
//! run over thirty users costs about one grace period, not thirty.
//!
//! One deadline bounds the whole phase: a process that cannot die (uninterruptible sleep)
//! must not make the termination and then the verification each wait a full timeout.

use std::time::{Duration, Instant};

use super::profile::check_profiles;
use super::verify::{VerifyOptions, verify};
use crate::backend::{Backend, Done, Sparing, TerminateOptions, TerminateTarget};
use crate::error::{ErrorKind, Result};
use crate::event::Event;
use crate::identity::{Account, AccountId};
use crate::plan::{Plan, UserPlan, UserStatus};
use crate::report::{ActionKind, ActionRecord, ActionResult, UserOutcome, UserResult, Verification};
use crate::snapshot::Snapshot;

/// Options for carrying out a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecOptions {
    /// How long actions and verification may take together.
    pub timeout: Duration,
    /// The wait between the polite and the forceful signal.
    pub grace: Duration,
    /// The first wait between two verification polls (see `VerifyOptions::poll`).
    pub poll: Duration,
    /// Include services-session processes.
    pub include_services: bool,
    /// Disconnect sessions instead of logging them off; a session then counts as done
    /// when it is disconnected (or gone).
    pub disconnect: bool,
    /// How long to wait for the profiles to unload after verification; `None`: until the
    /// run's deadline.
    pub wait_profile: Option<Duration>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            timeout: Duration::from_secs(30),
            grace: Duration::from_secs(5),
            poll: Duration::from_millis(5),
            include_services: false,
            disconnect: false,
            wait_profile: None,
        }
    }
}

/// What carrying out a plan produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Execution {
    /// Every action, in order.
    pub actions: Vec<ActionRecord>,
    /// The verification.
    pub verification: Verification,
    /// The outcome per user, in plan order.
    pub users: Vec<UserResult>,
}

/// Records how an action ended: `Ok(already_gone)`, or an error, where a `NotFound` error
/// also means "already gone". Returns `false` when the action failed.
fn settle(rec: &mut ActionRecord, done: Result<bool>) -> bool {
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

/// The actions on one host, in plan order.
struct Acting<'a> {
    backend: &'a mut dyn Backend,
    opts: &'a ExecOptions,
    sparing: Sparing,
    deadline: Instant,
    actions: Vec<ActionRecord>,
}

impl Acting<'_> {
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn record(&mut self, rec: ActionRecord, log: &mut dyn FnMut(Event)) {
        log(Event::Action(rec.clone()));
        self.actions.push(rec);
    }

    /// Every user's sessions, all requested before any user's lines are printed (a backend
    /// may keep several requests in flight); then, user by user, the header, the notes and
    /// one line per session with its result. Marks each user whose action failed.
    fn logoff(&mut self, plan: &Plan, failed: &mut [bool], log: &mut dyn FnMut(Event)) {
        let users: Vec<(&Account, Vec<&crate::model::Session>)> =
            plan.users.iter().filter_map(|up| Some((up.account.as_ref()?, up.sessions.iter().collect()))).collect();
        let mut results = if self.opts.disconnect {
            let mut each =
                |ss: &Vec<&crate::model::Session>| ss.iter().map(|s| self.backend.disconnect_session(s)).collect();
            users.iter().map(|(_, ss)| each(ss)).collect::<Vec<Vec<Result<Done>>>>()
        } else {
            self.backend.logoff_all(&users)
        }
        .into_iter();
        let kind = if self.opts.disconnect { ActionKind::DisconnectSession } else { ActionKind::LogoffSession };
        for (i, up) in plan.users.iter().enumerate() {
            let Some(account) = &up.account else {
                log(Event::NotLoggedOn { requested: up.requested.to_string() });
                continue;
            };
            let who = account.display_name();
            log(Event::User {
                requested: up.requested.to_string(),
                user: who.clone(),
                sessions: up.sessions.len(),
                processes: up.pids.len(),
                all: !matches!(up.requested, crate::userlist::Requested::Name(_)),
            });
            for note in &up.notes {
                log(Event::Note { user: who.clone(), note: note.clone() });
            }
            let results = results.next().expect("one result list per user");
            for (s, result) in up.sessions.iter().zip(results) {
                if self.opts.disconnect {
                    log(Event::Disconnecting { user: who.clone(), session_id: s.id.clone() });
                } else {
                    log(Event::LoggingOff { user: who.clone(), session_id: s.id.clone(), station: s.station.clone() });
                }
                let mut rec = ActionRecord::new(kind, &who, Some(&s.id));
                failed[i] |= !settle(&mut rec, result.map(|d| d == Done::AlreadyGone));
                self.record(rec, log);
            }
        }
    }

    /// One termination for every user whose processes are terminated, with one grace
    /// period; marks each user whose termination failed.
    fn terminate(&mut self, plan: &Plan, failed: &mut [bool], log: &mut dyn FnMut(Event)) {
        let due: Vec<(usize, &UserPlan, &Account)> = plan
            .users
            .iter()
            .enumerate()
            .filter_map(|(i, up)| Some((i, up, up.account.as_ref().filter(|_| up.terminate.is_some())?)))
            .collect();
        if due.is_empty() {
            return;
        }
        for (_, up, account) in &due {
            let reason = up.terminate.expect("due users terminate");
            log(Event::Terminating { user: account.display_name(), reason, processes: up.pids.len() });
        }
        let targets: Vec<TerminateTarget> =
            due.iter().map(|(_, up, account)| TerminateTarget { account, listed_pids: &up.pids }).collect();
        let topts = TerminateOptions {
            grace: self.opts.grace.min(self.left()),
            timeout: self.left(),
            spare: self.sparing.clone(),
        };
        let results = self.backend.terminate_all(&targets, &topts);
        for ((i, up, account), result) in due.iter().zip(results) {
            let mut rec = ActionRecord::new(ActionKind::TerminateProcesses, &account.display_name(), None);
            rec.reason = up.terminate;
            let done = result.map(|t| {
                rec.signalled = Some(t.signalled);
                rec.method = Some(t.method);
                false
            });
            failed[*i] |= !settle(&mut rec, done);
            self.record(rec, log);
        }
    }
}

/// Carries out `plan` on `backend`, reporting each event to `log` as it happens, then
/// verifies. Every action runs, even after a failure.
pub(crate) fn execute(
    backend: &mut dyn Backend,
    snap: &Snapshot,
    plan: &Plan,
    opts: &ExecOptions,
    log: &mut dyn FnMut(Event),
) -> Execution {
    let deadline = Instant::now() + opts.timeout;
    let sparing = snap.sparing(opts.include_services);
    for skip in &plan.skipped {
        log(Event::Skipped {
            session_id: skip.session_id.clone(),
            user: skip.user.clone(),
            reason: skip.reason.clone(),
        });
    }
    for spared in &plan.spared {
        log(Event::Spared { user: spared.user.clone(), reason: spared.reason.clone() });
    }
    let accounts: Vec<&Account> = plan.users.iter().filter_map(|u| u.account.as_ref()).collect();
    for line in backend.repair(&accounts) {
        log(Event::Repaired(line));
    }
    let mut acting = Acting { backend, opts, sparing: sparing.clone(), deadline, actions: Vec::new() };
    let mut failed = vec![false; plan.users.len()];
    acting.logoff(plan, &mut failed, log);
    acting.terminate(plan, &mut failed, log);
    let actions = acting.actions;
    let vopts = VerifyOptions {
        timeout: deadline.saturating_duration_since(Instant::now()),
        poll: opts.poll,
        disconnect: opts.disconnect,
        sparing,
    };
    let verified = verify(backend, snap, plan, &vopts, log);
    let mut users = outcomes(plan, &failed, &verified.remaining, opts.disconnect);
    let until = opts.wait_profile.map_or(deadline, |wait| Instant::now() + wait);
    check_profiles(backend, plan, &mut users, until, log);
    Execution { actions, verification: verified.report, users }
}

/// The outcome of each user of `plan`, in plan order.
fn outcomes(plan: &Plan, failed: &[bool], remaining: &[AccountId], disconnect: bool) -> Vec<UserResult> {
    plan.users
        .iter()
        .zip(failed)
        .map(|(up, failed)| {
            let outcome = match up.status {
                UserStatus::NotLoggedOn => UserOutcome::NotLoggedOn,
                // Every session of the user was left out by a session filter.
                UserStatus::LoggedOn if up.sessions.is_empty() => UserOutcome::LeftAlone,
                // Processes but no session, left alone by --no-process-fallback.
                UserStatus::ProcessesOnly if up.terminate.is_none() => UserOutcome::NotLoggedOn,
                _ if *failed => UserOutcome::Failed,
                _ if up.account.as_ref().is_some_and(|a| remaining.contains(&a.id)) => UserOutcome::Failed,
                _ if disconnect => UserOutcome::Disconnected,
                _ => UserOutcome::LoggedOff,
            };
            UserResult {
                requested: up.requested.to_string(),
                user: up.account.as_ref().map(Account::display_name),
                outcome,
                profile_unloaded: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Policy;
    use crate::backend::fake::{Fake, FakeState};
    use crate::model::SessionState;
    use crate::model::{Process, Session};
    use crate::plan::{PlanOptions, plan};
    use crate::userlist::Targets;
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
                services_session: Some("0".into()),
                spares_own_session: true,
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
            wait_profile: None,
        }
    }

    fn run(state: FakeState, users: &str) -> (Execution, Fake, Vec<String>) {
        let mut fake = Fake::in_memory(state);
        let snap = Snapshot::take(&mut fake).unwrap();
        let targets = parse_targets(&[users.to_string()]).unwrap();
        let plan = plan(&targets, &[], &snap, PlanOptions::default());
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        let mut lines = Vec::new();
        let exec = execute(&mut fake, &snap, &plan, &opts(), &mut |e| lines.push(e.to_string()));
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
    fn a_process_forked_during_the_run_is_still_found() {
        // Verification polls the account's processes, not the pids the plan listed.
        let mut st = machine();
        st.faults.appear_after_terminate.push(p(52, "dave", "CORP", "7"));
        let (exec, fake, lines) = run(st, "dave");
        assert!(fake.state.processes.iter().any(|p| p.pid == 52), "the fork is there");
        assert!(!exec.verification.verified);
        assert_eq!(exec.verification.remaining[0].pids, [52]);
        assert_eq!(exec.users[0].outcome, UserOutcome::Failed);
        assert!(lines.iter().any(|l| l.contains("STILL PRESENT after the timeout: CORP\\dave")), "{lines:#?}");
    }

    #[test]
    fn thirty_users_share_one_grace_period() {
        // Each of 30 users has one session and a process that ignores SIGTERM: their
        // logoffs are all requested first, then one termination covers all of them, so the
        // run takes about one grace period, not thirty.
        let grace = Duration::from_millis(300);
        let mut st =
            FakeState { policy: Policy { sweep_after_logoff: true, ..Policy::default() }, ..FakeState::default() };
        for i in 0..30u32 {
            let user = format!("u{i:02}");
            st.sessions
                .push(Session { uid: Some(2000 + i), ..Session::new(format!("s{i}"), &user, SessionState::Active) });
            // The session's processes go with the session; this one lives outside it.
            st.processes.push(Process { user: Some(user), uid: Some(2000 + i), ..Process::new(5000 + i, "editor") });
            st.faults.ignore_sigterm.push(5000 + i);
        }
        let mut fake = Fake::in_memory(st);
        let snap = Snapshot::take(&mut fake).unwrap();
        let plan = plan(&Targets::All, &[], &snap, PlanOptions::default());
        let o = ExecOptions { grace, timeout: Duration::from_secs(20), ..opts() };
        let started = Instant::now();
        let mut lines = Vec::new();
        let exec = execute(&mut fake, &snap, &plan, &o, &mut |e| lines.push(e.to_string()));
        let took = started.elapsed();
        assert!(exec.verification.verified, "{:?}", exec.verification);
        assert!(took >= grace, "the grace period was not waited: {took:?}");
        assert!(took < grace * 2, "the grace periods did not overlap: {took:?} for 30 users");
        assert_eq!(exec.users.len(), 30);
        assert!(exec.users.iter().all(|u| u.outcome == UserOutcome::LoggedOff));
        // Outcomes stay in plan order, one per user.
        let names: Vec<_> = exec.users.iter().map(|u| u.user.clone().unwrap()).collect();
        assert_eq!(names, (0..30).map(|i| format!("u{i:02}")).collect::<Vec<_>>());
        // Every logoff was asked for before any termination, and the terminations were
        // asked for together, not a grace period apart.
        let at = |kind: ActionKind| -> Vec<u64> {
            fake.state.actions.iter().filter(|a| a.action == kind).map(|a| a.at_ms).collect()
        };
        let (logoffs, terms) = (at(ActionKind::LogoffSession), at(ActionKind::TerminateProcesses));
        assert_eq!((logoffs.len(), terms.len()), (30, 30));
        assert!(logoffs.iter().max() <= terms.iter().min());
        assert!(terms.iter().max().unwrap() - terms.iter().min().unwrap() < 100, "{terms:?}");
        // One text line per event, none of them split or mixed.
        assert!(lines.iter().all(|l| !l.contains('\n')));
        assert_eq!(lines.iter().filter(|l| l.starts_with("verified: ")).count(), 30);
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
    fn disconnect_mode_verifies_the_disconnected_state() {
        let mut st = machine();
        st.policy.can_disconnect = true;
        let mut fake = Fake::in_memory(st);
        let snap = Snapshot::take(&mut fake).unwrap();
        let targets = parse_targets(&["alice".to_string()]).unwrap();
        let plan = plan(&targets, &[], &snap, PlanOptions { disconnect: true, ..PlanOptions::default() });
        let o = ExecOptions { disconnect: true, ..opts() };
        let exec = execute(&mut fake, &snap, &plan, &o, &mut |_| {});
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
