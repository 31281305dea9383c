//! A job's runner runs in no session (a systemd service, a daemon, a Windows service): a
//! run of ALL from there would take the session of whoever scheduled it, which the
//! scheduling run itself spared. [`AsCaller`] hands the planner the caller's session as
//! the tool's own, as long as that session id still belongs to the same account (an id can
//! be reused by the next logon); everything else goes to the real backend unchanged.

use crate::backend::{Backend, Done, Policy, TerminateOptions, TerminateTarget, Terminated};
use crate::drain::{DrainReport, DrainRequest, DrainStatus};
use crate::error::Result;
use crate::identity::{Account, AccountId, same_account};
use crate::model::{Process, Session};
use crate::profile::ProfileState;

use super::job::CallerSession;

/// A backend whose "own session" is the caller's.
pub(crate) struct AsCaller {
    inner: Box<dyn Backend>,
    caller: Session,
}

impl AsCaller {
    /// Wraps `inner`, whose own session is to be `caller`'s.
    pub(crate) fn wrap(inner: Box<dyn Backend>, caller: &CallerSession) -> Box<dyn Backend> {
        Box::new(AsCaller { inner, caller: caller.session() })
    }
}

impl Backend for AsCaller {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn host(&self) -> String {
        self.inner.host()
    }
    fn policy(&self) -> Policy {
        self.inner.policy()
    }
    fn check_privilege(&mut self) -> Result<()> {
        self.inner.check_privilege()
    }
    fn list_sessions(&mut self) -> Result<Vec<Session>> {
        self.inner.list_sessions()
    }
    fn list_processes(&mut self) -> Result<Vec<Process>> {
        self.inner.list_processes()
    }
    fn find_sessions(&mut self, planned: &[&Session]) -> Result<Vec<Session>> {
        self.inner.find_sessions(planned)
    }
    fn find_processes(&mut self, accounts: &[&AccountId]) -> Result<Vec<Process>> {
        self.inner.find_processes(accounts)
    }
    /// The caller's session while it is still the caller's account's; else the runner's own.
    fn current_session(&mut self) -> Result<Option<String>> {
        let still_there = self
            .inner
            .list_sessions()
            .map(|all| all.iter().any(|s| s.id == self.caller.id && same_account(s, &self.caller)))
            .unwrap_or(false);
        if still_there { Ok(Some(self.caller.id.clone())) } else { self.inner.current_session() }
    }
    fn own_pids(&mut self) -> Vec<u32> {
        self.inner.own_pids()
    }
    fn logoff_session(&mut self, session: &Session) -> Result<Done> {
        self.inner.logoff_session(session)
    }
    fn disconnect_session(&mut self, session: &Session) -> Result<Done> {
        self.inner.disconnect_session(session)
    }
    fn logoff_all(&mut self, users: &[(&Account, Vec<&Session>)]) -> Vec<Vec<Result<Done>>> {
        self.inner.logoff_all(users)
    }
    fn repair(&mut self, accounts: &[&Account]) -> Vec<String> {
        self.inner.repair(accounts)
    }
    fn terminate_processes(&mut self, owner: &Account, opts: &TerminateOptions) -> Result<Terminated> {
        self.inner.terminate_processes(owner, opts)
    }
    fn terminate_all(&mut self, targets: &[TerminateTarget], opts: &TerminateOptions) -> Vec<Result<Terminated>> {
        self.inner.terminate_all(targets, opts)
    }
    fn send_message(&mut self, session: &Session, title: &str, text: &str) -> Result<()> {
        self.inner.send_message(session, title, text)
    }
    fn lingering_uids(&mut self) -> Result<Vec<u32>> {
        self.inner.lingering_uids()
    }
    fn drain_status(&mut self) -> Result<DrainStatus> {
        self.inner.drain_status()
    }
    fn drain(&mut self, request: &DrainRequest) -> Result<DrainReport> {
        self.inner.drain(request)
    }
    fn undrain(&mut self) -> Result<DrainReport> {
        self.inner.undrain()
    }
    fn profile_state(&mut self, account: &Account) -> Result<Option<(String, ProfileState)>> {
        self.inner.profile_state(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::{Fake, FakeState};
    use crate::model::SessionState;

    fn fake(sessions: Vec<Session>, current: Option<&str>) -> Box<dyn Backend> {
        let state = FakeState { sessions, current_session: current.map(str::to_string), ..FakeState::default() };
        Box::new(Fake::in_memory(state))
    }

    fn session(id: &str, user: &str, uid: u32) -> Session {
        Session { uid: Some(uid), ..Session::new(id, user, SessionState::Active) }
    }

    #[test]
    fn the_callers_session_is_the_own_session_while_it_is_the_callers() {
        let admin = session("54", "admin", 1000);
        let caller = CallerSession::of("localhost", &admin);
        let mut b = AsCaller::wrap(fake(vec![admin.clone(), session("60", "bob", 1001)], None), &caller);
        assert_eq!(b.current_session().unwrap().as_deref(), Some("54"));
        // The id now names bob's session (reused): not the caller's any more.
        let mut b = AsCaller::wrap(fake(vec![session("54", "bob", 1001)], Some("7")), &caller);
        assert_eq!(b.current_session().unwrap().as_deref(), Some("7"));
        // The caller logged out.
        let mut b = AsCaller::wrap(fake(vec![session("60", "bob", 1001)], None), &caller);
        assert_eq!(b.current_session().unwrap(), None);
    }

    /// Everything but the own session is the real backend's: lingering accounts (which
    /// `--orphans` spares), the drain, the profiles. A method the wrapper forgot would
    /// answer with the trait's default (none lingering, no drain, profiles not checked).
    #[test]
    fn everything_else_is_the_real_backends() {
        let admin = session("54", "admin", 1000);
        let caller = CallerSession::of("localhost", &admin);
        let state = FakeState {
            sessions: vec![admin],
            lingering: vec![1003],
            drain: Some(crate::backend::fake::FakeDrain::default()),
            profiles: Some([("bob".to_string(), u32::MAX)].into_iter().collect()),
            ..FakeState::default()
        };
        let mut b = AsCaller::wrap(Box::new(Fake::in_memory(state)), &caller);
        assert_eq!(b.lingering_uids().unwrap(), [1003]);
        assert!(!b.drain_status().unwrap().draining);
        let request = DrainRequest { text: "maintenance".into(), by: "root".into(), at: 1_800_000_000 };
        assert!(b.drain(&request).unwrap().status.draining);
        assert!(b.drain_status().unwrap().ours.is_some());
        assert!(!b.undrain().unwrap().status.draining);
        let bob = Account::by_name("bob", None);
        assert!(b.profile_state(&bob).unwrap().is_some_and(|(_, p)| p.hive_loaded));
    }
}
