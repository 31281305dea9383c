//! The text output: every line the tool prints for people and RMM script logs (events,
//! the session table, the summary, the error lines) is rendered here and nowhere else.
//!
//! Lines are plain, one per event, without colour, so that an RMM script log stays
//! readable. The JSON document is `crate::report`'s.

use std::fmt;
use std::time::Duration;

use crate::drain::{DrainAction, DrainReport, DrainStatus, DrainStep};
use crate::duration::format_duration;
use crate::event::{Event, Would};
use crate::plan::TerminateReason;
use crate::profile::ProfileUnloaded;
use crate::report::{ActionKind, ActionRecord, ActionResult, HostSessions, Report, Stop, Summary};

fn ms(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Host { host, backend } => write!(f, "host {host} (backend {backend})"),
            Event::HostFailed { host, error } => write!(f, "FAILED: host {host}: {error}"),
            Event::User { requested, user, sessions, processes, all } => {
                let via = if requested == user || *all { String::new() } else { format!(" (as {requested})") };
                write!(f, "processing user {user}{via}: {sessions} session(s), {processes} process(es)")
            }
            Event::NotLoggedOn { requested } => write!(f, "user {requested}: {NOT_LOGGED_ON}"),
            Event::Skipped { session_id, user, reason } => {
                write!(f, "skipping session {session_id} of {user}: {reason}")
            }
            Event::Note { user, note } => write!(f, "user {user}: {note}"),
            Event::Spared { user, reason } => write!(f, "sparing user {user} (no live session): {reason}"),
            Event::LoggingOff { user, session_id, station } => match station {
                Some(st) => write!(f, "logging off session {session_id} ({st}) of {user}"),
                None => write!(f, "logging off session {session_id} of {user}"),
            },
            Event::Disconnecting { user, session_id } => write!(f, "disconnecting session {session_id} of {user}"),
            Event::Terminating { user, reason, processes } => {
                let why = match reason {
                    TerminateReason::Fallback => "no session; fallback: terminating",
                    TerminateReason::Sweep => "terminating remaining",
                    TerminateReason::Orphan => "no live session (orphan): terminating",
                };
                write!(f, "user {user}: {why} processes ({processes} listed)")
            }
            Event::Action(a) => action_line(f, a),
            Event::Repaired(what) => write!(f, "repaired: {what}"),
            Event::Warning { sessions, text } => write!(f, "warning {sessions} session(s): {text:?}"),
            Event::Waiting { timeout_ms } => {
                write!(f, "verifying: waiting up to {} for sessions and processes to go", ms(*timeout_ms))
            }
            Event::VerifiedGone { user, zombies } => {
                if *zombies > 0 {
                    write!(f, "verified: {user} is logged off ({zombies} zombie(s) await reaping)")
                } else {
                    write!(f, "verified: {user} is logged off")
                }
            }
            Event::StillPresent { user, sessions, pids, uninterruptible } => {
                still_present(f, user, sessions, pids, uninterruptible)
            }
            Event::Drain { step, report } => drain_line(f, *step, report),
            Event::WaitingProfiles { timeout_ms } => {
                write!(f, "waiting up to {} for the logged-off users' profiles to unload", ms(*timeout_ms))
            }
            Event::Profile { user, unloaded: ProfileUnloaded::Yes, detail } => write!(f, "profile of {user}: {detail}"),
            Event::Profile { user, unloaded: ProfileUnloaded::No, detail } => {
                write!(f, "PROFILE STILL LOADED after the timeout: {user}: {detail}; do not restart yet")
            }
            Event::Profile { user, unloaded: ProfileUnloaded::Unknown, detail } => {
                write!(f, "profile of {user}: unknown whether it is unloaded: {detail}")
            }
            Event::Countdown { remaining_ms, reminder } => countdown(f, *remaining_ms, *reminder),
            Event::Cancelled => write!(f, "cancelled during the grace period: no one was logged off"),
            Event::Would(w) => w.fmt(f),
        }
    }
}

/// What a user who has neither a session nor a process gets.
const NOT_LOGGED_ON: &str = "not logged on, nothing to do";

fn action_line(f: &mut fmt::Formatter<'_>, a: &ActionRecord) -> fmt::Result {
    let what = match &a.session_id {
        Some(id) => format!("session {id} of {}", a.user),
        None => format!("processes of {}", a.user),
    };
    match a.result {
        ActionResult::Requested => match (a.signalled, &a.method, a.action) {
            (Some(n), Some(m), _) => write!(f, "  ok: {what}: {n} signalled ({m})"),
            (_, _, ActionKind::SendMessage) => write!(f, "  ok: {what}: message delivered"),
            (_, _, ActionKind::DisconnectSession) => write!(f, "  ok: {what}: disconnect requested"),
            _ => write!(f, "  ok: {what}: logoff requested"),
        },
        ActionResult::AlreadyGone => write!(f, "  ok: {what}: already gone"),
        ActionResult::Failed => write!(f, "  FAILED: {what}: {}", a.error.as_deref().unwrap_or("unknown error")),
    }
}

fn still_present(
    f: &mut fmt::Formatter<'_>,
    user: &str,
    sessions: &[String],
    pids: &[u32],
    uninterruptible: &[u32],
) -> fmt::Result {
    let list = |v: &[u32]| v.iter().take(20).map(u32::to_string).collect::<Vec<_>>().join(", ");
    write!(
        f,
        "STILL PRESENT after the timeout: {user}: session(s) [{}], process(es) [{}]",
        sessions.join(", "),
        list(pids)
    )?;
    if !uninterruptible.is_empty() {
        write!(f, "; in uninterruptible sleep (D state, they die only when they wake): [{}]", list(uninterruptible))?;
    }
    Ok(())
}

/// Who drained and when, for a line: ` (by root, since 2026-05-01 21:55 UTC)`.
fn drained_by(status: &DrainStatus) -> String {
    status.ours.as_ref().map(|r| format!(" (by {}, since {} UTC)", r.by, format_time(r.at))).unwrap_or_default()
}

fn drain_line(f: &mut fmt::Formatter<'_>, step: DrainStep, r: &DrainReport) -> fmt::Result {
    let mechanism = r.status.mechanism.as_deref().unwrap_or("-");
    match r.action {
        DrainAction::Failed => write!(f, "FAILED: {step}: {}", r.error.as_deref().unwrap_or("unknown error")),
        DrainAction::Planned if r.status.draining => {
            write!(f, "would leave the drain as it is: new logons are refused already ({mechanism})")
        }
        DrainAction::Planned => write!(f, "would stop new logons first ({mechanism} now)"),
        DrainAction::Drained | DrainAction::AlreadyOurs => {
            write!(f, "drain: new logons refused{}: {}", drained_by(&r.status), r.detail)
        }
        DrainAction::AlreadyDraining => write!(f, "drain: {}", r.detail),
        DrainAction::Undrained => write!(f, "undrain: new logons allowed again: {}", r.detail),
        DrainAction::NotOurs => write!(f, "undrain: new logons are still refused: {}", r.detail),
        DrainAction::ChangedSince | DrainAction::NotDraining => {
            let state = if r.status.draining { "refused" } else { "allowed" };
            write!(f, "undrain: {}; new logons are {state} ({mechanism})", r.detail)
        }
    }
}

/// The drain state of each host, for `--list`.
fn drain_state_line(host: &str, status: &DrainStatus) -> String {
    let mechanism = status.mechanism.as_deref().unwrap_or("-");
    match (status.draining, &status.ours) {
        (true, Some(_)) => {
            format!("host {host}: new logons refused by this tool's drain{}: {mechanism}", drained_by(status))
        }
        (true, None) => format!("host {host}: new logons refused: {mechanism}"),
        (false, _) => format!("host {host}: new logons allowed ({mechanism})"),
    }
}

fn countdown(f: &mut fmt::Formatter<'_>, remaining_ms: u64, reminder: bool) -> fmt::Result {
    if remaining_ms == 0 {
        write!(f, "grace period over: acting now")
    } else if reminder {
        write!(f, "countdown: {} left; reminder sent", ms(remaining_ms))
    } else {
        write!(f, "countdown: {} left (Ctrl-C or SIGTERM cancels)", ms(remaining_ms))
    }
}

impl fmt::Display for Would {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Would::Warn { text, grace_ms } => {
                write!(f, "would warn every planned session ({text:?}) and wait {}", ms(*grace_ms))
            }
            Would::Skip { session_id, user, reason } => {
                write!(f, "would skip session {session_id} of {user}: {reason}")
            }
            Would::User { user, sessions, processes } => {
                write!(f, "user {user}: {sessions} session(s), {processes} process(es)")
            }
            Would::Act { action, session_id, station, user } => {
                let verb = if *action == ActionKind::DisconnectSession { "disconnect" } else { "log off" };
                let station = station.as_ref().map(|st| format!(" ({st})")).unwrap_or_default();
                write!(f, "would {verb} session {session_id}{station} of {user}")
            }
            Would::Terminate { user, reason: TerminateReason::Fallback, processes } => {
                write!(f, "would terminate the {processes} process(es) of {user} (no session: fallback)")
            }
            Would::Terminate { user, reason: TerminateReason::Sweep, .. } => {
                write!(f, "would then terminate every remaining process of {user}")
            }
            Would::Terminate { user, reason: TerminateReason::Orphan, processes } => {
                write!(f, "would terminate the {processes} process(es) of {user} (orphan: no live session)")
            }
        }
    }
}

/// The last line of a run's text log; `None` for a run refused before any host was
/// looked at (its error line says everything).
pub fn summary_line(r: &Report) -> Option<String> {
    if r.error.is_some() && r.hosts.is_empty() {
        return None;
    }
    let only_drain = !r.request.all && r.request.users.is_empty() && !r.request.orphans;
    if let (Some(step), true) = (r.request.drain, only_drain) {
        return Some(drain_summary(r, step));
    }
    let drained = r.request.drain.map(|step| format!(", {step}: {}", drain_states(r)));
    Some(summary_text(&r.summary, r.request.dry_run || r.error.is_some(), drained.as_deref().unwrap_or("")))
}

/// The summary of a run that only drained or undrained.
fn drain_summary(r: &Report, step: DrainStep) -> String {
    format!("summary: {step}: {} (exit {})", drain_states(r), r.summary.exit_code)
}

/// The drain state of every host, after a drain or undrain.
fn drain_states(r: &Report) -> String {
    let states: Vec<&str> = r
        .hosts
        .iter()
        .filter_map(|h| h.drain.as_ref())
        .map(|d| match (d.action, d.status.draining) {
            (DrainAction::Failed, _) => "failed",
            (DrainAction::Planned, _) => "planned, nothing done",
            (_, true) => "new logons refused",
            (_, false) => "new logons allowed",
        })
        .collect();
    if states.is_empty() { "nothing done".to_string() } else { states.join(", ") }
}

/// The summary line; `nothing_done` for a dry run, or a run refused before acting; `drain`
/// what the drain left, as `, drain: ...`, or empty.
fn summary_text(s: &Summary, nothing_done: bool, drain: &str) -> String {
    if s.cancelled {
        return format!(
            "summary: cancelled during the grace period; {} message(s) delivered, no one was logged off (exit {})",
            s.messages_delivered, s.exit_code
        );
    }
    if nothing_done {
        return format!(
            "summary: {} user(s) targeted, {} not logged on; nothing was done (exit {})",
            s.users_targeted, s.users_not_logged_on, s.exit_code
        );
    }
    let mut extra = drain.to_string();
    if s.users_disconnected > 0 {
        extra.push_str(&format!(", {} user(s) disconnected", s.users_disconnected));
    }
    if s.users_left_alone > 0 {
        extra.push_str(&format!(", {} user(s) left alone by the filters", s.users_left_alone));
    }
    if s.profiles_still_loaded > 0 {
        extra.push_str(&format!(", {} profile(s) still loaded", s.profiles_still_loaded));
    }
    if s.messages_delivered + s.messages_failed > 0 {
        extra
            .push_str(&format!(", {} message(s) delivered, {} not delivered", s.messages_delivered, s.messages_failed));
    }
    format!(
        "summary: {} user(s) targeted: {} logged off, {} not logged on, {} failed; {} session(s) logged off, {} already gone, {} process(es) terminated, {} action(s) failed{extra} (exit {})",
        s.users_targeted,
        s.users_logged_off,
        s.users_not_logged_on,
        s.users_failed,
        s.sessions_logged_off,
        s.sessions_already_gone,
        s.processes_terminated,
        s.actions_failed,
        s.exit_code
    )
}

/// The lines for standard error of a run that stopped before acting: each refused target,
/// or the one error.
pub fn error_lines(r: &Report) -> Vec<String> {
    if !matches!(r.stop, Some(Stop::Usage | Stop::Privilege)) {
        return Vec::new();
    }
    let refusals: Vec<String> = r
        .hosts
        .iter()
        .filter_map(|h| h.plan.as_ref().map(|p| (h, p)))
        .flat_map(|(h, p)| {
            p.refused.iter().map(move |r| {
                let session = r.session_id.as_ref().map(|s| format!(" (session {s})")).unwrap_or_default();
                format!("error: refused on {}: {}{session}: {}", h.host, r.user, r.reason)
            })
        })
        .collect();
    if !refusals.is_empty() {
        return refusals;
    }
    r.error.iter().map(|e| format!("error: {e}; nothing was done")).collect()
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
                s.display_name(),
                s.station.clone().unwrap_or_else(|| "-".into()),
                s.state.to_string(),
                s.idle_seconds.map(|i| format_duration(Duration::from_secs(i))).unwrap_or_else(|| "unknown".into()),
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
    for h in hosts {
        if let Some(status) = &h.drain {
            out.push_str(&drain_state_line(&h.host, status));
            out.push('\n');
        }
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
