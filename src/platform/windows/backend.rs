//! The Windows backend: sessions from the WTS API, logoff with `WTSLogoffSession`, and a
//! SID-scoped process termination for what a logoff leaves behind.
//!
//! The OS calls are in [`wts`]; the conversion of what they return into sessions and
//! processes, and the decisions around them (which processes a termination may touch, when
//! a pid is confirmed, which server names are this machine, what an administrator sees),
//! are in `super::convert` (compiled and tested on every OS). This module only strings them
//! together and turns OS errors into typed [`Error`]s.
//!
//! It does not verify that a logged-off session is gone: the core polls for that.
//!
//! # Platform-specific behavior
//!
//! With `--server HOST` every call goes to that RD Session Host: sessions, processes,
//! logoff, account lookups (`LookupAccount*W` with `lpSystemName`) and termination
//! (`WTSTerminateProcess`, since a process handle cannot cross machines). The tool's own
//! session and pids are then not on that host, so nothing is spared for them there. A
//! `--server` name of this machine (`.`, `localhost`, a loopback address, its NetBIOS or DNS
//! name) opens this machine instead.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::time::{Duration, Instant};

use super::convert::{self, RawProcess, RawSession, TerminationFailure};
use super::drain::DrainKeys;
use super::registry::{Key, Root, Value};
use super::wts::{self, ProcessHandle, Server, Sid, WTSClientName, WTSDomainName, WTSUserName};
use crate::backend::{Backend, Done, Method, NativeOptions, Policy, Sparing, TerminateOptions, Terminated};
use crate::drain::{DrainReport, DrainRequest, DrainStatus};
use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Account, AccountId, same_account};
use crate::idle::{self, Wake};
use crate::model::{Process, Session};
use crate::profile::ProfileState;

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
    /// The session this tool runs in, on this machine only; read once.
    own_session: Option<u32>,
    /// Whether `SeDebugPrivilege` is enabled in this process's token: `None` until
    /// [`Backend::check_privilege`] asked (or when it could not tell).
    debug_privilege: Option<bool>,
    /// SID string → (account, domain), from `LookupAccountSidW`, which can be slow.
    accounts: HashMap<String, Option<(String, String)>>,
    /// `DOMAIN\user` → SID string, from `LookupAccountNameW`.
    sids: HashMap<String, Option<String>>,
    /// SID → its string, from `ConvertSidToStringSidW`: a listing holds few distinct SIDs,
    /// and a termination lists every process several times a round.
    sid_strings: HashMap<Sid, Option<String>>,
}

impl Wts {
    /// Opens this machine (`server = None`, or a name of this machine) or an RD Session Host.
    ///
    /// A remote server is asked for its sessions once here, because `WTSOpenServerW` itself
    /// never fails for a host that is down.
    ///
    /// # Errors
    ///
    /// See [`open`].
    pub fn open(server: Option<&str>) -> Result<Wts> {
        let server = match server {
            Some(host) if !convert::is_this_machine(host, &wts::local_names()) => {
                let action = format!("open server {host}");
                let s = Server::open(host).map_err(|e| unreachable(&action, host, &e))?;
                s.enumerate_sessions().map_err(|e| unreachable(&action, host, &e))?;
                s
            }
            _ => Server::local(),
        };
        let computer_name = server.computer_name().ok().filter(|n| !n.is_empty());
        let own_session = if server.name().is_none() {
            Some(wts::current_session_id().map_err(|e| win32_error("find the session this tool runs in", &e))?)
        } else {
            None
        };
        Ok(Wts {
            server,
            computer_name,
            own_session,
            debug_privilege: None,
            accounts: HashMap::new(),
            sids: HashMap::new(),
            sid_strings: HashMap::new(),
        })
    }

    /// Logs off (or disconnects) one session, after checking that it is neither session 0
    /// nor the tool's own, and that its id still belongs to the same account.
    fn end_session(&mut self, session: &Session, disconnect: bool) -> Result<Done> {
        let verb = if disconnect { "disconnect" } else { "log off" };
        let action = format!("{verb} session {} of {}", session.id, session.display_name());
        let id = session_number(session, &action)?;
        if id == 0 || self.own_session == Some(id) {
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

    /// The SID string of `user` in `domain`, resolved by the server once per account.
    fn account_sid(&mut self, user: &str, domain: Option<&str>) -> io::Result<Option<String>> {
        let name = crate::model::qualified_name(user, domain);
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

    /// The SID string of `account`: its own, or resolved from its name ([`Wts::account_sid`]).
    fn sid_of(&mut self, account: &Account) -> io::Result<Option<String>> {
        match account.id.sid_str() {
            Some(sid) => Ok(Some(sid.to_string())),
            None => self.account_sid(&account.user, account.domain.as_deref()),
        }
    }

    /// The account of a SID, resolved once per SID; `None` when it has none (a deleted
    /// account, a logon SID).
    ///
    /// A SID names one account wherever it is looked up (a well-known SID means the same
    /// everywhere), so when a remote server cannot be asked (its LSA is out of reach while
    /// its RD Session Host answers), this machine, and through it the domain, is asked
    /// instead. A name is only ever resolved on the server itself ([`Wts::account_sid`]).
    fn account_of(&mut self, sid: &Sid, sid_string: &str) -> Option<(String, String)> {
        if let Some(known) = self.accounts.get(sid_string) {
            return known.clone();
        }
        let account = match self.server.lookup_account_sid(sid) {
            Ok(account) => Some(account),
            Err(e) if self.is_remote() && convert::error_kind(os_code(&e)) == ErrorKind::Unreachable => {
                Server::local().lookup_account_sid(sid).ok()
            }
            Err(_) => None,
        };
        self.accounts.insert(sid_string.to_string(), account.clone());
        account
    }

    /// The string form of `sid`, converted once per SID.
    fn sid_string(&mut self, sid: &Sid) -> Option<String> {
        if let Some(known) = self.sid_strings.get(sid) {
            return known.clone();
        }
        let text = sid.to_string_sid().ok();
        self.sid_strings.insert(sid.clone(), text.clone());
        text
    }

    /// Converts listed processes, with each owner SID as a string, and with the owner's
    /// account when `with_accounts` (a termination only needs the SIDs).
    fn raw_processes_of(&mut self, entries: Vec<wts::ProcessEntry>, with_accounts: bool) -> Vec<RawProcess> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let sid_string = e.sid.as_ref().and_then(|s| self.sid_string(s));
            let account = match (&e.sid, &sid_string) {
                (Some(sid), Some(text)) if with_accounts => self.account_of(sid, text),
                _ => None,
            };
            let (user, domain) = account.map_or((None, None), |(u, d)| (Some(u), Some(d)));
            out.push(RawProcess { pid: e.pid, session_id: e.session_id, name: e.name, sid: sid_string, user, domain });
        }
        out
    }

    /// Every process on the server (see [`Wts::raw_processes_of`]).
    fn raw_processes(&mut self, with_accounts: bool) -> io::Result<Vec<RawProcess>> {
        let entries = self.server.enumerate_processes()?;
        Ok(self.raw_processes_of(entries, with_accounts))
    }

    /// The sessions, from one `WTSEnumerateSessionsExW` call. With `describe`, each user
    /// session's times, client and protocol are asked for too (four queries a session, for
    /// the snapshot); without, nothing more is asked (for verification's polls). A query that
    /// fails leaves its field empty: a transient error on one session never fails the host.
    fn sessions(&mut self, describe: bool) -> Result<Vec<Session>> {
        let entries = self.server.enumerate_sessions().map_err(|e| win32_error("list sessions", &e))?;
        // Idle time never reaches back past this machine's last wake; a remote RD Session
        // Host's power history cannot be asked (and servers do not sleep).
        let wake = if describe && !self.is_remote() { wts::wake() } else { Wake::NeverSlept };
        let mut sessions = Vec::new();
        for entry in entries {
            let mut raw = RawSession {
                session_id: entry.id,
                station: entry.station,
                state: entry.state,
                user: entry.user,
                domain: entry.domain,
                ..RawSession::default()
            };
            if convert::skip_reason(&raw).is_some() {
                continue;
            }
            if describe {
                let id = raw.session_id;
                raw.times = self.server.query_times(id).ok();
                raw.client_address = self.server.query_client_address(id).ok();
                raw.client_name = self.server.query_string(id, WTSClientName).unwrap_or_default();
                raw.protocol = self.server.query_protocol(id).ok();
            }
            let Some(mut session) = convert::to_session(&raw) else {
                continue;
            };
            session.set_idle(idle::after_wake(session.idle(), wake));
            // The SID makes process ownership exact; a lookup that fails leaves names to match.
            session.sid = self.account_sid(&session.user, session.domain.as_deref()).ok().flatten();
            sessions.push(session);
        }
        Ok(sessions)
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

    /// On a remote server: whether this account is an administrator there. Only an
    /// administrator sees every session's processes, so a listing that shows the system's
    /// own processes (every Windows host runs SYSTEM in session 0) is the proof; a listing of
    /// the caller's own processes, or access denied, says no. It acts on nothing.
    fn check_remote_admin(&mut self, host: &str) -> Result<()> {
        let action = format!("act on {host}");
        let listing = match self.raw_processes(false) {
            Ok(listing) => listing,
            Err(e) if os_code(&e) == convert::win32::ERROR_ACCESS_DENIED => Vec::new(),
            Err(e) => return Err(win32_error(action, &e)),
        };
        if convert::shows_system_processes(&listing) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::PermissionDenied,
            action,
            format!(
                "this account is not an administrator on {host} (it cannot see the processes of other \
                 accounts there, so sessions and processes would be missed); run as an account in \
                 the Administrators group of {host}"
            ),
        ))
    }

    /// Terminates the account's processes on this machine. Each round lists the processes,
    /// opens a handle to each of the account's, lists again while holding the handles (a
    /// held pid cannot be reused), and terminates through the handle only the pids that
    /// listing still shows as the account's. Handles of terminated processes are kept until
    /// the end, so their pids are never targeted again while they exit.
    fn terminate_local(&mut self, sid: &str, who: &str, spare: &Sparing, deadline: Instant) -> Result<Terminated> {
        let action = format!("terminate the processes of {who}");
        let mut held: Vec<ProcessHandle> = Vec::new();
        let mut failures: BTreeMap<u32, io::Error> = BTreeMap::new();
        let mut signalled = 0u64;
        let mut first = true;
        loop {
            let listing = self.raw_processes(false).map_err(|e| win32_error(&action, &e))?;
            let held_pids: Vec<u32> = held.iter().map(ProcessHandle::pid).collect();
            let candidates = convert::termination_candidates(&listing, sid, spare, &held_pids);
            let exiting: Vec<u32> = held.iter().filter(|h| !h.has_exited()).map(ProcessHandle::pid).collect();
            if (candidates.is_empty() && exiting.is_empty()) || (!first && Instant::now() >= deadline) {
                let remaining: Vec<u32> = candidates.into_iter().chain(exiting).collect();
                return self.termination_result(who, signalled, &remaining, &failures);
            }
            first = false;
            let mut opened = Vec::new();
            for pid in candidates {
                match ProcessHandle::open(pid) {
                    Ok(h) => opened.push(h),
                    Err(e) if convert::termination_failure(os_code(&e), false) == TerminationFailure::Exited => {}
                    Err(e) => {
                        failures.insert(pid, e);
                    }
                }
            }
            if !opened.is_empty() {
                let pids: Vec<u32> = opened.iter().map(ProcessHandle::pid).collect();
                let again = self.raw_processes(false).map_err(|e| win32_error(&action, &e))?;
                let confirmed = convert::confirmed_for_termination(&again, sid, spare, &pids);
                // The others were reused between the listing and the open: their handles
                // close here, untouched.
                for h in opened.into_iter().filter(|h| confirmed.contains(&h.pid())) {
                    match h.terminate() {
                        Ok(()) => {
                            signalled += 1;
                            failures.remove(&h.pid());
                            held.push(h);
                        }
                        Err(e) => match convert::termination_failure(os_code(&e), h.has_exited()) {
                            TerminationFailure::Exited => held.push(h),
                            TerminationFailure::Failed => {
                                failures.insert(h.pid(), e);
                            }
                        },
                    }
                }
            }
            let pause = TERMINATE_POLL.min(deadline.saturating_duration_since(Instant::now()));
            match held.iter().find(|h| !h.has_exited()) {
                Some(h) => {
                    h.wait(pause.as_millis() as u32);
                }
                None => std::thread::sleep(pause),
            }
        }
    }

    /// Terminates the account's processes on a remote server with `WTSTerminateProcess`,
    /// which takes a bare pid: no handle can pin the process. The race is narrowed as far as
    /// the API allows: right before each call, the pid's session alone is listed again and
    /// the pid must still be the account's; what remains is the time of one call.
    fn terminate_remote(&mut self, sid: &str, who: &str, spare: &Sparing, deadline: Instant) -> Result<Terminated> {
        let action = format!("terminate the processes of {who}");
        let mut done: BTreeSet<u32> = BTreeSet::new();
        let mut failures: BTreeMap<u32, io::Error> = BTreeMap::new();
        let mut first = true;
        loop {
            let listing = self.raw_processes(false).map_err(|e| win32_error(&action, &e))?;
            let candidates = convert::select_for_termination(&listing, sid, spare);
            if candidates.is_empty() || (!first && Instant::now() >= deadline) {
                return self.termination_result(who, done.len() as u64, &candidates, &failures);
            }
            first = false;
            for pid in candidates {
                let Some(session) = listing.iter().find(|p| p.pid == pid).map(|p| p.session_id) else { continue };
                // Only the pid's own entry is looked at.
                let now = match self.server.enumerate_processes_in(session) {
                    Ok(entries) => self.raw_processes_of(entries.into_iter().filter(|e| e.pid == pid).collect(), false),
                    Err(e) => {
                        failures.insert(pid, e);
                        continue;
                    }
                };
                if convert::confirmed_for_termination(&now, sid, spare, &[pid]).is_empty() {
                    continue;
                }
                match self.server.terminate_remote_process(pid) {
                    Ok(()) => {
                        done.insert(pid);
                        failures.remove(&pid);
                    }
                    // A pid this run already terminated, refused now: it is exiting.
                    Err(e) => match convert::termination_failure(os_code(&e), done.contains(&pid)) {
                        TerminationFailure::Exited => {}
                        TerminationFailure::Failed => {
                            failures.insert(pid, e);
                        }
                    },
                }
            }
            std::thread::sleep(TERMINATE_POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// The end of a termination: an error for a process that remains after a failure,
    /// else what was done.
    fn termination_result(
        &self,
        who: &str,
        signalled: u64,
        remaining: &[u32],
        failures: &BTreeMap<u32, io::Error>,
    ) -> Result<Terminated> {
        if let Some((pid, e)) = failures.iter().find(|(pid, _)| remaining.contains(pid)) {
            let mut err = win32_error(format!("terminate process {pid} of {who}"), e);
            if err.kind == ErrorKind::PermissionDenied && !self.is_remote() {
                if let Some(hint) = convert::debug_privilege_hint(self.debug_privilege) {
                    err.cause = format!("{}; {hint}", err.cause);
                }
            }
            return Err(err);
        }
        Ok(Terminated { signalled, method: method(self), remaining: remaining.len() as u64, zombies: 0 })
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
            uid_max: None,
            local_domain: self.computer_name.clone(),
            can_disconnect: true,
            services_session: Some("0".to_string()),
            // The tool's own session is on this machine only.
            spares_own_session: !self.is_remote(),
        }
    }

    /// On this machine, the token must hold `BUILTIN\Administrators` (enabled: an
    /// administrator past UAC) or be SYSTEM's; `SeDebugPrivilege` is then enabled for the
    /// process fallback. On a remote server, the account must be an administrator there,
    /// which its process listing tells (see [`Wts::check_remote_admin`]).
    fn check_privilege(&mut self) -> Result<()> {
        if let Some(host) = self.server.name().map(str::to_string) {
            return self.check_remote_admin(&host);
        }
        match wts::token_is_admin() {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    "log users off",
                    "this process is not an administrator (its token holds neither an enabled \
                     BUILTIN\\Administrators group nor SYSTEM); run it from an elevated prompt (Run as \
                     administrator) or as SYSTEM; an elevated member of Backup Operators or similar groups \
                     sees only part of the sessions and processes",
                ));
            }
            Err(e) => return Err(win32_error("read the groups of this process's token", &e)),
        }
        self.debug_privilege = wts::enable_debug_privilege().ok();
        Ok(())
    }

    fn list_sessions(&mut self) -> Result<Vec<Session>> {
        self.sessions(true)
    }

    /// One `WTSEnumerateSessionsExW` call per poll, however many sessions there are.
    fn find_sessions(&mut self, _planned: &[&Session]) -> Result<Vec<Session>> {
        self.sessions(false)
    }

    fn list_processes(&mut self) -> Result<Vec<Process>> {
        let raw = self.raw_processes(true).map_err(|e| win32_error("list processes", &e))?;
        Ok(raw.iter().map(convert::to_process).collect())
    }

    fn current_session(&mut self) -> Result<Option<String>> {
        Ok(self.own_session.map(|id| id.to_string()))
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
    /// none remain or `opts.timeout` passes, never a pid that is not confirmed as the
    /// account's at the time (see [`Wts::terminate_local`], [`Wts::terminate_remote`]).
    /// `TerminateProcess` has no polite form, so `opts.grace` does not apply.
    fn terminate_processes(&mut self, owner: &Account, opts: &TerminateOptions) -> Result<Terminated> {
        let who = owner.display_name();
        let action = format!("terminate the processes of {who}");
        if let AccountId::Uid(_) = owner.id {
            return Err(Error::new(ErrorKind::InvalidInput, action, "a uid names no Windows account"));
        }
        let sid = match self.sid_of(owner) {
            Ok(Some(sid)) => sid,
            // No such account: it has no processes.
            Ok(None) => return Ok(Terminated { signalled: 0, method: method(self), remaining: 0, zombies: 0 }),
            Err(e) => return Err(win32_error(format!("look up the account {who}"), &e)),
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
        let deadline = Instant::now() + opts.timeout;
        if self.is_remote() {
            self.terminate_remote(&sid, &who, &opts.spare, deadline)
        } else {
            self.terminate_local(&sid, &who, &opts.spare, deadline)
        }
    }

    fn send_message(&mut self, session: &Session, title: &str, text: &str) -> Result<()> {
        let action = format!("send a message to session {} of {}", session.id, session.display_name());
        let id = session_number(session, &action)?;
        self.server.send_message(id, title, text, MESSAGE_TIMEOUT_SECONDS).map_err(|e| win32_error(action, &e))
    }

    fn drain_status(&mut self) -> Result<DrainStatus> {
        self.local_only("read the logon drain state")?;
        DrainKeys::system().status()
    }

    fn drain(&mut self, request: &DrainRequest) -> Result<DrainReport> {
        self.local_only("stop new logons")?;
        DrainKeys::system().drain(request)
    }

    fn undrain(&mut self) -> Result<DrainReport> {
        self.local_only("restore logons")?;
        DrainKeys::system().undrain()
    }

    /// The account's hive under `HKEY_USERS` and, where FSLogix is installed, its session
    /// state there (see [`convert::fslogix_holds`]); this machine only.
    fn profile_state(&mut self, account: &Account) -> Result<Option<(String, ProfileState)>> {
        let who = account.display_name();
        self.local_only(&format!("check the profile of {who}"))?;
        let sid = self.sid_of(account).map_err(|e| win32_error(format!("find the SID of {who}"), &e))?;
        let Some(sid) = sid else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("find the SID of {who}"),
                "the account does not resolve",
            ));
        };
        let action = || format!("check the profile of {who} ({sid})");
        let hive_loaded = Key::exists(Root::Users, &sid).map_err(|e| win32_error(action(), &e))?;
        let fslogix_held =
            if Key::exists(Root::LocalMachine, convert::FSLOGIX_APPS_KEY).map_err(|e| win32_error(action(), &e))? {
                let mut held = false;
                for path in convert::fslogix_session_keys(&sid) {
                    let key = Key::open(Root::LocalMachine, &path, false).map_err(|e| win32_error(action(), &e))?;
                    let ref_count = match key
                        .as_ref()
                        .map(|k| k.value("RefCount"))
                        .transpose()
                        .map_err(|e| win32_error(action(), &e))?
                    {
                        Some(Some(Value::Dword(n))) => Some(n),
                        _ => None,
                    };
                    held |= convert::fslogix_holds(key.is_some(), ref_count);
                }
                Some(held)
            } else {
                None
            };
        Ok(Some((sid, ProfileState { hive_loaded, fslogix_held })))
    }
}

impl Wts {
    /// `Unsupported` on a remote server: the registry of a server is out of reach (the
    /// Remote Registry service is off by default).
    fn local_only(&self, action: &str) -> Result<()> {
        match self.server.name() {
            Some(host) => {
                Err(Error::unsupported(action, format!("not on a remote server ({host}): run the tool there")))
            }
            None => Ok(()),
        }
    }
}

/// The WTS session id of `session`.
fn session_number(session: &Session, action: &str) -> Result<u32> {
    session
        .id
        .parse()
        .map_err(|_| Error::new(ErrorKind::InvalidInput, action, format!("{:?} is not a WTS session id", session.id)))
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
