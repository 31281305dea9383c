//! The seam: one [`Backend`] trait for every side effect the tool has, and the selection of
//! the backend for this OS.
//!
//! The core (parsing, planning, verifying, reporting) only ever talks to a `Backend`. The
//! [`fake`] backend is always compiled, so the CLI can be tested on any OS without root.
//! Real backends live in one directory per OS API, chosen by `#[cfg]` on `mod` lines.

pub mod fake;
pub mod wts_convert;

use std::time::Duration;

use crate::error::Result;
use crate::model::{Account, Process, Session};

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
    /// The local machine's name as a domain (Windows: the computer name), which `.\user`
    /// matches. Linux local accounts have no domain.
    pub local_domain: Option<String>,
    /// Sessions can be disconnected and kept (`--disconnect`; Windows only).
    pub can_disconnect: bool,
}

/// How a backend should terminate a user's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminateOptions {
    /// How long to wait after the polite signal (SIGTERM) before forcing (SIGKILL).
    pub grace: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// Include the account's processes in the services session (Windows session 0).
    pub include_services: bool,
    /// Never signal these pids (the tool itself and its parents).
    pub spare_pids: Vec<u32>,
    /// The account's processes as the caller listed them just before (the plan's pids):
    /// counted in `Terminated::signalled` without another scan. May be empty.
    pub listed_pids: Vec<u32>,
}

/// The result of a successful logoff or termination request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The OS accepted the request.
    Requested,
    /// The session or processes were already gone.
    AlreadyGone,
}

/// What a process termination did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Terminated {
    /// How many processes were signalled (or terminated), as far as the OS says.
    pub signalled: u64,
    /// The method used, for the report: `"kill(-1) as uid"`, `"cgroup.kill"`,
    /// `"TerminateProcess"`, …
    pub method: String,
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

    /// The session the tool itself runs in, if it runs in one.
    fn current_session(&mut self) -> Result<Option<String>>;

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

    /// Terminates every process of `owner` (polite signal, grace, then force), except
    /// `opts.spare_pids`.
    fn terminate_processes(&mut self, owner: &Account, opts: &TerminateOptions) -> Result<Terminated>;

    /// Shows a message to a session.
    fn send_message(&mut self, session: &Session, title: &str, text: &str) -> Result<()>;
}

/// The "not supported yet" backend for an OS that has no real backend. Every call fails
/// with `Unsupported`; it never pretends there are no sessions.
#[derive(Debug, Default)]
pub struct Unsupported;

impl Unsupported {
    fn err<T>(what: &str) -> Result<T> {
        Err(crate::error::Error::unsupported(
            what,
            format!("{} is not supported yet by logoff-users", std::env::consts::OS),
        ))
    }
}

impl Backend for Unsupported {
    fn name(&self) -> &str {
        "unsupported"
    }
    fn policy(&self) -> Policy {
        Policy::default()
    }
    fn check_privilege(&mut self) -> Result<()> {
        Self::err("check privilege")
    }
    fn list_sessions(&mut self) -> Result<Vec<Session>> {
        Self::err("list sessions")
    }
    fn list_processes(&mut self) -> Result<Vec<Process>> {
        Self::err("list processes")
    }
    fn current_session(&mut self) -> Result<Option<String>> {
        Self::err("find the current session")
    }
    fn logoff_session(&mut self, _: &Session) -> Result<Done> {
        Self::err("log off a session")
    }
    fn terminate_processes(&mut self, _: &Account, _: &TerminateOptions) -> Result<Terminated> {
        Self::err("terminate processes")
    }
    fn send_message(&mut self, _: &Session, _: &str, _: &str) -> Result<()> {
        Self::err("send a message")
    }
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProcessSource {
    /// The BPF task iterator for listings once the machine has enough processes for it to
    /// pay off (loading it costs a few milliseconds), and for the sweeps after such a
    /// listing; `/proc` otherwise and where it cannot load.
    #[default]
    Auto,
    /// Always `/proc/PID/status`, never BPF.
    Procfs,
    /// The task iterator whatever the number of processes, `/proc` only where it cannot load.
    TaskIter,
}

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "linux")]
pub use linux::open as open_native;

#[cfg(windows)]
pub mod windows;
#[cfg(windows)]
pub use windows::open as open_native;

/// Opens the backend of an OS that has none yet: it says so on every call.
///
/// # Errors
///
/// Never fails to open; every operation then returns `Unsupported`.
#[cfg(not(any(target_os = "linux", windows)))]
pub fn open_native(_opts: &NativeOptions) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Unsupported))
}
