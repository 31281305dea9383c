//! The events of a run, as they happen: each becomes one line of the text log
//! (`crate::text` renders them) and, for actions, one audit record.
//!
//! Every field that came from the OS or from the user stays raw here; rendering is the one
//! place that makes it safe to print.

use crate::drain::{DrainReport, DrainStep};
use crate::plan::TerminateReason;
use crate::profile::ProfileUnloaded;
use crate::report::{ActionKind, ActionRecord};

/// One line of the text log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Starting on a host.
    Host { host: String, backend: String },
    /// A host where nothing could be done.
    HostFailed { host: String, error: String },
    /// A host left out: it names the same machine as `kept` (`--server localhost,.`).
    SameMachine { host: String, kept: String },
    /// Starting on a user.
    User { requested: String, user: String, sessions: usize, processes: usize, all: bool },
    /// A named user with no session and no process.
    NotLoggedOn { requested: String },
    /// A session the plan leaves alone.
    Skipped { session_id: String, user: String, reason: String },
    /// A note from the plan.
    Note { user: String, note: String },
    /// An account with processes and no live session that `--orphans` leaves alone.
    Spared { user: String, reason: String },
    /// A logoff is about to be requested.
    LoggingOff { user: String, session_id: String, station: Option<String> },
    /// A disconnection is about to be requested.
    Disconnecting { user: String, session_id: String },
    /// A process termination is about to start.
    Terminating { user: String, reason: TerminateReason, processes: usize },
    /// An action's result.
    Action(ActionRecord),
    /// Something an earlier run left behind, repaired before acting (a frozen cgroup).
    Repaired(String),
    /// The warning goes out to this many sessions.
    Warning { sessions: usize, text: String },
    /// Verification is waiting.
    Waiting { timeout_ms: u64 },
    /// A user verified gone.
    VerifiedGone { user: String, zombies: u64 },
    /// A user still present after the timeout.
    /// `names` are the names of `pids`, in the same order.
    StillPresent { user: String, sessions: Vec<String>, pids: Vec<u32>, names: Vec<String>, uninterruptible: Vec<u32> },
    /// What `--drain` or `--undrain` did (or, on a dry run, would do).
    Drain { step: DrainStep, report: DrainReport },
    /// Waiting for the logged-off users' profiles to unload (Windows).
    WaitingProfiles { timeout_ms: u64 },
    /// A logged-off user's profile, checked (Windows).
    Profile { user: String, unloaded: ProfileUnloaded, detail: String },
    /// The grace period started, or a countdown point passed.
    Countdown { remaining_ms: u64, reminder: bool },
    /// Ctrl-C or SIGTERM during the grace period.
    Cancelled,
    /// What a dry run would do.
    Would(Would),
}

/// One line of a dry run's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Would {
    /// Warn every planned session, then wait.
    Warn { text: String, grace_ms: u64 },
    /// Leave a session alone.
    Skip { session_id: String, user: String, reason: String },
    /// A user's sessions and processes.
    User { user: String, sessions: usize, processes: usize },
    /// Log off (or disconnect) a session.
    Act { action: ActionKind, session_id: String, station: Option<String>, user: String },
    /// Terminate a user's processes.
    Terminate { user: String, reason: TerminateReason, processes: usize },
}
