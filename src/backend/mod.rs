//! The seam: one [`Backend`] trait for every side effect the tool has, the options that
//! open the native one, and the `fake` backend.
//!
//! The core (parsing, planning, verifying, reporting) only ever talks to a `Backend`. The
//! fake is compiled into every test build (the `test-doors` feature, which the test build
//! turns on), so the CLI can be tested on any OS without root; a release build has none.
//! The real backends live in `crate::platform`, one folder per OS; [`open_native`](crate::open_native) opens
//! this OS's.

#[cfg(any(test, feature = "test-doors"))]
pub mod fake;

use std::time::Duration;

use crate::drain::{DrainReport, DrainRequest, DrainStatus};
use crate::error::Result;
use crate::identity::{Account, AccountId};
use crate::model::{Process, Session};
use crate::profile::ProfileState;
use crate::words::string_enum;

/// What a backend tells the planner about its platform's rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// After its sessions are ended, sweep every remaining process of a target user
    /// (Linux: processes outlive a logout when KillUserProcesses=no, and processes outside
    /// a session are not in it). Windows ends a session's processes with the session.
    pub sweep_after_logoff: bool,
    /// Accounts with a uid below this are system accounts (login.defs `UID_MIN`), protected
    /// unless named with `--force`.
    pub uid_min: Option<u32>,
    /// Accounts with a uid above this (login.defs `UID_MAX`) are not regular users either
    /// (`nobody`, systemd's dynamic service users, container ranges): `--orphans` leaves
    /// them alone unless `--force`.
    pub uid_max: Option<u32>,
    /// The local machine's name as a domain (Windows: the computer name), which `.\user`
    /// matches. Linux local accounts have no domain.
    pub local_domain: Option<String>,
    /// Sessions can be disconnected and kept (`--disconnect`; Windows only).
    pub can_disconnect: bool,
    /// The id of the session that holds the system's services (Windows: `"0"`), which is
    /// never logged off and whose processes a termination leaves alone unless asked
    /// (`--include-services`). Linux has none.
    pub services_session: Option<String>,
    /// The backend leaves alone the processes in the session the tool runs in (Windows), so
    /// planning and verification must count them as spared too.
    pub spares_own_session: bool,
}

impl Policy {
    /// Whether `session_id` is the services session.
    pub fn is_services_session(&self, session_id: &str) -> bool {
        self.services_session.as_deref() == Some(session_id)
    }
}

/// What a process termination leaves alone: the one rule that planning, every backend and
/// verification share, so that nothing a backend spares is waited for, and nothing planned
/// is spared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sparing {
    /// The tool itself and its ancestors.
    pub pids: Vec<u32>,
    /// Sessions whose processes are left alone: the services session (unless
    /// `--include-services`), and, where the backend spares it, the tool's own session,
    /// unless that is the services session (an RMM agent runs as SYSTEM in session 0: its
    /// session is no reason to spare the services session's processes).
    pub sessions: Vec<String>,
}

impl Sparing {
    /// The sparing of a run on a host with `policy`, where the tool has `own_pids` and runs
    /// in `current_session`.
    pub fn of_run(policy: &Policy, own_pids: &[u32], current_session: Option<&str>, include_services: bool) -> Sparing {
        let mut sessions = Vec::new();
        if let Some(services) = policy.services_session.as_ref().filter(|_| !include_services) {
            sessions.push(services.clone());
        }
        if let Some(own) = current_session.filter(|id| policy.spares_own_session && !policy.is_services_session(id)) {
            sessions.push(own.to_string());
        }
        Sparing { pids: own_pids.to_vec(), sessions }
    }

    /// Whether a termination leaves `p` alone.
    pub fn spares(&self, p: &Process) -> bool {
        self.pids.contains(&p.pid) || p.session_id.as_ref().is_some_and(|s| self.sessions.contains(s))
    }
}

/// How a backend should terminate a user's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminateOptions {
    /// How long to wait after the polite signal (SIGTERM) before forcing (SIGKILL).
    pub grace: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// What to leave alone.
    pub spare: Sparing,
}

string_enum! {
    /// What an action did: one kind per acting method of [`Backend`].
    pub enum ActionKind {
        /// A session's logoff (WTSLogoffSession, logind TerminateSession, SIGHUP to a utmp
        /// session's leader).
        LogoffSession => "logoff_session",
        /// A session's disconnection (`--disconnect`, Windows).
        DisconnectSession => "disconnect_session",
        /// The termination of an account's processes.
        TerminateProcesses => "terminate_processes",
        /// The warning shown to a session (`--message`).
        SendMessage => "send_message",
    }
}

/// One account whose processes a batched termination ends, with the pids the caller
/// listed for it just before (counted in `Terminated::signalled` without another scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminateTarget<'a> {
    /// The account.
    pub account: &'a Account,
    /// Its processes as listed.
    pub listed_pids: &'a [u32],
}

/// The result of a successful logoff or termination request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The OS accepted the request.
    Requested,
    /// The session or processes were already gone.
    AlreadyGone,
}

string_enum! {
    /// How a backend terminated processes, for the report.
    pub enum Method {
        /// Linux: `kill(-1)` with the credentials of the account's uid.
        KillAsUid => "kill(-1) as uid",
        /// Linux with logind: logind's `KillUser` (systemd signals the user's slice), and
        /// `kill(-1)` as the uid for what is outside it.
        KillUserAndKillAsUid => "KillUser + kill(-1) as uid",
        /// Linux: one pidfd per process (where `kill(-1)` cannot be used).
        Pidfd => "pidfd",
        /// Windows: `TerminateProcess` through a handle.
        TerminateProcess => "TerminateProcess",
        /// Windows, a remote server: `WTSTerminateProcess`.
        WtsTerminateProcess => "WTSTerminateProcess",
        /// The fake backend.
        Fake => "fake",
    }
}

/// What a process termination did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    /// How many processes were signalled (or terminated), as far as the OS says.
    pub signalled: u64,
    /// The method used, for the report.
    pub method: Method,
    /// Processes still present when the backend returned (usually 0).
    pub remaining: u64,
    /// Zombies seen (dead, not reaped yet): they count as gone.
    pub zombies: u64,
}

/// Every side effect of the tool, on one machine.
///
/// # Errors
///
/// Every method returns a typed [`crate::error::Error`]. A session or process that is
/// already gone is `Ok(Done::AlreadyGone)`, not an error. An operation that the platform
/// cannot do returns `ErrorKind::Unsupported`, never an empty list or a fake success.
pub trait Backend {
    /// A short name for the report: `"logind"`, `"utmp"`, `"wts"`, `"fake"`.
    fn name(&self) -> &str;

    /// The host this backend acts on (`"localhost"`, or a remote server's name).
    fn host(&self) -> String {
        "localhost".to_string()
    }

    /// The platform rules the planner needs.
    fn policy(&self) -> Policy;

    /// Checks that the tool has the privilege to log users off. Called before anything is
    /// done, so that a run without privilege exits 3 having done nothing.
    fn check_privilege(&mut self) -> Result<()>;

    /// Lists the user sessions on the machine.
    fn list_sessions(&mut self) -> Result<Vec<Session>>;

    /// Lists the processes on the machine.
    fn list_processes(&mut self) -> Result<Vec<Process>>;

    /// The sessions among `planned` that still exist, as the OS reports them now; for
    /// verification, which polls them until they are gone. It may return other sessions
    /// too: the caller picks the planned ones by id and account.
    ///
    /// The default lists every session.
    fn find_sessions(&mut self, planned: &[&Session]) -> Result<Vec<Session>> {
        let _ = planned;
        self.list_sessions()
    }

    /// The processes of `accounts`, as the OS reports them now, including any they started
    /// since the last listing; for verification. It may return other processes too: the
    /// caller picks the accounts' own with the snapshot's identities.
    ///
    /// The default lists every process.
    fn find_processes(&mut self, accounts: &[&AccountId]) -> Result<Vec<Process>> {
        let _ = accounts;
        self.list_processes()
    }

    /// The session the tool itself runs in, if it runs in one.
    fn current_session(&mut self) -> Result<Option<String>>;

    /// The uids of the accounts that linger (logind's `Linger`: a service manager started
    /// at boot and kept after logout, for services that outlive their user's sessions).
    /// Their processes outside their sessions are never swept.
    ///
    /// The default is none: without logind nothing lingers.
    fn lingering_uids(&mut self) -> Result<Vec<u32>> {
        Ok(Vec::new())
    }

    /// The pids the tool must never signal: itself, and its ancestors.
    fn own_pids(&mut self) -> Vec<u32> {
        vec![std::process::id()]
    }

    /// Ends one session (WTSLogoffSession, logind TerminateSession, or SIGHUP/SIGTERM to a
    /// utmp session's leader). Does not wait for it to be gone: verification does that.
    fn logoff_session(&mut self, session: &Session) -> Result<Done>;

    /// Disconnects one session, keeping it and its processes (Windows
    /// `WTSDisconnectSession`), for admins who want to keep the user's work.
    ///
    /// # Errors
    ///
    /// `Unsupported` where sessions cannot be disconnected (Linux, the default).
    fn disconnect_session(&mut self, session: &Session) -> Result<Done> {
        Err(crate::error::Error::unsupported(
            format!("disconnect session {}", session.id),
            format!("the {} backend cannot disconnect sessions (only Windows can)", self.name()),
        ))
    }

    /// Ends the sessions of several accounts; one result list per account, in order. A
    /// backend may keep several requests in flight at once (logind).
    ///
    /// The default asks [`Backend::logoff_session`] for each session, one after the other.
    fn logoff_all(&mut self, users: &[(&Account, Vec<&Session>)]) -> Vec<Vec<Result<Done>>> {
        users.iter().map(|(_, sessions)| sessions.iter().map(|s| self.logoff_session(s)).collect()).collect()
    }

    /// Undoes what an earlier run that was killed mid-way may have left on these accounts
    /// before anything is done to them (Linux: a user slice left frozen by an older
    /// version); one line per repair, for the log. The default has nothing to repair.
    fn repair(&mut self, accounts: &[&Account]) -> Vec<String> {
        let _ = accounts;
        Vec::new()
    }

    /// Terminates every process of `owner` (polite signal, grace, then force), except what
    /// `opts.spare` spares.
    fn terminate_processes(&mut self, owner: &Account, opts: &TerminateOptions) -> Result<Terminated>;

    /// Terminates the processes of several accounts with ONE grace period for them all:
    /// the polite signal to every account, one wait, then force for what is left. One
    /// result per target, in order.
    ///
    /// The default runs [`Backend::terminate_processes`] for one target after the other,
    /// which is right only for a backend without a polite signal (Windows'
    /// `TerminateProcess`), where there is no grace to share.
    fn terminate_all(&mut self, targets: &[TerminateTarget], opts: &TerminateOptions) -> Vec<Result<Terminated>> {
        targets.iter().map(|t| self.terminate_processes(t.account, opts)).collect()
    }

    /// Shows a message to a session.
    fn send_message(&mut self, session: &Session, title: &str, text: &str) -> Result<()>;

    /// Whether new logons are refused on this machine, by what, and whether by this tool
    /// (see [`crate::drain`]).
    ///
    /// # Errors
    ///
    /// `Unsupported` where the platform has no drain (the default, and a remote server).
    fn drain_status(&mut self) -> Result<DrainStatus> {
        Err(crate::error::Error::unsupported("read the logon drain state", no_drain(self.name())))
    }

    /// Stops new logons, unless they are refused already; records what it changed.
    ///
    /// # Errors
    ///
    /// `Unsupported` where the platform has no drain (the default); an OS error otherwise,
    /// after which nothing of this tool's drain is in force.
    fn drain(&mut self, request: &DrainRequest) -> Result<DrainReport> {
        let _ = request;
        Err(crate::error::Error::unsupported("stop new logons", no_drain(self.name())))
    }

    /// Restores what this tool's drain changed, and nothing else.
    ///
    /// # Errors
    ///
    /// As for [`Backend::drain`].
    fn undrain(&mut self) -> Result<DrainReport> {
        Err(crate::error::Error::unsupported("restore logons", no_drain(self.name())))
    }

    /// Windows: the SID of `account` and what is still loaded of its profile (its hive
    /// under `HKEY_USERS`, FSLogix's state for it). `Ok(None)` where profiles are not
    /// checked (the default: Linux).
    ///
    /// # Errors
    ///
    /// When it cannot be told: no SID known for the account, a registry error, a remote
    /// server.
    fn profile_state(&mut self, account: &Account) -> Result<Option<(String, ProfileState)>> {
        let _ = account;
        Ok(None)
    }
}

fn no_drain(backend: &str) -> String {
    format!("the {backend} backend cannot refuse new logons (run the tool on the machine itself)")
}

/// Which Linux session source to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionSource {
    /// logind when it answers on the system bus, utmp otherwise.
    #[default]
    Auto,
    /// systemd-logind (or elogind) over D-Bus only.
    Logind,
    /// utmp plus /proc only.
    Utmp,
}

/// How to open the native backend.
#[derive(Debug, Clone, Default)]
pub struct NativeOptions {
    /// Linux: where sessions come from.
    pub source: SessionSource,
    /// Linux: the utmp file to read instead of `/var/run/utmp`.
    pub utmp_path: Option<std::path::PathBuf>,
    /// Windows: a remote RDS host to open with `WTSOpenServerW`; `None` is this machine.
    pub server: Option<String>,
    /// Linux: where process uids come from.
    pub processes: ProcessSource,
}

/// Linux: where the uids of every process come from.
///
/// `/proc` is the default: security tooling on production hosts (Falco, EDR agents) alerts
/// on BPF program loads by unknown binaries, and nobody expects a logoff tool to load one.
/// The task iterator is an explicit opt-in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProcessSource {
    /// The BPF task iterator for listings once the machine has enough processes for it to
    /// pay off (loading it costs a few milliseconds), and for the sweeps after such a
    /// listing; `/proc` otherwise and where it cannot load.
    Auto,
    /// Always `/proc/PID/status`, never BPF.
    #[default]
    Procfs,
    /// The task iterator whatever the number of processes, `/proc` only where it cannot load.
    TaskIter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip() {
        crate::words::assert_round_trips(Method::ALL);
        crate::words::assert_round_trips(ActionKind::ALL);
    }

    fn p(pid: u32, session: &str) -> Process {
        Process { session_id: Some(session.into()), ..Process::new(pid, "x") }
    }

    #[test]
    fn one_sparing_rule() {
        let windows = Policy { services_session: Some("0".into()), spares_own_session: true, ..Policy::default() };
        // An admin's elevated prompt in session 3: the services session and session 3 are
        // spared, and the tool's pids.
        let s = Sparing::of_run(&windows, &[77], Some("3"), false);
        assert!(s.spares(&p(10, "0")) && s.spares(&p(11, "3")) && s.spares(&p(77, "5")));
        assert!(!s.spares(&p(12, "5")));
        // --include-services takes the services session's processes too.
        assert!(!Sparing::of_run(&windows, &[], Some("3"), true).spares(&p(10, "0")));
        // An RMM agent as SYSTEM runs in session 0: that is no reason to spare session 0
        // when --include-services asks for it.
        assert!(!Sparing::of_run(&windows, &[], Some("0"), true).spares(&p(10, "0")));
        assert!(Sparing::of_run(&windows, &[], Some("0"), false).spares(&p(10, "0")));
        // Linux spares no session: the sweep is by uid.
        let linux = Policy { uid_min: Some(1000), ..Policy::default() };
        assert_eq!(Sparing::of_run(&linux, &[1, 2], Some("c4"), false).sessions, Vec::<String>::new());
    }
}
