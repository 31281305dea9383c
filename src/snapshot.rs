//! The snapshot phase: what a backend lists of a machine before anything is done, and the
//! [`Identities`] learned from it, once, for the rest of the run.
//!
//! Not here: deciding anything about what was listed (that is the planner's job).

use crate::backend::{Backend, Policy, Sparing};
use crate::error::Result;
use crate::identity::{Account, Identities, same_account};
use crate::model::{Process, Session};

/// What a backend listed: the input of the planner.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The user sessions.
    pub sessions: Vec<Session>,
    /// The processes.
    pub processes: Vec<Process>,
    /// The session the tool runs in.
    pub current_session: Option<String>,
    /// The tool's pid and its ancestors.
    pub own_pids: Vec<u32>,
    /// The platform's rules.
    pub policy: Policy,
    /// The uids of the accounts that linger (logind): their processes outside their
    /// sessions are kept.
    pub lingering: Vec<u32>,
    identities: Identities,
}

impl Snapshot {
    /// A snapshot of these listings; learns their identities.
    pub fn new(
        sessions: Vec<Session>,
        processes: Vec<Process>,
        current_session: Option<String>,
        own_pids: Vec<u32>,
        policy: Policy,
    ) -> Snapshot {
        let identities = Identities::learn(&sessions, &processes);
        Snapshot { sessions, processes, current_session, own_pids, policy, lingering: Vec::new(), identities }
    }

    /// Lists what the planner needs from a backend: sessions, processes, the tool's own
    /// session and pids, the lingering accounts, and the platform's rules.
    ///
    /// # Errors
    ///
    /// Fails when sessions, processes or lingering accounts cannot be listed (not knowing
    /// who lingers could end a lingering user's services). Not knowing the tool's own
    /// session is no reason to stop: the own pids still protect it.
    pub fn take(backend: &mut dyn Backend) -> Result<Snapshot> {
        let sessions = backend.list_sessions()?;
        let processes = backend.list_processes()?;
        let current = backend.current_session().unwrap_or(None);
        let lingering = backend.lingering_uids()?;
        Ok(Snapshot::new(sessions, processes, current, backend.own_pids(), backend.policy()).with_lingering(lingering))
    }

    /// This snapshot with `own` as the tool's own session, while that session id is still
    /// listed for the same account (an id can be reused by the next logon); else as taken.
    pub fn with_own_session(mut self, own: Option<&Session>) -> Snapshot {
        if let Some(own) = own {
            if self.sessions.iter().any(|s| s.id == own.id && same_account(s, own)) {
                self.current_session = Some(own.id.clone());
            }
        }
        self
    }

    /// This snapshot with `uids` as the lingering accounts.
    pub fn with_lingering(mut self, uids: Vec<u32>) -> Snapshot {
        self.lingering = uids;
        self
    }

    /// Whether `account` lingers.
    pub fn lingers(&self, account: &Account) -> bool {
        account.id.uid().is_some_and(|u| self.lingering.contains(&u))
    }

    /// Who is who in this snapshot.
    pub fn identities(&self) -> &Identities {
        &self.identities
    }

    /// The account a session belongs to.
    pub fn account_of(&self, s: &Session) -> Account {
        self.identities.session_account(s)
    }

    /// What a termination on this machine leaves alone.
    pub fn sparing(&self, include_services: bool) -> Sparing {
        Sparing::of_run(&self.policy, &self.own_pids, self.current_session.as_deref(), include_services)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionState;

    fn session(id: &str, user: &str, uid: u32) -> Session {
        Session { uid: Some(uid), ..Session::new(id, user, SessionState::Active) }
    }

    fn snapshot(sessions: Vec<Session>, current: Option<&str>) -> Snapshot {
        Snapshot::new(sessions, Vec::new(), current.map(str::to_string), Vec::new(), Policy::default())
    }

    /// A job's runner takes its caller's session as its own while that id is the caller's.
    #[test]
    fn the_callers_session_is_the_own_session_while_it_is_the_callers() {
        let admin = session("54", "admin", 1000);
        let snap = snapshot(vec![admin.clone(), session("60", "bob", 1001)], None).with_own_session(Some(&admin));
        assert_eq!(snap.current_session.as_deref(), Some("54"));
        // The id now names bob's session (reused): not the caller's any more.
        let snap = snapshot(vec![session("54", "bob", 1001)], Some("7")).with_own_session(Some(&admin));
        assert_eq!(snap.current_session.as_deref(), Some("7"));
        // The caller logged out.
        let snap = snapshot(vec![session("60", "bob", 1001)], None).with_own_session(Some(&admin));
        assert_eq!(snap.current_session, None);
        // No caller: as taken.
        let snap = snapshot(vec![admin.clone()], Some("7")).with_own_session(None);
        assert_eq!(snap.current_session.as_deref(), Some("7"));
    }
}
