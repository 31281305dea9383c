//! The fake backend: a machine described by a JSON state file, chosen with the hidden
//! `--fake-state FILE` flag.
//!
//! It simulates the effects of what it is asked to do (a logged-off session and its
//! processes disappear; terminated processes disappear), records every request in the
//! file's `actions` array, and writes the file back after each change, so that a second run
//! sees the machine as the first one left it. `faults` injects failures: a logoff that
//! fails, a session that refuses to go, one that vanishes before it is acted on, processes
//! that survive, processes that ignore the polite signal (they go only after the grace
//! period, which the fake really waits), a host that cannot be reached, a token without
//! privilege, a drain that fails. It also keeps a logon drain (`drain`), lingering accounts
//! (`lingering`) and profiles that take some checks to unload (`profiles`). Every request is stamped with the milliseconds since the fake was opened, so
//! tests can show which requests overlapped in time.
//!
//! It never touches the real machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ActionKind, Backend, Done, Method, Policy, TerminateOptions, TerminateTarget, Terminated};
use crate::drain::{
    DrainAction, DrainDecision, DrainRecord, DrainReport, DrainRequest, DrainStatus, UndrainDecision, decide_drain,
    decide_undrain,
};
use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Account, Identities, same_account};
use crate::model::{Process, Session};
use crate::profile::ProfileState;

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
    /// Pids that ignore SIGTERM: a termination ends them only after its grace period.
    pub ignore_sigterm: Vec<u32>,
    /// A drain or undrain fails with this message.
    pub drain_fails: Option<String>,
}

/// The fake machine's logon drain: what refuses logons (a text standing for the OS's
/// mechanism), and this tool's record. `FakeState::drain` `None`: a machine that cannot
/// drain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeDrain {
    /// What refuses new logons now, if anything.
    pub in_force: Option<String>,
    /// This tool's record.
    pub record: Option<DrainRecord>,
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
    /// When it was asked, in milliseconds since the fake was opened.
    #[serde(default)]
    pub at_ms: u64,
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
    /// The lingering accounts' uids (logind).
    pub lingering: Vec<u32>,
    /// The logon drain, where the machine has one.
    pub drain: Option<FakeDrain>,
    /// Where profiles are checked (Windows): account name → how many more checks find its
    /// profile loaded (absent: unloaded; `4294967295`: never unloads). `None`: a machine
    /// without profiles to check (Linux).
    pub profiles: Option<BTreeMap<String, u32>>,
    /// Injected failures.
    pub faults: Faults,
    /// Every request, in order; the fake appends to it.
    pub actions: Vec<FakeAction>,
}

/// A backend over a [`FakeState`] file.
#[derive(Debug)]
pub struct Fake {
    path: Option<PathBuf>,
    opened: std::time::Instant,
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
        Ok(Fake { path: Some(path.to_path_buf()), opened: std::time::Instant::now(), state })
    }

    /// A fake over an in-memory state that is never written anywhere.
    pub fn in_memory(state: FakeState) -> Fake {
        Fake { path: None, opened: std::time::Instant::now(), state }
    }

    fn record(&mut self, action: ActionKind, session: Option<&str>, user: String, text: Option<&str>) -> Result<()> {
        self.state.actions.push(FakeAction {
            action,
            session: session.map(str::to_string),
            user,
            text: text.map(str::to_string),
            at_ms: self.opened.elapsed().as_millis() as u64,
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
        let target = TerminateTarget { account: owner, listed_pids: &[] };
        self.terminate_all(&[target], opts).pop().expect("one result per target")
    }

    /// Every target's processes go at once, but for those that ignore SIGTERM: when any
    /// target has one, the fake waits out the grace period once, for all of them, then
    /// ends those too.
    fn terminate_all(&mut self, targets: &[TerminateTarget], opts: &TerminateOptions) -> Vec<Result<Terminated>> {
        let ids = Identities::learn(&self.state.sessions, &self.state.processes);
        let mut results = Vec::new();
        let mut slow = Vec::new();
        for t in targets {
            let owner = t.account;
            let who = owner.display_name();
            let recorded = self.record(ActionKind::TerminateProcesses, None, who.clone(), None);
            if let Some(msg) = self.state.faults.terminate_fails.get(&owner.user) {
                let e = Error::new(ErrorKind::Os, format!("terminate the processes of {who}"), msg.clone());
                results.push(Err(e));
                continue;
            }
            let faults = &self.state.faults;
            let ends =
                |p: &Process| ids.owns(&owner.id, p) && !faults.survivors.contains(&p.pid) && !opts.spare.spares(p);
            let mine: Vec<u32> = self.state.processes.iter().filter(|p| ends(p)).map(|p| p.pid).collect();
            slow.extend(mine.iter().copied().filter(|p| faults.ignore_sigterm.contains(p)));
            self.state.processes.retain(|p| !mine.contains(&p.pid) || faults.ignore_sigterm.contains(&p.pid));
            let late: Vec<Process> = std::mem::take(&mut self.state.faults.appear_after_terminate);
            let (theirs, rest): (Vec<Process>, Vec<Process>) = late.into_iter().partition(|p| ids.owns(&owner.id, p));
            self.state.faults.appear_after_terminate = rest;
            self.state.processes.extend(theirs);
            results.push(recorded.map(|()| Terminated {
                signalled: mine.len() as u64,
                method: Method::Fake,
                remaining: 0,
                zombies: 0,
            }));
        }
        if !slow.is_empty() {
            // SIGTERM was ignored: they go with SIGKILL, after the one shared grace.
            std::thread::sleep(opts.grace.min(opts.timeout));
            self.state.processes.retain(|p| !slow.contains(&p.pid));
        }
        if let Err(e) = self.save() {
            return results.into_iter().map(|r| r.and(Err(e.clone()))).collect();
        }
        results
    }

    fn send_message(&mut self, session: &Session, _title: &str, text: &str) -> Result<()> {
        let who = session.display_name();
        self.record(ActionKind::SendMessage, Some(&session.id), who, Some(text))
    }

    fn lingering_uids(&mut self) -> Result<Vec<u32>> {
        Ok(self.state.lingering.clone())
    }

    fn drain_status(&mut self) -> Result<DrainStatus> {
        Ok(fake_drain_status(self.fake_drain("read the logon drain state")?))
    }

    /// Puts `fake drain by logoff-users` in force, the same decisions as the real ones.
    fn drain(&mut self, request: &DrainRequest) -> Result<DrainReport> {
        let d = self.fake_drain("stop new logons")?.clone();
        let status = fake_drain_status(&d);
        let report = match decide_drain(d.in_force.is_some(), status.ours.is_some()) {
            DrainDecision::KeepOurs => DrainReport::new(DrainAction::AlreadyOurs, status, "kept"),
            DrainDecision::LeaveTheirs => DrainReport::new(DrainAction::AlreadyDraining, status, "left as it is"),
            DrainDecision::Apply => {
                let set = FAKE_DRAIN.to_string();
                let record = DrainRecord {
                    version: crate::drain::RECORD_VERSION,
                    by: request.by.clone(),
                    at: request.at,
                    set: set.clone(),
                    previous: "nothing".into(),
                    previous_value: None,
                    set_value: None,
                    text: Some(request.text.clone()),
                };
                let d = FakeDrain { in_force: Some(set), record: Some(record) };
                let status = fake_drain_status(&d);
                self.state.drain = Some(d);
                self.save()?;
                DrainReport::new(DrainAction::Drained, status, "fake drain in force")
            }
        };
        Ok(report)
    }

    fn undrain(&mut self) -> Result<DrainReport> {
        let d = self.fake_drain("restore logons")?.clone();
        let ours = fake_drain_status(&d).ours.is_some();
        let (action, after) = match decide_undrain(d.record.is_some(), ours, d.in_force.is_some()) {
            UndrainDecision::Restore => (DrainAction::Undrained, FakeDrain::default()),
            UndrainDecision::ChangedSince => (DrainAction::ChangedSince, FakeDrain { record: None, ..d }),
            UndrainDecision::NotOurs => (DrainAction::NotOurs, d),
            UndrainDecision::NothingToDo => (DrainAction::NotDraining, d),
        };
        let status = fake_drain_status(&after);
        self.state.drain = Some(after);
        self.save()?;
        Ok(DrainReport::new(action, status, "fake undrain"))
    }

    fn profile_state(&mut self, account: &Account) -> Result<Option<(String, ProfileState)>> {
        let Some(profiles) = self.state.profiles.as_mut() else { return Ok(None) };
        let sid = account.id.sid_str().map_or_else(|| format!("S-fake-{}", account.user), str::to_string);
        let loaded = match profiles.get_mut(&account.user) {
            None => false,
            Some(n) if *n == 0 => false,
            Some(n) if *n == u32::MAX => true,
            Some(n) => {
                *n -= 1;
                true
            }
        };
        self.save()?;
        Ok(Some((sid, ProfileState { hive_loaded: loaded, fslogix_held: None })))
    }
}

/// What the fake's drain puts in force.
const FAKE_DRAIN: &str = "fake drain by logoff-users";

impl Fake {
    fn fake_drain(&self, action: &str) -> Result<&FakeDrain> {
        if let Some(msg) = &self.state.faults.drain_fails {
            return Err(Error::new(ErrorKind::Os, action, msg.clone()));
        }
        self.state.drain.as_ref().ok_or_else(|| Error::unsupported(action, "this fake machine has no drain"))
    }
}

fn fake_drain_status(d: &FakeDrain) -> DrainStatus {
    let ours = d.record.clone().filter(|r| d.in_force.as_deref() == Some(r.set.as_str()));
    DrainStatus { draining: d.in_force.is_some(), mechanism: d.in_force.clone(), ours }
}
