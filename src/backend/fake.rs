//! The fake backend: a machine described by a JSON state file, chosen with the hidden
//! `--fake-state FILE` flag.
//!
//! It simulates the effects of what it is asked to do (a logged-off session and its
//! processes disappear; terminated processes disappear), records every request in the
//! file's `actions` array, and writes the file back after each change, so that a second run
//! sees the machine as the first one left it. `faults` injects failures: a logoff that
//! fails, a session that refuses to go, one that vanishes before it is acted on, processes
//! that survive, a host that cannot be reached, a token without privilege.
//!
//! It never touches the real machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ActionKind, Backend, Done, Method, Policy, TerminateOptions, Terminated};
use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Account, Identities, same_account};
use crate::model::{Process, Session};

/// Failures the fake injects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The token has no privilege to act: `check_privilege` fails.
    pub unprivileged: bool,
    /// Opening the host fails with this message (an unreachable server).
    pub unreachable: Option<String>,
    /// Listing sessions fails with this message.
    pub list_fails: Option<String>,
    /// Session id → the error text its logoff fails with.
    pub logoff_fails: BTreeMap<String, String>,
    /// Session ids that accept a logoff but never go away.
    pub refuse_to_go: Vec<String>,
    /// Session ids that vanish between listing and acting: their logoff finds them gone.
    pub vanish_before_logoff: Vec<String>,
    /// Account name → the error text its process termination fails with.
    pub terminate_fails: BTreeMap<String, String>,
    /// Pids that survive termination.
    pub survivors: Vec<u32>,
    /// Processes that appear right after a termination of their owner: a fork that raced
    /// it, which verification must still find.
    pub appear_after_terminate: Vec<Process>,
}

/// One request the fake was asked to carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeAction {
    /// What was asked.
    pub action: ActionKind,
    /// The session acted on, if any.
    #[serde(default)]
    pub session: Option<String>,
    /// The account acted on.
    pub user: String,
    /// The message text, for `send_message`.
    #[serde(default)]
    pub text: Option<String>,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeState {
    /// The host name to report.
    pub host: Option<String>,
    /// The platform rules.
    pub policy: Policy,
    /// The session the tool runs in.
    pub current_session: Option<String>,
    /// The tool's own pid and its ancestors, as the fake machine sees them.
    pub own_pids: Vec<u32>,
    /// The sessions on the machine.
    pub sessions: Vec<Session>,
    /// The processes on the machine.
    pub processes: Vec<Process>,
    /// Injected failures.
    pub faults: Faults,
    /// Every request, in order; the fake appends to it.
    pub actions: Vec<FakeAction>,
}

/// A backend over a [`FakeState`] file.
#[derive(Debug)]
pub struct Fake {
    path: Option<PathBuf>,
    /// The current state.
    pub state: FakeState,
}

impl Fake {
    /// Loads the state file at `path`; every change is written back to it.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or is not a valid state, or when the state says
    /// the host is unreachable.
    pub fn open(path: &Path) -> Result<Fake> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::from_io(format!("read fake state {}", path.display()), &e))?;
        let state: FakeState = serde_json::from_str(&text).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("parse fake state {}", path.display()), e.to_string())
        })?;
        if let Some(msg) = &state.faults.unreachable {
            let host = state.host.clone().unwrap_or_else(|| "localhost".into());
            return Err(Error::new(ErrorKind::Unreachable, format!("open server {host}"), msg.clone()));
        }
        Ok(Fake { path: Some(path.to_path_buf()), state })
    }

    /// A fake over an in-memory state that is never written anywhere.
    pub fn in_memory(state: FakeState) -> Fake {
        Fake { path: None, state }
    }

    fn record(&mut self, action: ActionKind, session: Option<&str>, user: String, text: Option<&str>) -> Result<()> {
        self.state.actions.push(FakeAction {
            action,
            session: session.map(str::to_string),
            user,
            text: text.map(str::to_string),
        });
        self.save()
    }

    /// Removes a session and its processes, but for the injected survivors.
    fn end_session(&mut self, id: &str) -> Result<()> {
        let survivors = self.state.faults.survivors.clone();
        self.state.sessions.retain(|s| s.id != id);
        self.state.processes.retain(|p| p.session_id.as_deref() != Some(id) || survivors.contains(&p.pid));
        self.save()
    }

    fn save(&self) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let text = serde_json::to_string_pretty(&self.state).expect("fake state serializes");
        std::fs::write(path, text).map_err(|e| Error::from_io(format!("write fake state {}", path.display()), &e))
    }
}

impl Backend for Fake {
    fn name(&self) -> &str {
        "fake"
    }

    fn host(&self) -> String {
        self.state.host.clone().unwrap_or_else(|| "localhost".to_string())
    }

    fn policy(&self) -> Policy {
        self.state.policy.clone()
    }

    fn check_privilege(&mut self) -> Result<()> {
        if self.state.faults.unprivileged {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "log users off",
                "the fake token is not privileged; run as root or elevated",
            ));
        }
        Ok(())
    }

    fn list_sessions(&mut self) -> Result<Vec<Session>> {
        if let Some(msg) = &self.state.faults.list_fails {
            return Err(Error::new(ErrorKind::Os, "list sessions", msg.clone()));
        }
        Ok(self.state.sessions.clone())
    }

    fn list_processes(&mut self) -> Result<Vec<Process>> {
        Ok(self.state.processes.clone())
    }

    fn current_session(&mut self) -> Result<Option<String>> {
        Ok(self.state.current_session.clone())
    }

    fn own_pids(&mut self) -> Vec<u32> {
        let mut pids = self.state.own_pids.clone();
        pids.push(std::process::id());
        pids
    }

    fn logoff_session(&mut self, session: &Session) -> Result<Done> {
        let who = session.display_name();
        self.record(ActionKind::LogoffSession, Some(&session.id), who.clone(), None)?;
        let faults = &self.state.faults;
        if let Some(msg) = faults.logoff_fails.get(&session.id) {
            return Err(Error::new(ErrorKind::Os, format!("log off session {} of {who}", session.id), msg.clone()));
        }
        // A session that vanished between listing and acting: the user logged out.
        let vanished = faults.vanish_before_logoff.contains(&session.id);
        if vanished || !self.state.sessions.iter().any(|s| s.id == session.id && same_account(s, session)) {
            self.end_session(&session.id)?;
            return Ok(Done::AlreadyGone);
        }
        if !faults.refuse_to_go.contains(&session.id) {
            self.end_session(&session.id)?;
        }
        Ok(Done::Requested)
    }

    fn disconnect_session(&mut self, session: &Session) -> Result<Done> {
        let who = session.display_name();
        self.record(ActionKind::DisconnectSession, Some(&session.id), who.clone(), None)?;
        if !self.state.policy.can_disconnect {
            return Err(Error::unsupported(format!("disconnect session {} of {who}", session.id), "not on this fake"));
        }
        let refuses = self.state.faults.refuse_to_go.contains(&session.id);
        let Some(s) = self.state.sessions.iter_mut().find(|s| s.id == session.id && same_account(s, session)) else {
            return Ok(Done::AlreadyGone);
        };
        if !refuses {
            s.state = crate::model::SessionState::Disconnected;
        }
        self.save()?;
        Ok(Done::Requested)
    }

    fn terminate_processes(&mut self, owner: &Account, opts: &TerminateOptions) -> Result<Terminated> {
        let who = owner.display_name();
        self.record(ActionKind::TerminateProcesses, None, who.clone(), None)?;
        if let Some(msg) = self.state.faults.terminate_fails.get(&owner.user) {
            return Err(Error::new(ErrorKind::Os, format!("terminate the processes of {who}"), msg.clone()));
        }
        let survivors = self.state.faults.survivors.clone();
        let ids = Identities::learn(&self.state.sessions, &self.state.processes);
        let before = self.state.processes.len();
        self.state.processes.retain(|p| !ids.owns(&owner.id, p) || survivors.contains(&p.pid) || opts.spare.spares(p));
        let signalled = (before - self.state.processes.len()) as u64;
        let (late, rest): (Vec<Process>, Vec<Process>) =
            self.state.faults.appear_after_terminate.drain(..).partition(|p| ids.owns(&owner.id, p));
        self.state.faults.appear_after_terminate = rest;
        self.state.processes.extend(late);
        self.save()?;
        Ok(Terminated { signalled, method: Method::Fake, remaining: 0, zombies: 0 })
    }

    fn send_message(&mut self, session: &Session, _title: &str, text: &str) -> Result<()> {
        let who = session.display_name();
        self.record(ActionKind::SendMessage, Some(&session.id), who, Some(text))
    }
}
