//! The text output: every line the tool prints for people and RMM script logs (events,
//! the session table, the summary, the error lines) is rendered here and nowhere else.
//!
//! Lines are plain, one per event, without colour, so that an RMM script log stays
//! readable. The JSON document is `crate::report`'s.
//!
//! # Hostile text
//!
//! Much of what is printed was chosen by the users the tool acts on: user names and utmp
//! lines, RDP client names and hosts, process names (`prctl(PR_SET_NAME)`), and the error
//! texts that quote them. Every line is therefore written through [`Escaped`], which shows
//! each character that could end a line, move the cursor, talk to the terminal or reorder
//! the text ([`is_hostile`]) in a visible form instead (`\n`, `\x1b`, `\u{202e}`), the
//! way `escape_debug` and systemd's `cescape` do. A line rendered here is one line, and
//! holds no control character, whatever the OS or a user put in its fields. Printable
//! Unicode (`é`, `ß`, CJK) stays as it is, and so does `\`, which every Windows name
//! (`CORP\jsmith`) holds. The audit records (`crate::audit`) escape their values with the
//! same `escape_char`; the JSON document needs none of this, since serde escapes it.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::drain::{DrainAction, DrainReport, DrainStatus, DrainStep};
use crate::duration::format_duration;
use crate::event::{Event, Would};
use crate::plan::TerminateReason;
use crate::profile::ProfileUnloaded;
use crate::report::{ActionKind, ActionRecord, ActionResult, HostSessions, Report, Stop, Summary};
use crate::schedule::{CancelDoc, JobEvent, JobState, JobView, PendingDoc};

fn ms(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

/// Whether `c` must never reach a terminal or a log raw: a control character (C0, DEL,
/// C1: newline, carriage return, escape, ...), a bidirectional formatting character (which
/// can make a line read backwards), or a Unicode line or paragraph separator.
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Writes the visible form of a hostile character: `\n`, `\r`, `\t`, `\x1b` (the rest of
/// ASCII), `\u{85}` (the rest).
pub(crate) fn escape_char(c: char, out: &mut dyn fmt::Write) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if c.is_ascii() => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

/// A writer that escapes every hostile character ([`is_hostile`]) on its way to `W`.
pub struct Escaped<W>(pub W);

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(is_hostile) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("a char at a found position");
            escape_char(c, &mut self.0)?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// `s` with every hostile character escaped; `s` itself when it holds none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(is_hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    Escaped(&mut out).write_str(s).expect("writing to a String cannot fail");
    Cow::Owned(out)
}

/// Escapes a multi-line text line by line: its newlines stay, anything else hostile is
/// escaped (for clap's own messages, which quote the arguments).
pub fn escape_lines(s: &str) -> String {
    s.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

/// The warning line for something that failed on the side, with `cause` escaped.
pub fn warning_line(what: &str, cause: &dyn fmt::Display) -> String {
    format!("warning: {what}: {}", escape(&cause.to_string()))
}

/// The lines for standard error of a `--list` whose hosts failed.
pub fn list_error_lines(hosts: &[HostSessions]) -> Vec<String> {
    hosts.iter().filter_map(|h| h.error.as_deref()).map(|e| format!("error: {}", escape(e))).collect()
}

impl fmt::Display for Event {
    /// One line: every field escaped ([`Escaped`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(&mut Escaped(f))
    }
}

impl Event {
    fn render(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        match self {
            Event::Host { host, backend } => write!(f, "host {host} (backend {backend})"),
            Event::HostFailed { host, error } => write!(f, "FAILED: host {host}: {error}"),
            Event::SameMachine { host, kept } => {
                write!(f, "host {host} is the same machine as {kept}: left out, each machine is taken once")
            }
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
            Event::Warning { sessions, text } => write!(f, "warning {sessions} session(s): {}", quoted(text)),
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
            Event::StillPresent { user, sessions, pids, names, uninterruptible } => {
                still_present(f, user, sessions, (pids, names), uninterruptible)
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
            Event::Would(w) => w.render(f),
        }
    }
}

/// A message text in double quotes, its own quotes and backslashes escaped (its hostile
/// characters are escaped on the way out, as every field's).
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What a user who has neither a session nor a process gets.
const NOT_LOGGED_ON: &str = "not logged on, nothing to do";

fn action_line(f: &mut dyn fmt::Write, a: &ActionRecord) -> fmt::Result {
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
    f: &mut dyn fmt::Write,
    user: &str,
    sessions: &[String],
    (pids, names): (&[u32], &[String]),
    uninterruptible: &[u32],
) -> fmt::Result {
    let list = |v: &[u32]| v.iter().take(20).map(u32::to_string).collect::<Vec<_>>().join(", ");
    // Each process with its name, so that whoever reads the log knows what refused to go.
    let named = |(i, pid): (usize, &u32)| match names.get(i).filter(|n| !n.is_empty()) {
        Some(name) => format!("{pid} ({name})"),
        None => pid.to_string(),
    };
    let processes = pids.iter().enumerate().take(20).map(named).collect::<Vec<_>>().join(", ");
    write!(
        f,
        "STILL PRESENT after the timeout: {user}: session(s) [{}], process(es) [{processes}]",
        sessions.join(", ")
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

fn drain_line(f: &mut dyn fmt::Write, step: DrainStep, r: &DrainReport) -> fmt::Result {
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

fn countdown(f: &mut dyn fmt::Write, remaining_ms: u64, reminder: bool) -> fmt::Result {
    if remaining_ms == 0 {
        write!(f, "grace period over: acting now")
    } else if reminder {
        write!(f, "countdown: {} left; reminder sent", ms(remaining_ms))
    } else {
        write!(f, "countdown: {} left (Ctrl-C or SIGTERM cancels)", ms(remaining_ms))
    }
}

impl fmt::Display for Would {
    /// One line: every field escaped ([`Escaped`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(&mut Escaped(f))
    }
}

impl Would {
    fn render(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        match self {
            Would::Warn { text, grace_ms } => {
                write!(f, "would warn every planned session ({}) and wait {}", quoted(text), ms(*grace_ms))
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
        .flat_map(|(h, p)| p.refused.iter().map(|r| escape(&format!("error: {}", r.line(&h.host))).into_owned()))
        .collect();
    if !refusals.is_empty() {
        return refusals;
    }
    r.error.iter().map(|e| format!("error: {}; nothing was done", escape(e))).collect()
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

/// `rows` (a header first, cells already escaped) as left-aligned columns two blanks apart,
/// one line each.
fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Renders sessions as a locale-independent table, like `query user`.
pub fn session_table(hosts: &[HostSessions]) -> String {
    let mut rows =
        vec![["HOST", "ID", "USER", "STATION", "STATE", "IDLE", "LOGON (UTC)", "FROM"].map(String::from).to_vec()];
    for h in hosts {
        for s in &h.sessions {
            let cells = [
                h.host.clone(),
                s.id.clone(),
                s.display_name(),
                s.station.clone().unwrap_or_else(|| "-".into()),
                s.state.to_string(),
                s.idle_seconds.map(|i| format_duration(Duration::from_secs(i))).unwrap_or_else(|| "unknown".into()),
                s.logon_time.map(format_time).unwrap_or_else(|| "-".into()),
                s.remote_host.clone().unwrap_or_else(|| "-".into()),
            ];
            // Escaped before the widths are measured, so that the columns line up as shown.
            rows.push(cells.iter().map(|c| escape(c).into_owned()).collect());
        }
    }
    let mut out = columns(&rows);
    for h in hosts {
        if let Some(status) = &h.drain {
            out.push_str(&escape(&drain_state_line(&h.host, status)));
            out.push('\n');
        }
    }
    out
}

// ---- scheduled logoffs (`crate::schedule`) -------------------------------------------------

/// Text from outside (names, messages, who scheduled a job, errors), escaped ([`escape`])
/// so that it can never start a line of its own.
fn untrusted(text: &str) -> String {
    escape(text).into_owned()
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
    if t.orphans {
        if out.is_empty() {
            out.push_str("orphans");
        } else {
            extra.push("and orphans".to_string());
        }
    }
    if j.drained {
        extra.push("host drained".to_string());
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
        out.push_str(&columns(&rows));
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
    use crate::model::{Session, SessionState};
    use crate::testing::fuzz::render::{self, HOSTILE};

    #[test]
    fn hostile_characters_are_shown_not_sent() {
        for (raw, shown) in HOSTILE {
            assert_eq!(escape(raw), *shown, "{raw:?}");
            assert!(!escape(raw).contains(is_hostile), "{raw:?}");
        }
    }

    #[test]
    fn printable_text_stays_as_it_is() {
        for s in ["alice", "José Müller", "Straße", "山田太郎", "CORP\\jsmith", "👩‍💻 dev", "a\\nb", "ü ser;$(x)", ""]
        {
            assert!(matches!(escape(s), Cow::Borrowed(t) if t == s), "{s:?}");
        }
    }

    #[test]
    fn every_renderer_escapes_every_field() {
        for (raw, shown) in HOSTILE {
            let outputs = render::all(&[raw.to_string()]);
            assert!(outputs.len() > 40, "{}", outputs.len());
            for r in &outputs {
                render::check(r);
                if r.quotes_input {
                    assert!(r.text.contains(shown), "{}: {:?} does not show {shown:?}", r.what, r.text);
                }
            }
        }
    }

    #[test]
    fn a_forged_utmp_record_stays_on_its_line() {
        // The issue's record: a line field that would print a fake "verified" line and clear
        // the screen, a host field that would print a fake summary and retitle the terminal.
        let line = "pts/9\nverified: root is\x1b[2J";
        let host = "x\nsummary: 0 failed\x1b]0;pwned\x07";
        let mut s = Session::new("utmp:42", "alice", SessionState::Active);
        s.station = Some(line.into());
        s.remote_host = Some(host.into());
        let table = session_table(&[HostSessions {
            host: "localhost".into(),
            backend: "utmp".into(),
            error: None,
            sessions: vec![s],
            drain: None,
        }]);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert_eq!(
            rows[1],
            "localhost  utmp:42  alice  pts/9\\nverified: root is\\x1b[2J  active  unknown  -            x\\nsummary: 0 failed\\x1b]0;pwned\\x07"
        );
        let e = Event::LoggingOff { user: "alice".into(), session_id: "utmp:42".into(), station: Some(line.into()) };
        assert_eq!(e.to_string(), "logging off session utmp:42 (pts/9\\nverified: root is\\x1b[2J) of alice");
        let w = Would::Act {
            action: ActionKind::LogoffSession,
            session_id: "utmp:42".into(),
            station: Some(line.into()),
            user: "alice".into(),
        };
        assert_eq!(w.to_string(), "would log off session utmp:42 (pts/9\\nverified: root is\\x1b[2J) of alice");
    }

    #[test]
    fn still_present_lines_name_each_process_escaped() {
        let e = Event::StillPresent {
            user: "bob".into(),
            sessions: vec!["3".into()],
            pids: vec![41, 42, 43],
            names: vec!["sleep".into(), "x\x1b[2J\nverified".into()],
            uninterruptible: vec![42],
        };
        assert_eq!(
            e.to_string(),
            "STILL PRESENT after the timeout: bob: session(s) [3], process(es) [41 (sleep), 42 (x\\x1b[2J\\nverified), 43]; \
             in uninterruptible sleep (D state, they die only when they wake): [42]"
        );
    }

    #[test]
    fn error_lines_escape_the_error_and_each_refusal() {
        let request = crate::report::Request::default();
        let r = Report::new(request, Vec::new(), Some(Stop::Usage), Some("bad name \"a\nb\"".into()));
        assert_eq!(error_lines(&r), ["error: bad name \"a\\nb\"; nothing was done"]);
        let hosts = [HostSessions {
            host: "h".into(),
            backend: "-".into(),
            error: Some("could not read x\ny".into()),
            sessions: vec![],
            drain: None,
        }];
        assert_eq!(list_error_lines(&hosts), ["error: could not read x\\ny"]);
        assert_eq!(warning_line("could not", &"a\x1bb"), "warning: could not: a\\x1bb");
        assert_eq!(escape_lines("error: '\x1b'\n\ntip\n"), "error: '\\x1b'\n\ntip\n");
    }

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
