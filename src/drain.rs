//! Drain: no new logons while a host is cleared for maintenance, and undoing exactly that.
//!
//! `--drain` stops new logons before the warning, the wait and the logoff, so that nobody
//! logs on between the count of the sessions and the reboot; `--undrain` restores what the
//! drain changed, and nothing else. A drain stays in force on purpose when the tool ends or
//! dies: that is the point of it (a restart ends it, on both platforms). What the tool put
//! in force is written down first (who, when, what was there before), so that `--undrain`
//! can always tell its own drain from someone else's and restore the state before it.
//!
//! This module holds the model and the decisions, which are pure. The mechanisms are the
//! platforms' (reached through [`crate::backend::Backend::drain`]):
//!
//! - Linux: `/run/nologin` with the warning text, which `pam_nologin` shows to every
//!   non-root user it refuses; the record in `/run/logoff-users/drain.json` (root only).
//!   An existing `/run/nologin` (or `/etc/nologin`) that the tool did not write is never
//!   overwritten or removed.
//! - Windows: the RD Session Host drain mode that `change logon /drainuntilrestart` sets
//!   (`TSServerDrainMode` = 1 under `HKLM\SYSTEM\CurrentControlSet\Control\Terminal
//!   Server`); the previous value goes into a volatile key, gone at the restart with the
//!   drain itself.
//!
//! [`drain_host`] and [`undrain_host`] are what a run calls, and what a scheduled
//! (`--detach`ed) job can call at its own time.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::{Error, ErrorKind};
use crate::words::string_enum;

string_enum! {
    /// What a run is asked to do about new logons.
    pub enum DrainStep {
        /// `--drain`: stop new logons.
        Drain => "drain",
        /// `--undrain`: restore what a drain changed.
        Undrain => "undrain",
    }
}

string_enum! {
    /// What a drain or undrain did.
    pub enum DrainAction {
        /// New logons are now refused, by this run.
        Drained => "drained",
        /// A drain of this tool was in force already; kept as it was.
        AlreadyOurs => "already_drained",
        /// New logons were refused already by something this tool did not set; nothing
        /// was changed.
        AlreadyDraining => "already_draining",
        /// What the drain changed is restored.
        Undrained => "undrained",
        /// New logons are refused by something this tool did not set: left in place.
        NotOurs => "not_ours",
        /// What this tool set is no longer in force as it was set (changed or removed
        /// since): left as it is, and the record dropped.
        ChangedSince => "changed_since",
        /// Nothing to restore: new logons are not refused.
        NotDraining => "not_draining",
        /// A dry run: what `--drain` would do.
        Planned => "planned",
        /// It could not be done; see `error`.
        Failed => "failed",
    }
}

/// What a drain of this tool put in force: who, when, what, and what was there before,
/// which `--undrain` restores. Kept by the platform in a place only an administrator can
/// write, and reported in `--list` and the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainRecord {
    /// The version of this record's shape (1).
    pub version: u32,
    /// Who drained, as the OS says (see `invoked_by` in the audit trail).
    pub by: String,
    /// When, in seconds since the Unix epoch.
    pub at: i64,
    /// What was put in force, as people read it.
    pub set: String,
    /// What was there before, which `--undrain` restores.
    pub previous: String,
    /// Windows: the `TSServerDrainMode` value before (`None`: there was none).
    #[serde(default)]
    pub previous_value: Option<u32>,
    /// Windows: the `TSServerDrainMode` value written.
    #[serde(default)]
    pub set_value: Option<u32>,
    /// Linux: the exact text written to `/run/nologin`.
    #[serde(default)]
    pub text: Option<String>,
}

/// The version of [`DrainRecord`].
pub const RECORD_VERSION: u32 = 1;

/// Whether new logons are refused, by what, and whether by this tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainStatus {
    /// New logons (of other users than root or administrators) are refused now.
    pub draining: bool,
    /// What refuses them (`/run/nologin`, `TSServerDrainMode = 1 (drain until restart)`),
    /// or, when nothing does, what is there (`no /run/nologin`).
    pub mechanism: Option<String>,
    /// This tool's drain, when it is what is in force (and its record could be read: on
    /// Linux only root can).
    pub ours: Option<DrainRecord>,
}

/// What a drain or an undrain did on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    /// What was done.
    pub action: DrainAction,
    /// The state afterwards.
    #[serde(flatten)]
    pub status: DrainStatus,
    /// What happened, in words.
    pub detail: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl DrainReport {
    /// A report of `action` leaving `status`.
    pub fn new(action: DrainAction, status: DrainStatus, detail: impl Into<String>) -> DrainReport {
        DrainReport { action, status, detail: detail.into(), error: None }
    }

    /// The report of a drain or undrain that failed with `e`.
    pub fn failed(e: &Error) -> DrainReport {
        DrainReport {
            action: DrainAction::Failed,
            status: DrainStatus::default(),
            detail: String::new(),
            error: Some(e.to_string()),
        }
    }

    /// Whether the step reached its goal: after a drain new logons are refused (by
    /// whatever), after an undrain they are not. A dry run's plan is no failure.
    pub fn succeeded(&self, step: DrainStep) -> bool {
        match self.action {
            DrainAction::Failed => false,
            DrainAction::Planned => true,
            _ => self.status.draining == (step == DrainStep::Drain),
        }
    }
}

/// What a drain asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainRequest {
    /// What refused users are told (Linux; Windows has no text): the warning, or a default.
    pub text: String,
    /// Who drains.
    pub by: String,
    /// When, in seconds since the Unix epoch.
    pub at: i64,
}

/// What a drain does, given what is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainDecision {
    /// Nothing refuses logons: put the drain in force.
    Apply,
    /// This tool's drain is in force: keep it as it is.
    KeepOurs,
    /// Something else refuses logons: change nothing.
    LeaveTheirs,
}

/// Decides a drain: `ours_in_force` when the record matches what is in force (the same
/// `/run/nologin` text, the same drain-mode value), `draining` when logons are refused.
pub fn decide_drain(draining: bool, ours_in_force: bool) -> DrainDecision {
    match (ours_in_force, draining) {
        (true, _) => DrainDecision::KeepOurs,
        (false, true) => DrainDecision::LeaveTheirs,
        (false, false) => DrainDecision::Apply,
    }
}

/// What an undrain does, given the record and what is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndrainDecision {
    /// This tool's drain is in force as it was set: restore what was there before.
    Restore,
    /// There is a record, but what is in force is not what was set: change nothing, drop
    /// the record.
    ChangedSince,
    /// No record, and logons are refused: by someone else; leave it.
    NotOurs,
    /// No record, and logons are allowed: nothing to do.
    NothingToDo,
}

/// Decides an undrain: `record` when a record of this tool exists, `ours_in_force` when it
/// matches what is in force, `draining` when logons are refused.
pub fn decide_undrain(record: bool, ours_in_force: bool, draining: bool) -> UndrainDecision {
    match (record, ours_in_force, draining) {
        (true, true, _) => UndrainDecision::Restore,
        (true, false, _) => UndrainDecision::ChangedSince,
        (false, _, true) => UndrainDecision::NotOurs,
        (false, _, false) => UndrainDecision::NothingToDo,
    }
}

/// The text refused users read when no warning is given.
pub const DEFAULT_TEXT: &str = "This host is being cleared for maintenance: new logons are refused.";

/// A drain request for `text` (the warning, or [`DEFAULT_TEXT`]), by the OS's idea of who
/// runs the tool, now.
pub fn request(text: Option<&str>) -> DrainRequest {
    DrainRequest {
        text: text.unwrap_or(DEFAULT_TEXT).to_string(),
        by: crate::platform::invoker(),
        at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
    }
}

/// Drains one host: stops new logons there, unless they are refused already. Never fails
/// the caller: a failure is a report with [`DrainAction::Failed`] (and `Err` only for
/// what stops a run: no privilege, or a platform that cannot drain).
///
/// # Errors
///
/// `PermissionDenied` and `Unsupported` errors of the backend, which a run turns into
/// exit 3 with nothing done.
pub fn drain_host(backend: &mut dyn Backend, request: &DrainRequest) -> Result<DrainReport, Error> {
    report_of(backend.drain(request))
}

/// Undoes this tool's drain on one host (see [`drain_host`] for the errors).
///
/// # Errors
///
/// As for [`drain_host`].
pub fn undrain_host(backend: &mut dyn Backend) -> Result<DrainReport, Error> {
    report_of(backend.undrain())
}

/// A backend's drain or undrain as a report: a failure is a `Failed` report, but for what
/// stops a run (no privilege, or a platform that cannot drain).
fn report_of(done: Result<DrainReport, Error>) -> Result<DrainReport, Error> {
    match done {
        Err(e) if !matches!(e.kind, ErrorKind::PermissionDenied | ErrorKind::Unsupported) => {
            Ok(DrainReport::failed(&e))
        }
        other => other,
    }
}

/// Only the control characters a text file shows as text (newlines, tabs) stay: the
/// drain text is shown on the terminals of refused users.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_tables_round_trip() {
        crate::words::assert_round_trips(DrainStep::ALL);
        crate::words::assert_round_trips(DrainAction::ALL);
    }

    #[test]
    fn a_drain_never_touches_what_it_did_not_set() {
        use DrainDecision::*;
        // (draining, ours in force) -> decision
        let table = [((false, false), Apply), ((true, true), KeepOurs), ((true, false), LeaveTheirs)];
        for ((draining, ours), want) in table {
            assert_eq!(decide_drain(draining, ours), want, "draining {draining}, ours {ours}");
        }
    }

    #[test]
    fn an_undrain_restores_only_its_own() {
        use UndrainDecision::*;
        // (record, ours in force, draining) -> decision
        let table = [
            ((true, true, true), Restore),
            // Our /run/nologin replaced by another text, or our drain mode changed.
            ((true, false, true), ChangedSince),
            // Our /run/nologin removed by hand, or the restart reset the drain mode.
            ((true, false, false), ChangedSince),
            ((false, false, true), NotOurs),
            ((false, false, false), NothingToDo),
        ];
        for ((record, ours, draining), want) in table {
            assert_eq!(decide_undrain(record, ours, draining), want, "{record} {ours} {draining}");
        }
    }

    #[test]
    fn success_is_the_goal_reached() {
        let status = |draining| DrainStatus { draining, ..DrainStatus::default() };
        let r = |action, draining| DrainReport::new(action, status(draining), "");
        assert!(r(DrainAction::Drained, true).succeeded(DrainStep::Drain));
        assert!(r(DrainAction::AlreadyDraining, true).succeeded(DrainStep::Drain));
        assert!(r(DrainAction::Undrained, false).succeeded(DrainStep::Undrain));
        // Someone else's nologin: logons stay refused after --undrain; that is no success.
        assert!(!r(DrainAction::NotOurs, true).succeeded(DrainStep::Undrain));
        assert!(r(DrainAction::ChangedSince, false).succeeded(DrainStep::Undrain));
        let failed = DrainReport::failed(&Error::new(ErrorKind::Os, "write /run/nologin", "disk full"));
        assert!(!failed.succeeded(DrainStep::Drain));
        assert_eq!(failed.error.as_deref(), Some("could not write /run/nologin: disk full"));
    }

    #[test]
    fn the_text_keeps_newlines_and_loses_escapes() {
        assert_eq!(printable("Reboot at 22:00\n\x1b[2Jsave\twork\x07"), "Reboot at 22:00\n[2Jsave\twork");
    }
}
