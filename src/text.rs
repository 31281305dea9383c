//! The text output: every line the tool prints for people and RMM script logs (events,
//! the session table, the summary, the error lines) is rendered here and nowhere else.
//!
//! Lines are plain, one per event, without colour, so that an RMM script log stays
//! readable. The JSON document is `crate::report`'s.

use std::fmt;
use std::time::Duration;

use crate::duration::format_duration;
use crate::event::{Event, Would};
use crate::plan::TerminateReason;
use crate::report::{ActionKind, ActionRecord, ActionResult, HostSessions, Report, Stop, Summary};
use crate::schedule::{CancelDoc, JobEvent, JobState, JobView, PendingDoc};

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
            Event::LoggingOff { user, session_id, station } => match station {
                Some(st) => write!(f, "logging off session {session_id} ({st}) of {user}"),
                None => write!(f, "logging off session {session_id} of {user}"),
            },
            Event::Disconnecting { user, session_id } => write!(f, "disconnecting session {session_id} of {user}"),
            Event::Terminating { user, reason, processes } => {
                let why = match reason {
                    TerminateReason::Fallback => "no session; fallback: terminating",
                    TerminateReason::Sweep => "terminating remaining",
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
        }
    }
}

/// The last line of a run's text log; `None` for a run refused before any host was
/// looked at (its error line says everything).
pub fn summary_line(r: &Report) -> Option<String> {
    if r.error.is_some() && r.hosts.is_empty() {
        return None;
    }
    Some(summary_text(&r.summary, r.request.dry_run || r.error.is_some()))
}

/// The summary line; `nothing_done` for a dry run, or a run refused before acting.
fn summary_text(s: &Summary, nothing_done: bool) -> String {
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
    let mut extra = String::new();
    if s.users_disconnected > 0 {
        extra.push_str(&format!(", {} user(s) disconnected", s.users_disconnected));
    }
    if s.users_left_alone > 0 {
        extra.push_str(&format!(", {} user(s) left alone by the filters", s.users_left_alone));
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
                s.idle_seconds.map(|i| format_duration(Duration::from_secs(i))).unwrap_or_else(|| "-".into()),
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

// ---- scheduled logoffs (`crate::schedule`) -------------------------------------------------

/// Text from outside (names, messages, who scheduled a job, errors) with every control
/// character shown escaped, so that it can never start a line of its own.
fn untrusted(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// Formats seconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn format_time_secs(secs: i64) -> String {
    format!("{}:{:02}", format_time(secs), secs.rem_euclid(60))
}

fn due_text(due_ms: u64) -> String {
    format_time_secs((due_ms / 1000) as i64)
}

impl fmt::Display for JobEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobEvent::Scheduled { id, targets, due_ms, now_ms, mechanism } => write!(
                f,
                "scheduled: job {id} logs off {} at {} UTC (in {}), run by {}; cancel with: logoff-users --cancel {id}",
                untrusted(targets),
                due_text(*due_ms),
                ms(due_ms.saturating_sub(*now_ms).div_ceil(1000) * 1000),
                untrusted(mechanism)
            ),
            JobEvent::Waiting { id, due_ms, mechanism } => {
                write!(f, "job {id}: waiting until {} UTC", due_text(*due_ms))?;
                match mechanism {
                    Some(m) => write!(f, " (run by {})", untrusted(m)),
                    None => Ok(()),
                }
            }
            JobEvent::Reminder { id, left_ms } => write!(f, "job {id}: reminder, {} left", ms(*left_ms)),
            JobEvent::NotPending { id, state: JobState::Cancelled, by } => {
                let by = by.as_deref().map(|b| format!(" by {}", untrusted(b))).unwrap_or_default();
                write!(f, "job {id}: cancelled{by}: no one was logged off by it")
            }
            JobEvent::NotPending { id, state, .. } => write!(f, "job {id}: {state}, not pending: nothing to do"),
            JobEvent::Starting { id } => write!(f, "job {id}: due: logging off now (too late to cancel)"),
            JobEvent::Finished { id, state, exit_code } => write!(f, "job {id}: {state} (exit {exit_code})"),
            JobEvent::Abandoned { id, why } => write!(f, "job {id}: failed: {}", untrusted(why)),
            JobEvent::Cancelled { id, targets, due_ms, already } => {
                let what = if *already { "was cancelled already" } else { "cancelled" };
                write!(
                    f,
                    "{what}: job {id} (log off {} at {} UTC): no one will be logged off by it",
                    untrusted(targets),
                    due_text(*due_ms)
                )
            }
            JobEvent::TooLate { id, state, started_ms } => {
                let when =
                    started_ms.map(|t| format!(" at {} UTC", format_time_secs((t / 1000) as i64))).unwrap_or_default();
                write!(f, "too late: job {id} started logging off{when} and is {state}: it was not cancelled")
            }
            JobEvent::Unknown { id, dir } => write!(f, "unknown job: no job {id} in {}", untrusted(dir)),
            JobEvent::NothingPending => write!(f, "nothing to cancel: no job is pending"),
            JobEvent::Refused { file, reason } => {
                write!(f, "REFUSED: job file {}: {}", untrusted(file), untrusted(reason))
            }
        }
    }
}

/// The state column of a job: `done (exit 0)`, `failed (exit 1)`, `pending`, ...
fn job_state(j: &JobView) -> String {
    match (j.state, j.exit_code) {
        (JobState::Done | JobState::Failed, Some(code)) => format!("{} (exit {code})", j.state),
        (s, _) => s.to_string(),
    }
}

/// Whom a job targets, with its filters: `alice,bob (exclude carol; disconnected only)`.
fn job_targets(j: &JobView) -> String {
    let t = &j.targets;
    let mut out = if t.all { "ALL".to_string() } else { t.users.join(",") };
    let mut extra = Vec::new();
    if !t.exclude.is_empty() {
        extra.push(format!("exclude {}", t.exclude.join(",")));
    }
    if t.disconnected_only {
        extra.push("disconnected only".to_string());
    }
    if let Some(s) = t.idle_over_s {
        extra.push(format!("idle over {}", format_duration(Duration::from_secs(s))));
    }
    if t.disconnect {
        extra.push("disconnect".to_string());
    }
    if !extra.is_empty() {
        out.push_str(&format!(" ({})", extra.join("; ")));
    }
    untrusted(&out)
}

/// `--pending` as a table (one row per job) followed by one line per job that failed to
/// run or was refused; "no jobs" when there are none.
pub fn pending_table(doc: &PendingDoc) -> String {
    let mut out = String::new();
    if doc.jobs.is_empty() {
        out.push_str(&format!("no scheduled logoffs in {}\n", untrusted(&doc.dir)));
    } else {
        let mut rows =
            vec![["ID", "STATE", "DUE (UTC)", "SCHEDULED (UTC)", "BY", "TARGETS"].map(String::from).to_vec()];
        for j in &doc.jobs {
            rows.push(vec![
                j.id.clone(),
                job_state(j),
                format_time_secs(j.due),
                format_time_secs(j.scheduled_at),
                untrusted(&j.scheduled_by),
                job_targets(j),
            ]);
        }
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        for r in &rows {
            let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        for j in &doc.jobs {
            if let Some(e) = &j.error {
                out.push_str(&format!("job {}: {}\n", j.id, untrusted(e)));
            }
            if let Some(by) = &j.cancelled_by {
                out.push_str(&format!("job {}: cancelled by {}\n", j.id, untrusted(by)));
            }
        }
    }
    for r in &doc.refused {
        out.push_str(&format!("{}\n", JobEvent::Refused { file: r.file.clone(), reason: r.reason.clone() }));
    }
    if let Some(e) = &doc.error {
        out.push_str(&format!("error: {}\n", untrusted(e)));
    }
    out
}

/// The last line of `--detach` that could not schedule, or of `--cancel`.
pub fn schedule_error_line(error: &str) -> String {
    format!("error: {}; nothing was scheduled", untrusted(error))
}

/// The last line of `--cancel`.
pub fn cancel_summary_line(doc: &CancelDoc) -> String {
    if let Some(e) = &doc.error {
        return format!("error: {} (exit {})", untrusted(e), doc.exit_code);
    }
    format!(
        "summary: {} job(s) cancelled, {} too late to cancel, {} refused{} (exit {})",
        doc.cancelled.len(),
        doc.too_late.len(),
        doc.refused.len(),
        doc.unknown.as_ref().map(|id| format!(", job {id} unknown")).unwrap_or_default(),
        doc.exit_code
    )
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
        assert_eq!(format_time_secs(1_795_000_059), "2026-11-18 11:07:39");
    }

    #[test]
    fn job_lines_escape_what_came_from_outside() {
        let e =
            JobEvent::Cancelled { id: "0000beef".into(), targets: "bob\nFAKE".into(), due_ms: 1_000, already: false };
        assert_eq!(
            e.to_string(),
            "cancelled: job 0000beef (log off bob\\nFAKE at 1970-01-01 00:00:01 UTC): no one will be logged off by it"
        );
        let e = JobEvent::Refused { file: "x.json".into(), reason: "owned by uid 1000\nok: forged".into() };
        assert!(!e.to_string().contains('\n'), "{e}");
        let e = JobEvent::NotPending { id: "0000beef".into(), state: JobState::Cancelled, by: Some("root\r".into()) };
        assert_eq!(e.to_string(), "job 0000beef: cancelled by root\\r: no one was logged off by it");
    }
}
