//! The report of a run: the versioned JSON document (`--format json`), and the one function
//! that turns a report into the run's exit code.
//!
//! The JSON document is an interface: scripts and the Ansible role read it. Its top level
//! is [`Report`] with `version` = [`REPORT_VERSION`]; every field is snake_case. A change to
//! its shape bumps the version. Rendering it as text lines is `crate::text`'s job.
//!
//! Version 2 (issue 18) only adds: `request.orphans` and `request.drain`; per host `drain`;
//! per user `profile_unloaded`; `plan.spared`; `summary.profiles_still_loaded`; the value
//! `orphan` of `terminate` and of an action's `reason`, and the requested name `--orphans`;
//! a session's `idle_source`; and `drain` per host in `--list`. Nothing was renamed or
//! removed, so a reader of version 1 that ignores unknown fields reads version 2.

use serde::Serialize;

pub use crate::backend::ActionKind;
use crate::backend::Method;
use crate::drain::{DrainReport, DrainStatus, DrainStep};
use crate::model::Session;
use crate::plan::{Plan, TerminateReason};
use crate::profile::ProfileUnloaded;
use crate::words::string_enum;

/// The version of the JSON document.
pub const REPORT_VERSION: u32 = 2;

string_enum! {
    /// The outcome of one action.
    pub enum ActionResult {
        /// The OS accepted the request.
        Requested => "requested",
        /// The session or processes were already gone: not an error.
        AlreadyGone => "already_gone",
        /// The request failed; see `error`.
        Failed => "failed",
    }
}

/// One action carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRecord {
    /// What was done.
    pub action: ActionKind,
    /// The account, `DOMAIN\user`.
    pub user: String,
    /// The session, for session actions.
    pub session_id: Option<String>,
    /// Why, for `terminate_processes`.
    pub reason: Option<TerminateReason>,
    /// What happened.
    pub result: ActionResult,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// Processes signalled or terminated, for `terminate_processes`.
    pub signalled: Option<u64>,
    /// The method used, for `terminate_processes`.
    pub method: Option<Method>,
}

impl ActionRecord {
    /// A requested action on `user` (and `session_id`), before its outcome is known.
    pub fn new(action: ActionKind, user: &str, session_id: Option<&str>) -> ActionRecord {
        ActionRecord {
            action,
            user: user.to_string(),
            session_id: session_id.map(str::to_string),
            reason: None,
            result: ActionResult::Requested,
            error: None,
            signalled: None,
            method: None,
        }
    }

    /// A failure of this action (a message that was not delivered counts for the
    /// messages, not here).
    fn failed_action(&self) -> bool {
        self.result == ActionResult::Failed && self.action != ActionKind::SendMessage
    }
}

/// What was still there when verification ended, for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remaining {
    /// The account, `DOMAIN\user`.
    pub user: String,
    /// Sessions still present.
    pub sessions: Vec<String>,
    /// Processes still present (zombies excluded).
    pub pids: Vec<u32>,
    /// The names of `pids`, in the same order (empty for a process that was never listed).
    pub names: Vec<String>,
    /// Those of `pids` in uninterruptible sleep (Linux `D`): they die only when they wake.
    pub uninterruptible: Vec<u32>,
}

/// The result of polling until the targets are gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Every targeted session and process is gone.
    pub verified: bool,
    /// The timeout ran out first.
    pub timed_out: bool,
    /// How long verification took, in milliseconds.
    pub elapsed_ms: u64,
    /// How many times the machine was listed.
    pub polls: u32,
    /// Zombies of target users seen at the end: dead, not yet reaped; they count as gone.
    pub zombies: u64,
    /// What remained, per user (empty when verified).
    pub remaining: Vec<Remaining>,
    /// Listing errors met while polling.
    pub errors: Vec<String>,
}

string_enum! {
    /// The final outcome for one target user.
    pub enum UserOutcome {
        /// Sessions and processes verified gone.
        LoggedOff => "logged_off",
        /// Not logged on: nothing to do, counts as done.
        NotLoggedOn => "not_logged_on",
        /// Something of the user's remained after the timeout, or an action failed.
        Failed => "failed",
        /// Dry run: planned, not done.
        Planned => "planned",
        /// `--disconnect`: every session verified disconnected (or gone).
        Disconnected => "disconnected",
        /// A session filter left every session of the user running: nothing done.
        LeftAlone => "left_alone",
    }
}

/// The final outcome for one target user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserResult {
    /// The name as requested, or `ALL`.
    pub requested: String,
    /// The account, `DOMAIN\user`, when one was found.
    pub user: Option<String>,
    /// The outcome.
    pub outcome: UserOutcome,
    /// Windows: whether the user's profile was unloaded after the logoff (`true`, `false`:
    /// still loaded at the deadline, which fails the user, or `"unknown"`); `null` where
    /// profiles are not checked (Linux, or a user not logged off).
    pub profile_unloaded: Option<ProfileUnloaded>,
}

/// Everything about one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReport {
    /// The host name (`localhost`, or a remote server).
    pub host: String,
    /// The backend used (`logind`, `utmp`, `wts`, `fake`).
    pub backend: String,
    /// A failure that stopped all work on this host (unreachable, listing failed).
    pub error: Option<String>,
    /// What `--drain` or `--undrain` did here; `null` without them.
    pub drain: Option<DrainReport>,
    /// The plan.
    pub plan: Option<Plan>,
    /// The actions carried out, in order.
    pub actions: Vec<ActionRecord>,
    /// The verification; `None` on a dry run or when nothing was done.
    pub verification: Option<Verification>,
    /// The outcome per target user.
    pub users: Vec<UserResult>,
}

impl HostReport {
    /// A host with nothing planned or done yet.
    pub fn new(host: &str) -> HostReport {
        HostReport {
            host: host.to_string(),
            backend: "-".to_string(),
            error: None,
            drain: None,
            plan: None,
            actions: Vec::new(),
            verification: None,
            users: Vec::new(),
        }
    }
}

/// The counts over every host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Target users (accounts, or requested names that were not logged on).
    pub users_targeted: u64,
    /// Users verified logged off.
    pub users_logged_off: u64,
    /// Users who were not logged on.
    pub users_not_logged_on: u64,
    /// Users that failed or could not be verified.
    pub users_failed: u64,
    /// Users whose sessions were verified disconnected (`--disconnect`).
    pub users_disconnected: u64,
    /// Users a session filter left alone.
    pub users_left_alone: u64,
    /// Sessions whose logoff was requested.
    pub sessions_logged_off: u64,
    /// Sessions already gone when acted on.
    pub sessions_already_gone: u64,
    /// Processes signalled or terminated.
    pub processes_terminated: u64,
    /// Actions that failed.
    pub actions_failed: u64,
    /// Hosts where work could not be done at all.
    pub hosts_failed: u64,
    /// Warning messages delivered to a session (`--message`).
    pub messages_delivered: u64,
    /// Warning messages that could not be delivered.
    pub messages_failed: u64,
    /// Users whose profile was still loaded at the deadline (Windows).
    pub profiles_still_loaded: u64,
    /// The run was cancelled during the grace period (exit 4): no one was logged off.
    pub cancelled: bool,
    /// The exit code of the run.
    pub exit_code: i32,
}

impl Summary {
    /// Counts what happened on `hosts`. The exit code is left 0: see [`exit_code`].
    pub fn of(hosts: &[HostReport]) -> Summary {
        let mut s = Summary::default();
        for h in hosts {
            s.hosts_failed += u64::from(h.error.is_some());
            for u in &h.users {
                s.users_targeted += 1;
                match u.outcome {
                    UserOutcome::LoggedOff => s.users_logged_off += 1,
                    UserOutcome::NotLoggedOn => s.users_not_logged_on += 1,
                    UserOutcome::Failed => s.users_failed += 1,
                    UserOutcome::Disconnected => s.users_disconnected += 1,
                    UserOutcome::LeftAlone => s.users_left_alone += 1,
                    UserOutcome::Planned => {}
                }
                s.profiles_still_loaded += u64::from(u.profile_unloaded == Some(ProfileUnloaded::No));
            }
            for a in &h.actions {
                match (a.action, a.result) {
                    (ActionKind::SendMessage, ActionResult::Failed) => s.messages_failed += 1,
                    (ActionKind::SendMessage, _) => s.messages_delivered += 1,
                    (_, ActionResult::Failed) => s.actions_failed += 1,
                    (ActionKind::LogoffSession, ActionResult::Requested) => s.sessions_logged_off += 1,
                    (ActionKind::LogoffSession, ActionResult::AlreadyGone) => s.sessions_already_gone += 1,
                    _ => {}
                }
                s.processes_terminated += a.signalled.unwrap_or(0);
            }
        }
        s
    }
}

/// What was asked for (`Default`: nothing, for a run refused before its request was known).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Request {
    /// ALL was asked for.
    pub all: bool,
    /// The names asked for, normalized.
    pub users: Vec<String>,
    /// The names excluded.
    pub exclude: Vec<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--timeout`, in milliseconds.
    pub timeout_ms: u64,
    /// `--orphans`.
    pub orphans: bool,
    /// `--drain` or `--undrain`.
    pub drain: Option<DrainStep>,
}

/// Why a run stopped before it logged anyone off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Bad input or usage, or a refused target: nothing was done (exit 2).
    Usage,
    /// Not enough privilege, or this OS is not supported: nothing was done (exit 3).
    Privilege,
    /// Ctrl-C or SIGTERM during the grace period: warnings went out, no one was logged
    /// off (exit 4).
    Cancelled,
}

/// The whole JSON document of a logoff run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// `logoff-users x.y.z`.
    pub tool: String,
    /// What was asked for.
    pub request: Request,
    /// A failure that stopped the whole run before anything was done (bad input, no
    /// privilege, a refused target); `None` otherwise.
    pub error: Option<String>,
    /// Why the run stopped early, if it did (not in the JSON: `error` and the exit code
    /// say it there).
    #[serde(skip)]
    pub stop: Option<Stop>,
    /// One entry per host.
    pub hosts: Vec<HostReport>,
    /// Counts, and the exit code.
    pub summary: Summary,
}

/// `logoff-users x.y.z`.
pub fn tool_version() -> String {
    format!("logoff-users {}", env!("CARGO_PKG_VERSION"))
}

impl Report {
    /// A report of `hosts` for `request`, with its summary and exit code filled in.
    pub fn new(request: Request, hosts: Vec<HostReport>, stop: Option<Stop>, error: Option<String>) -> Report {
        let mut r = Report {
            version: REPORT_VERSION,
            tool: tool_version(),
            request,
            error,
            stop,
            hosts,
            summary: Summary::default(),
        };
        r.summary = Summary::of(&r.hosts);
        r.summary.cancelled = stop == Some(Stop::Cancelled);
        r.summary.exit_code = exit_code(&r);
        r
    }
}

/// Every targeted user is logged off (a user who was not logged on counts as done).
pub const EXIT_OK: i32 = 0;
/// Some action failed or could not be verified.
pub const EXIT_FAILED: i32 = 1;
/// Bad input or usage, or a refused target; nothing was done.
pub const EXIT_USAGE: i32 = 2;
/// Not enough privilege to act, or this OS is not supported; nothing was done.
pub const EXIT_PRIVILEGE: i32 = 3;
/// Cancelled (Ctrl-C, SIGTERM) during the grace period; no one was logged off.
pub const EXIT_CANCELLED: i32 = 4;

/// The exit code of a run, 0 to 4: a stop decides it; otherwise any failed host, user or
/// action, a verification that did not pass, or a drain (undrain) after which new logons
/// are not refused (allowed), makes it 1. Undelivered warnings alone do not fail a run.
pub fn exit_code(r: &Report) -> i32 {
    match r.stop {
        Some(Stop::Usage) => return EXIT_USAGE,
        Some(Stop::Privilege) => return EXIT_PRIVILEGE,
        Some(Stop::Cancelled) => return EXIT_CANCELLED,
        None => {}
    }
    let drain_failed = |d: &DrainReport| r.request.drain.is_some_and(|step| !d.succeeded(step));
    let failed = r.hosts.iter().any(|h| {
        h.error.is_some()
            || h.drain.as_ref().is_some_and(drain_failed)
            || h.users.iter().any(|u| u.outcome == UserOutcome::Failed)
            || h.actions.iter().any(ActionRecord::failed_action)
            || h.verification.as_ref().is_some_and(|v| !v.verified)
    });
    if failed { EXIT_FAILED } else { EXIT_OK }
}

/// The JSON document of `--list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionList {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// One entry per host.
    pub hosts: Vec<HostSessions>,
}

/// The sessions of one host, for `--list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSessions {
    /// The host name.
    pub host: String,
    /// The backend used.
    pub backend: String,
    /// A failure that stopped listing this host.
    pub error: Option<String>,
    /// Whether new logons are refused here (see [`crate::drain`]); `null` where the
    /// backend has no drain (a remote server).
    pub drain: Option<DrainStatus>,
    /// The sessions.
    pub sessions: Vec<Session>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            all: false,
            users: vec!["alice".into()],
            exclude: vec![],
            dry_run: false,
            timeout_ms: 1000,
            orphans: false,
            drain: None,
        }
    }

    fn host(outcome: UserOutcome) -> HostReport {
        let mut h = HostReport::new("localhost");
        h.users.push(UserResult {
            requested: "alice".into(),
            user: Some("alice".into()),
            outcome,
            profile_unloaded: None,
        });
        h
    }

    fn verification(verified: bool) -> Verification {
        Verification {
            verified,
            timed_out: !verified,
            elapsed_ms: 1,
            polls: 1,
            zombies: 0,
            remaining: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn string_tables_round_trip() {
        crate::words::assert_round_trips(ActionResult::ALL);
        crate::words::assert_round_trips(UserOutcome::ALL);
    }

    #[test]
    fn exit_code_0_when_every_user_is_done() {
        let mut ok = host(UserOutcome::LoggedOff);
        ok.verification = Some(verification(true));
        ok.users.push(UserResult {
            requested: "bob".into(),
            user: None,
            outcome: UserOutcome::NotLoggedOn,
            profile_unloaded: None,
        });
        // An undelivered warning alone does not fail the run.
        let mut msg = ActionRecord::new(ActionKind::SendMessage, "alice", Some("2"));
        msg.result = ActionResult::Failed;
        ok.actions.push(msg);
        let r = Report::new(request(), vec![ok], None, None);
        assert_eq!((r.summary.exit_code, r.summary.messages_failed, r.summary.users_logged_off), (0, 1, 1));
    }

    #[test]
    fn exit_code_1_for_each_kind_of_failure() {
        let failed_user = host(UserOutcome::Failed);
        let mut failed_action = host(UserOutcome::LoggedOff);
        let mut a = ActionRecord::new(ActionKind::LogoffSession, "alice", Some("2"));
        a.result = ActionResult::Failed;
        failed_action.actions.push(a);
        let mut unverified = host(UserOutcome::LoggedOff);
        unverified.verification = Some(verification(false));
        let mut host_error = HostReport::new("rds02");
        host_error.error = Some("could not open server rds02: The RPC server is unavailable.".into());
        let mut profile_loaded = host(UserOutcome::Failed);
        profile_loaded.users[0].profile_unloaded = Some(ProfileUnloaded::No);
        let mut drain_failed = host(UserOutcome::LoggedOff);
        drain_failed.drain = Some(DrainReport::failed(&crate::error::Error::new(
            crate::error::ErrorKind::Os,
            "write /run/nologin",
            "read-only file system",
        )));
        let mut still_refused = host(UserOutcome::LoggedOff);
        let status = DrainStatus { draining: true, ..DrainStatus::default() };
        still_refused.drain = Some(DrainReport::new(crate::drain::DrainAction::NotOurs, status, "theirs"));
        for h in [failed_user, failed_action, unverified, host_error, profile_loaded, drain_failed] {
            let mut req = request();
            req.drain = h.drain.as_ref().map(|_| DrainStep::Drain);
            let r = Report::new(req, vec![host(UserOutcome::LoggedOff), h.clone()], None, None);
            assert_eq!(r.summary.exit_code, 1, "{h:?}");
        }
        // An undrain after which logons stay refused (by someone else's drain) fails.
        let req = Request { drain: Some(DrainStep::Undrain), ..request() };
        assert_eq!(Report::new(req.clone(), vec![still_refused.clone()], None, None).summary.exit_code, 1);
        // The same state after a drain is its success.
        let req = Request { drain: Some(DrainStep::Drain), ..req };
        assert_eq!(Report::new(req, vec![still_refused], None, None).summary.exit_code, 0);
    }

    #[test]
    fn exit_codes_2_3_4_come_from_the_stop() {
        let cases = [(Stop::Usage, 2), (Stop::Privilege, 3), (Stop::Cancelled, 4)];
        for (stop, code) in cases {
            // A stop decides the code even when a host failed too.
            let r = Report::new(request(), vec![host(UserOutcome::Failed)], Some(stop), Some("why".into()));
            assert_eq!(r.summary.exit_code, code, "{stop:?}");
            assert_eq!(r.summary.cancelled, stop == Stop::Cancelled);
        }
    }
}
