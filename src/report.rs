//! The report: the versioned JSON document (`--format json`) and the plain text log.
//!
//! The JSON document is an interface: scripts and the Ansible role read it. Its top level
//! is [`Report`] with `version` = [`REPORT_VERSION`]; every field is snake_case. A change to
//! its shape bumps the version. The text log is one plain line per [`Event`], printed as it
//! happens, then one summary line; it carries no colour, so an RMM script log stays
//! readable.

use serde::Serialize;

use crate::model::Session;
use crate::plan::Plan;

/// The version of the JSON document.
pub const REPORT_VERSION: u32 = 1;

/// The outcome of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionResult {
    /// The OS accepted the request.
    Requested,
    /// The session or processes were already gone: not an error.
    AlreadyGone,
    /// The request failed; see `error`.
    Failed,
}

/// One action carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRecord {
    /// `logoff_session`, `disconnect_session`, `terminate_processes` or `send_message`.
    pub action: String,
    /// The account, `DOMAIN\user`.
    pub user: String,
    /// The session, for `logoff_session`.
    pub session_id: Option<String>,
    /// `fallback` or `sweep`, for `terminate_processes`.
    pub reason: Option<String>,
    /// What happened.
    pub result: ActionResult,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// Processes signalled or terminated, for `terminate_processes`.
    pub signalled: Option<u64>,
    /// The method used, for `terminate_processes`.
    pub method: Option<String>,
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

/// The final outcome for one target user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserOutcome {
    /// Sessions and processes verified gone.
    LoggedOff,
    /// Not logged on: nothing to do, counts as done.
    NotLoggedOn,
    /// Something of the user's remained after the timeout, or an action failed.
    Failed,
    /// Dry run: planned, not done.
    Planned,
    /// `--disconnect`: every session verified disconnected (or gone).
    Disconnected,
    /// A session filter left every session of the user running: nothing done.
    LeftAlone,
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
    /// The plan.
    pub plan: Option<Plan>,
    /// The actions carried out, in order.
    pub actions: Vec<ActionRecord>,
    /// The verification; `None` on a dry run or when nothing was done.
    pub verification: Option<Verification>,
    /// The outcome per target user.
    pub users: Vec<UserResult>,
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
    /// The run was cancelled during the grace period (exit 4): no one was logged off.
    pub cancelled: bool,
    /// The exit code of the run.
    pub exit_code: i32,
}

/// What was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// One entry per host.
    pub hosts: Vec<HostReport>,
    /// Counts, and the exit code.
    pub summary: Summary,
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
    /// The sessions.
    pub sessions: Vec<Session>,
}

/// One line of the text log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Starting on a host.
    Host { host: String, backend: String },
    /// Starting on a user.
    User { requested: String, user: String, sessions: usize, processes: usize },
    /// A named user with no session and no process.
    NotLoggedOn { requested: String },
    /// A session ALL leaves alone.
    Skipped { session_id: String, user: String, reason: String },
    /// A note from the plan.
    Note { user: String, note: String },
    /// A logoff is about to be requested.
    LoggingOff { user: String, session_id: String, station: Option<String> },
    /// A process termination is about to start.
    Terminating { user: String, reason: String, processes: usize },
    /// An action's result.
    Action(ActionRecord),
    /// Verification is waiting.
    Waiting { timeout_ms: u64 },
    /// A user verified gone.
    VerifiedGone { user: String, zombies: u64 },
    /// A user still present after the timeout.
    StillPresent { user: String, sessions: Vec<String>, pids: Vec<u32>, uninterruptible: Vec<u32> },
    /// The grace period started, or a countdown point passed.
    Countdown { remaining_ms: u64, reminder: bool },
    /// Ctrl-C or SIGTERM during the grace period.
    Cancelled,
    /// A note about the whole run.
    Notice(String),
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Host { host, backend } => write!(f, "host {host} (backend {backend})"),
            Event::User { requested, user, sessions, processes } => {
                let via =
                    if requested == user || requested == "ALL" { String::new() } else { format!(" (as {requested})") };
                write!(f, "processing user {user}{via}: {sessions} session(s), {processes} process(es)")
            }
            Event::NotLoggedOn { requested } => write!(f, "user {requested}: not logged on, nothing to do"),
            Event::Skipped { session_id, user, reason } => {
                write!(f, "skipping session {session_id} of {user}: {reason}")
            }
            Event::Note { user, note } => write!(f, "user {user}: {note}"),
            Event::LoggingOff { user, session_id, station } => match station {
                Some(st) => write!(f, "logging off session {session_id} ({st}) of {user}"),
                None => write!(f, "logging off session {session_id} of {user}"),
            },
            Event::Terminating { user, reason, processes } => {
                let why =
                    if reason == "fallback" { "no session; fallback: terminating" } else { "terminating remaining" };
                write!(f, "user {user}: {why} processes ({processes} listed)")
            }
            Event::Action(a) => {
                let what = match &a.session_id {
                    Some(id) => format!("session {id} of {}", a.user),
                    None => format!("processes of {}", a.user),
                };
                match a.result {
                    ActionResult::Requested => match (a.signalled, &a.method, a.action.as_str()) {
                        (Some(n), Some(m), _) => write!(f, "  ok: {what}: {n} signalled ({m})"),
                        (_, _, "send_message") => write!(f, "  ok: {what}: message delivered"),
                        (_, _, "disconnect_session") => write!(f, "  ok: {what}: disconnect requested"),
                        _ => write!(f, "  ok: {what}: logoff requested"),
                    },
                    ActionResult::AlreadyGone => write!(f, "  ok: {what}: already gone"),
                    ActionResult::Failed => {
                        write!(f, "  FAILED: {what}: {}", a.error.as_deref().unwrap_or("unknown error"))
                    }
                }
            }
            Event::Waiting { timeout_ms } => write!(
                f,
                "verifying: waiting up to {} for sessions and processes to go",
                crate::duration::format_duration(std::time::Duration::from_millis(*timeout_ms))
            ),
            Event::VerifiedGone { user, zombies } => {
                if *zombies > 0 {
                    write!(f, "verified: {user} is logged off ({zombies} zombie(s) await reaping)")
                } else {
                    write!(f, "verified: {user} is logged off")
                }
            }
            Event::Countdown { remaining_ms, reminder } => {
                let left = crate::duration::format_duration(std::time::Duration::from_millis(*remaining_ms));
                if *remaining_ms == 0 {
                    write!(f, "grace period over: acting now")
                } else if *reminder {
                    write!(f, "countdown: {left} left; reminder sent")
                } else {
                    write!(f, "countdown: {left} left (Ctrl-C or SIGTERM cancels)")
                }
            }
            Event::Cancelled => write!(f, "cancelled during the grace period: no one was logged off"),
            Event::Notice(text) => f.write_str(text),
            Event::StillPresent { user, sessions, pids, uninterruptible } => {
                let list = |v: &[u32]| v.iter().take(20).map(u32::to_string).collect::<Vec<_>>().join(", ");
                write!(
                    f,
                    "STILL PRESENT after the timeout: {user}: session(s) [{}], process(es) [{}]",
                    sessions.join(", "),
                    list(pids)
                )?;
                if !uninterruptible.is_empty() {
                    write!(
                        f,
                        "; in uninterruptible sleep (D state, they die only when they wake): [{}]",
                        list(uninterruptible)
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl Summary {
    /// The final text line.
    /// `nothing_done` is true for a dry run, or a run refused before acting.
    pub fn line(&self, nothing_done: bool) -> String {
        if self.cancelled {
            return format!(
                "summary: cancelled during the grace period; {} message(s) delivered, no one was logged off (exit {})",
                self.messages_delivered, self.exit_code
            );
        }
        if nothing_done {
            return format!(
                "summary: {} user(s) targeted, {} not logged on; nothing was done (exit {})",
                self.users_targeted, self.users_not_logged_on, self.exit_code
            );
        }
        let mut extra = String::new();
        if self.users_disconnected > 0 {
            extra.push_str(&format!(", {} user(s) disconnected", self.users_disconnected));
        }
        if self.users_left_alone > 0 {
            extra.push_str(&format!(", {} user(s) left alone by the filters", self.users_left_alone));
        }
        if self.messages_delivered + self.messages_failed > 0 {
            extra.push_str(&format!(
                ", {} message(s) delivered, {} not delivered",
                self.messages_delivered, self.messages_failed
            ));
        }
        format!(
            "summary: {} user(s) targeted: {} logged off, {} not logged on, {} failed; {} session(s) logged off, {} already gone, {} process(es) terminated, {} action(s) failed{extra} (exit {})",
            self.users_targeted,
            self.users_logged_off,
            self.users_not_logged_on,
            self.users_failed,
            self.sessions_logged_off,
            self.sessions_already_gone,
            self.processes_terminated,
            self.actions_failed,
            self.exit_code
        )
    }
}

/// Formats seconds since the epoch as `YYYY-MM-DD HH:MM` UTC, independent of locale.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

/// Renders sessions as a locale-independent table, like `query user`.
pub fn session_table(hosts: &[HostSessions]) -> String {
    let mut rows =
        vec![["HOST", "ID", "USER", "STATION", "STATE", "IDLE", "LOGON (UTC)", "FROM"].map(String::from).to_vec()];
    for h in hosts {
        for s in &h.sessions {
            rows.push(vec![
                h.host.clone(),
                s.id.clone(),
                s.account().display_name(),
                s.station.clone().unwrap_or_else(|| "-".into()),
                s.state.to_string(),
                s.idle_seconds
                    .map(|i| crate::duration::format_duration(std::time::Duration::from_secs(i)))
                    .unwrap_or_else(|| "-".into()),
                s.logon_time.map(format_time).unwrap_or_else(|| "-".into()),
                s.remote_host.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00");
        assert_eq!(format_time(1_795_000_000), "2026-11-18 11:06");
        assert_eq!(format_time(-86_400), "1969-12-31 00:00");
    }
}
