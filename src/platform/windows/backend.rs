//! The Windows backend: sessions from the WTS API, logoff with `WTSLogoffSession`, and a
//! SID-scoped process termination for what a logoff leaves behind.
//!
//! The OS calls are in [`wts`]; the conversion of what they return into sessions and
//! processes, and the choice of which processes a termination may touch, are in
//! `super::convert` (compiled and tested on every OS). This module only
//! strings them together and turns OS errors into typed [`Error`]s.
//!
//! It does not verify that a logged-off session is gone: the core polls for that.
//!
//! # Platform-specific behavior
//!
//! With `--server HOST` every call goes to that RD Session Host: sessions, processes,
//! logoff, account lookups (`LookupAccount*W` with `lpSystemName`) and termination
//! (`WTSTerminateProcess`, since a process handle cannot cross machines). The tool's own
//! session and pids are then not on that host, so nothing is spared for them there.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use super::convert::{self, RawProcess, RawSession};
use super::wts::{self, Server, Sid, WTSClientName, WTSDomainName, WTSUserName};
use crate::backend::{Backend, Done, Method, NativeOptions, Policy, TerminateOptions, Terminated};
use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Account, AccountId, same_account};
use crate::model::{Process, Session};

/// How long a message box stays up before it closes itself.
const MESSAGE_TIMEOUT_SECONDS: u32 = 60;
/// How long to wait between rounds of a process termination.
const TERMINATE_POLL: Duration = Duration::from_millis(250);

/// Opens the Windows backend, on this machine or on `opts.server`.
///
/// # Errors
///
/// A remote server that cannot be reached is `ErrorKind::Unreachable`, naming the host and
/// the Windows error; one that refuses the caller is `ErrorKind::PermissionDenied`.
pub fn open(opts: &NativeOptions) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Wts::open(opts.server.as_deref())?))
}

/// The WTS backend over one server.
#[derive(Debug)]
pub struct Wts {
    server: Server,
    /// The server's NetBIOS name, the domain of its local accounts.
    computer_name: Option<String>,
    /// SID string → (account, domain), from `LookupAccountSidW`, which can be slow.
    accounts: HashMap<String, Option<(String, String)>>,
    /// `DOMAIN\user` → SID string, from `LookupAccountNameW`.
    sids: HashMap<String, Option<String>>,
}

impl Wts {
    /// Opens this machine (`server = None`) or an RD Session Host.
    ///
    /// A remote server is asked for its sessions once here, because `WTSOpenServerW` itself
    /// never fails for a host that is down.
    ///
    /// # Errors
    ///
    /// See [`open`].
    pub fn open(server: Option<&str>) -> Result<Wts> {
        let server = match server {
            None => Server::local(),
            Some(host) => {
                let action = format!("open server {host}");
                let s = Server::open(host).map_err(|e| unreachable(&action, host, &e))?;
                s.enumerate_sessions().map_err(|e| unreachable(&action, host, &e))?;
                s
            }
        };
        let computer_name = server.computer_name().ok().filter(|n| !n.is_empty());
        Ok(Wts { server, computer_name, accounts: HashMap::new(), sids: HashMap::new() })
    }

    /// Logs off (or disconnects) one session, after checking that it is neither session 0
    /// nor the tool's own, and that its id still belongs to the same account.
    fn end_session(&mut self, session: &Session, disconnect: bool) -> Result<Done> {
        let verb = if disconnect { "disconnect" } else { "log off" };
        let action = format!("{verb} session {} of {}", session.id, session.display_name());
        let id: u32 = session.id.parse().map_err(|_| {
            Error::new(ErrorKind::InvalidInput, &action, format!("{:?} is not a WTS session id", session.id))
        })?;
        if id == 0 || self.own_session()? == Some(id) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                &action,
                "refused: it is the services session or the session this tool runs in",
            ));
        }
        match self.still_owned(id, session) {
            Ok(true) => {}
            Ok(false) => return Ok(Done::AlreadyGone),
            Err(e) if convert::error_kind(os_code(&e)) == ErrorKind::NotFound => {
                return Ok(Done::AlreadyGone);
            }
            Err(e) => return Err(win32_error(action, &e)),
        }
        let result = if disconnect { self.server.disconnect_session(id) } else { self.server.logoff_session(id) };
        match result {
            Ok(()) => Ok(Done::Requested),
            Err(e) if convert::error_kind(os_code(&e)) == ErrorKind::NotFound => Ok(Done::AlreadyGone),
            Err(e) => Err(win32_error(action, &e)),
        }
    }

    fn is_remote(&self) -> bool {
        self.server.name().is_some()
    }

    /// The tool's own WTS session, on this machine only.
    fn own_session(&self) -> Result<Option<u32>> {
        if self.is_remote() {
            return Ok(None);
        }
        wts::current_session_id().map(Some).map_err(|e| win32_error("find the current session", &e))
    }

    /// The SID string of `user` in `domain`, resolved once per account.
    fn account_sid(&mut self, user: &str, domain: Option<&str>) -> io::Result<Option<String>> {
        let name = convert::qualified_account_name(user, domain);
        if let Some(known) = self.sids.get(&name) {
            return Ok(known.clone());
        }
        let sid = match self.server.lookup_account_name(&name) {
            Ok(sid) => Some(sid.to_string_sid()?),
            Err(e) if e.raw_os_error() == Some(convert::win32::ERROR_NONE_MAPPED as i32) => None,
            Err(e) => return Err(e),
        };
        self.sids.insert(name, sid.clone());
        Ok(sid)
    }

    /// The account of a SID, resolved once per SID; `None` when it has none (a deleted
    /// account, a logon SID).
    fn account_of(&mut self, sid: &Sid, sid_string: &str) -> Option<(String, String)> {
        if let Some(known) = self.accounts.get(sid_string) {
            return known.clone();
        }
        let account = self.server.lookup_account_sid(sid).ok();
        self.accounts.insert(sid_string.to_string(), account.clone());
        account
    }

    /// Every process with its owner SID as a string, and with the owner's account when
    /// `with_accounts` (a termination only needs the SIDs).
    fn raw_processes(&mut self, with_accounts: bool) -> io::Result<Vec<RawProcess>> {
        let entries = self.server.enumerate_processes()?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let sid_string = e.sid.as_ref().and_then(|s| s.to_string_sid().ok());
            let account = match (&e.sid, &sid_string) {
                (Some(sid), Some(text)) if with_accounts => self.account_of(sid, text),
                _ => None,
            };
            let (user, domain) = account.map_or((None, None), |(u, d)| (Some(u), Some(d)));
            out.push(RawProcess { pid: e.pid, session_id: e.session_id, name: e.name, sid: sid_string, user, domain });
        }
        Ok(out)
    }

    /// Reads one session's properties into a [`RawSession`]. The user name is read first,
    /// and nothing else is asked of a session without one.
    fn raw_session(&self, entry: &wts::SessionEntry) -> io::Result<RawSession> {
        let id = entry.id;
        let mut raw = RawSession {
            session_id: id,
            station: entry.station.clone(),
            state: self.server.query_connect_state(id).unwrap_or(entry.state),
            ..RawSession::default()
        };
        if convert::station_skip_reason(id, raw.state).is_some() {
            return Ok(raw);
        }
        raw.user = self.server.query_string(id, WTSUserName)?;
        if raw.user.is_empty() {
            return Ok(raw);
        }
        raw.domain = self.server.query_string(id, WTSDomainName)?;
        // The rest is descriptive: a server that does not answer it still has the session.
        raw.times = self.server.query_times(id).ok();
        raw.client_address = self.server.query_client_address(id).ok();
        raw.client_name = self.server.query_string(id, WTSClientName).unwrap_or_default();
        raw.protocol = self.server.query_protocol(id).ok();
        Ok(raw)
    }

    /// Whether session `id` still belongs to `session`'s account. Session ids are reused:
    /// after a user logs off, the next logon can get the same id.
    fn still_owned(&mut self, id: u32, session: &Session) -> io::Result<bool> {
        let user = self.server.query_string(id, WTSUserName)?;
        if user.is_empty() {
            return Ok(false);
        }
        let domain = self.server.query_string(id, WTSDomainName)?;
        let domain = (!domain.is_empty()).then_some(domain);
        let sid = self.account_sid(&user, domain.as_deref()).ok().flatten();
        let now = Session { domain, sid, ..Session::new(session.id.clone(), user, session.state) };
        Ok(same_account(&now, session))
    }
}

impl Backend for Wts {
    fn name(&self) -> &str {
        "wts"
    }

    fn host(&self) -> String {
        self.server.name().unwrap_or("localhost").to_string()
    }

    fn policy(&self) -> Policy {
        Policy {
            sweep_after_logoff: false,
            uid_min: None,
            local_domain: self.computer_name.clone(),
            can_disconnect: true,
            services_session: Some("0".to_string()),
            // The tool's own session is on this machine only.
            spares_own_session: !self.is_remote(),
        }
    }

    /// On this machine, the token must be elevated (an administrator past UAC, or SYSTEM).
    /// For a remote server the local token's elevation says nothing (a domain admin's
    /// network logon is not filtered by the local UAC); the server refuses with access
    /// denied, reported per action.
    fn check_privilege(&mut self) -> Result<()> {
        if self.is_remote() {
            return Ok(());
        }
        match wts::token_is_elevated() {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::new(
                ErrorKind::PermissionDenied,
                "log users off",
                "this process is not elevated; run it from an elevated prompt (Run as administrator) or as SYSTEM",
            )),
            Err(e) => Err(win32_error("read the elevation of this process's token", &e)),
        }
    }

    fn list_sessions(&mut self) -> Result<Vec<Session>> {
        let entries = self.server.enumerate_sessions().map_err(|e| win32_error("list sessions", &e))?;
        let mut sessions = Vec::new();
        for entry in &entries {
            let raw = match self.raw_session(entry) {
                Ok(raw) => raw,
                // Ended between the enumeration and the query.
                Err(e) if convert::error_kind(os_code(&e)) == ErrorKind::NotFound => continue,
                Err(e) => return Err(win32_error(format!("read session {}", entry.id), &e)),
            };
            let Some(mut session) = convert::to_session(&raw) else {
                continue;
            };
            // The SID makes process ownership exact; a lookup that fails leaves names to match.
            session.sid = self.account_sid(&session.user, session.domain.as_deref()).ok().flatten();
            sessions.push(session);
        }
        Ok(sessions)
    }

    fn list_processes(&mut self) -> Result<Vec<Process>> {
        let raw = self.raw_processes(true).map_err(|e| win32_error("list processes", &e))?;
        Ok(raw.iter().map(convert::to_process).collect())
    }

    fn current_session(&mut self) -> Result<Option<String>> {
        Ok(self.own_session()?.map(|id| id.to_string()))
    }

    fn own_pids(&mut self) -> Vec<u32> {
        if self.is_remote() { Vec::new() } else { vec![std::process::id()] }
    }

    fn logoff_session(&mut self, session: &Session) -> Result<Done> {
        self.end_session(session, false)
    }

    fn disconnect_session(&mut self, session: &Session) -> Result<Done> {
        self.end_session(session, true)
    }

    /// Terminates the processes whose owner SID is the account's, round after round until
    /// none remain or `opts.timeout` passes. `TerminateProcess` has no polite form, so
    /// `opts.grace` does not apply.
    fn terminate_processes(&mut self, owner: &Account, opts: &TerminateOptions) -> Result<Terminated> {
        let who = owner.display_name();
        let action = format!("terminate the processes of {who}");
        let sid = match &owner.id {
            AccountId::Sid(sid) => sid.clone(),
            AccountId::Uid(_) => {
                return Err(Error::new(ErrorKind::InvalidInput, action, "a uid names no Windows account"));
            }
            AccountId::Name(_) => match self.account_sid(&owner.user, owner.domain.as_deref()) {
                Ok(Some(sid)) => sid,
                // No such account: it has no processes.
                Ok(None) => {
                    return Ok(Terminated { signalled: 0, method: method(self), remaining: 0, zombies: 0 });
                }
                Err(e) => return Err(win32_error(format!("look up the account {who}"), &e)),
            },
        };
        if crate::protect::is_service_sid(&sid) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                action,
                format!(
                    "refused: {sid} is a service or per-session system account (SYSTEM, LOCAL SERVICE, NETWORK SERVICE, DWM-*, UMFD-*)"
                ),
            ));
        }
        let sparing = &opts.spare;

        let deadline = Instant::now() + opts.timeout;
        let mut terminated = std::collections::BTreeSet::new();
        let mut last_failure: Option<(u32, io::Error)> = None;
        // At least one round, even with a zero timeout.
        let mut tried = false;
        loop {
            let procs = self.raw_processes(false).map_err(|e| win32_error(&action, &e))?;
            let pids = convert::select_for_termination(&procs, &sid, sparing);
            if pids.is_empty() || (tried && Instant::now() >= deadline) {
                let remaining = pids.len() as u64;
                if remaining > 0 {
                    if let Some((pid, e)) = last_failure {
                        return Err(win32_error(format!("terminate process {pid} of {who}"), &e));
                    }
                }
                return Ok(Terminated {
                    signalled: terminated.len() as u64,
                    method: method(self),
                    remaining,
                    zombies: 0,
                });
            }
            for pid in pids {
                match self.server.terminate_process(pid) {
                    Ok(()) => {
                        terminated.insert(pid);
                    }
                    // Exited since the listing.
                    Err(e) if os_code(&e) == convert::win32::ERROR_INVALID_PARAMETER => {}
                    Err(e) => last_failure = Some((pid, e)),
                }
            }
            tried = true;
            std::thread::sleep(TERMINATE_POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    fn send_message(&mut self, session: &Session, title: &str, text: &str) -> Result<()> {
        let action = format!("send a message to session {} of {}", session.id, session.display_name());
        let id: u32 = session.id.parse().map_err(|_| {
            Error::new(ErrorKind::InvalidInput, &action, format!("{:?} is not a WTS session id", session.id))
        })?;
        self.server.send_message(id, title, text, MESSAGE_TIMEOUT_SECONDS).map_err(|e| win32_error(action, &e))
    }
}

/// The termination method, for the report.
fn method(wts: &Wts) -> Method {
    if wts.is_remote() { Method::WtsTerminateProcess } else { Method::TerminateProcess }
}

/// The Win32 code of an OS error (0 for an error that has none).
fn os_code(e: &io::Error) -> u32 {
    e.raw_os_error().map_or(0, |c| c as u32)
}

/// A typed error from a Win32 failure; its cause is the system's message text.
fn win32_error(action: impl Into<String>, e: &io::Error) -> Error {
    let mut err = Error::from_io(action, e);
    if e.raw_os_error().is_some() {
        err.kind = convert::error_kind(os_code(e));
    }
    err
}

/// The error for a remote server that could not be opened: it names the host, and says
/// what to check, unless the cause is a refusal or a system that cannot open servers at
/// all (Wine's `WTSOpenServerW` is a stub: `Unsupported`).
fn unreachable(action: &str, host: &str, e: &io::Error) -> Error {
    let mut err = win32_error(action, e);
    if !matches!(err.kind, ErrorKind::PermissionDenied | ErrorKind::Unsupported) {
        err.kind = ErrorKind::Unreachable;
        err.cause = format!(
            "{e}; check that {host} is up, that the name resolves, and that its firewall allows \
             Remote Desktop Services administration (RPC)"
        );
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> TerminateOptions {
        TerminateOptions {
            grace: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            spare: crate::backend::Sparing::default(),
            listed_pids: Vec::new(),
        }
    }

    #[test]
    fn an_unreachable_server_names_the_host() {
        let err = Wts::open(Some("nosuchhost.invalid")).unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::Unreachable | ErrorKind::PermissionDenied | ErrorKind::Unsupported),
            "{err:?}"
        );
        assert!(err.to_string().contains("nosuchhost.invalid"), "{err}");
    }

    #[test]
    fn service_accounts_are_refused() {
        let mut wts = Wts::open(None).unwrap();
        for (sid, _) in crate::protect::SERVICE_SIDS {
            let owner = Account { id: AccountId::sid(sid), user: "SYSTEM".into(), domain: Some("NT AUTHORITY".into()) };
            let err = wts.terminate_processes(&owner, &opts()).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
        }
    }

    #[test]
    fn an_unknown_account_has_nothing_to_terminate() {
        let mut wts = Wts::open(None).unwrap();
        let owner = Account::by_name("nosuchuser123", None);
        let done = wts.terminate_processes(&owner, &opts()).unwrap();
        assert_eq!((done.signalled, done.remaining), (0, 0));
    }

    #[test]
    fn a_session_id_must_be_a_number_and_not_zero() {
        let mut wts = Wts::open(None).unwrap();
        let mut s = Session::new("c2", "nosuchuser123", crate::model::SessionState::Active);
        assert_eq!(wts.logoff_session(&s).unwrap_err().kind, ErrorKind::InvalidInput);
        s.id = "0".into();
        assert_eq!(wts.logoff_session(&s).unwrap_err().kind, ErrorKind::InvalidInput);
    }
}
