//! The warn phase: a warning to every planned session, then a grace period with a
//! countdown and reminders, which Ctrl-C or SIGTERM cancels.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::duration::format_duration;
use crate::event::Event;
use crate::plan::Plan;
use crate::report::{ActionKind, ActionRecord, ActionResult};

/// The longest message Windows shows (`WTSSendMessageW`); longer ones are refused.
pub const MAX_MESSAGE_CHARS: usize = 255;

/// The title of the warning's message box or notification.
const TITLE: &str = "logoff-users";

/// Sends `text` to every session of `plan`, one `send_message` record per session.
pub(crate) fn send_messages(
    backend: &mut dyn Backend,
    plan: &Plan,
    text: &str,
    log: &mut dyn FnMut(Event),
) -> Vec<ActionRecord> {
    let mut out = Vec::new();
    for (account, s) in plan.sessions() {
        let mut rec = ActionRecord::new(ActionKind::SendMessage, &account.display_name(), Some(&s.id));
        if let Err(e) = backend.send_message(s, TITLE, text) {
            rec.result = ActionResult::Failed;
            rec.error = Some(e.to_string());
        }
        log(Event::Action(rec.clone()));
        out.push(rec);
    }
    out
}

/// The first warning: the text and the time left, when that fits the Windows limit.
pub(crate) fn first_warning(text: &str, grace: Duration) -> String {
    let first = format!("{text} (You will be logged off in {}.)", format_duration(grace));
    if first.chars().count() <= MAX_MESSAGE_CHARS { first } else { text.to_string() }
}

/// A reminder with `left` to go, cut to the Windows limit.
pub(crate) fn reminder(text: &str, left: Duration) -> String {
    let reminder = format!("Reminder: you will be logged off in {}. {text}", format_duration(left));
    reminder.chars().take(MAX_MESSAGE_CHARS).collect()
}

/// The points, as time left, at which a grace period of `grace` sends a reminder: each of
/// 1h, 30m, 15m, 10m, 5m, 2m, 1m and 30s that is shorter than the grace period, so a long
/// grace reminds more often as the end nears, and a grace of 30 s or less sends none.
pub fn reminder_points(grace: Duration) -> Vec<Duration> {
    [3600, 1800, 900, 600, 300, 120, 60, 30].into_iter().map(Duration::from_secs).filter(|p| *p < grace).collect()
}

/// Waits out a grace period, logging the countdown and calling `remind` with the time left
/// at each of `points` (see [`reminder_points`]). Returns `false` as soon as `cancel` is set
/// (Ctrl-C, SIGTERM), `true` when the grace period is over.
pub fn wait_grace(
    grace: Duration,
    points: &[Duration],
    cancel: &AtomicBool,
    remind: &mut dyn FnMut(Duration),
    log: &mut dyn FnMut(Event),
) -> bool {
    let start = Instant::now();
    let mut points = points.iter().copied().filter(|p| *p < grace).peekable();
    log(Event::Countdown { remaining_ms: grace.as_millis() as u64, reminder: false });
    loop {
        if cancel.load(Ordering::SeqCst) {
            log(Event::Cancelled);
            return false;
        }
        let left = grace.saturating_sub(start.elapsed());
        if left.is_zero() {
            log(Event::Countdown { remaining_ms: 0, reminder: false });
            return true;
        }
        if let Some(point) = points.peek().copied() {
            if left <= point {
                points.next();
                remind(point);
                log(Event::Countdown { remaining_ms: point.as_millis() as u64, reminder: true });
                continue;
            }
        }
        let next = points.peek().map(|p| left.saturating_sub(*p)).unwrap_or(left);
        std::thread::sleep(next.clamp(Duration::from_millis(1), Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_come_more_often_as_the_end_nears() {
        let secs = |g: u64| reminder_points(Duration::from_secs(g)).iter().map(Duration::as_secs).collect::<Vec<_>>();
        assert_eq!(secs(20), Vec::<u64>::new());
        assert_eq!(secs(90), [60, 30]);
        assert_eq!(secs(300), [120, 60, 30]);
        assert_eq!(secs(5400), [3600, 1800, 900, 600, 300, 120, 60, 30]);
    }

    #[test]
    fn warnings_fit_the_windows_limit() {
        assert_eq!(first_warning("Save now", Duration::from_secs(60)), "Save now (You will be logged off in 1m.)");
        let long = "x".repeat(250);
        assert_eq!(first_warning(&long, Duration::from_secs(60)), long);
        assert_eq!(reminder(&long, Duration::from_secs(30)).chars().count(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn grace_wait_counts_down_reminds_and_can_be_cancelled() {
        let cancel = AtomicBool::new(false);
        let mut reminded = Vec::new();
        let mut lines = Vec::new();
        let started = Instant::now();
        let points = [Duration::from_millis(200)];
        let done = wait_grace(
            Duration::from_millis(400),
            &points,
            &cancel,
            &mut |left| reminded.push((left, started.elapsed())),
            &mut |e| lines.push(e.to_string()),
        );
        assert!(done);
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(reminded.len(), 1);
        assert!(reminded[0].1 >= Duration::from_millis(190), "reminded at {:?}", reminded[0].1);
        assert_eq!(
            lines,
            [
                "countdown: 400ms left (Ctrl-C or SIGTERM cancels)",
                "countdown: 200ms left; reminder sent",
                "grace period over: acting now"
            ]
        );

        let cancel = AtomicBool::new(true);
        let mut lines = Vec::new();
        let started = Instant::now();
        let done = wait_grace(Duration::from_secs(60), &[], &cancel, &mut |_| {}, &mut |e| lines.push(e.to_string()));
        assert!(!done);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(lines.last().unwrap(), "cancelled during the grace period: no one was logged off");
    }
}
