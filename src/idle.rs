//! Idle time: how long a session has gone without input, where that came from, and the
//! two rules every platform's conversion follows.
//!
//! 1. **Unknown is not idle.** An idle time the OS does not know (a console session
//!    without `LastInputTime`, a desktop that never sets logind's idle hint, a session
//!    without a terminal) is `None`, shown as `unknown`; it is never 0 and never "idle for
//!    ever", and `--idle-over` never selects it.
//! 2. **Sleep is not idleness.** Idle time never reaches back past the machine's last
//!    wake from sleep: a laptop opened after a night in sleep has sessions whose last
//!    input is ten hours old, but its user is coming back, so right after a wake every
//!    session counts as idle since the wake at most ([`after_wake`]). Where the machine
//!    has slept since boot but the time of its last wake is unknown, idle time is unknown.
//!
//! Pure: the platforms read the clocks and the OS values, and call in here
//! (`platform::linux::logind`, `platform::windows::convert`).

use crate::words::string_enum;

string_enum! {
    /// Where a session's idle time comes from.
    #[derive(Default)]
    pub enum IdleSource {
        /// Windows: the session's `LastInputTime` (WTSINFOEX).
        LastInput => "last_input",
        /// Windows: a disconnected session without a last-input time is idle since its
        /// `DisconnectTime`.
        Disconnect => "disconnect",
        /// logind: a graphical session's idle hint, which its desktop sets.
        IdleHint => "idle_hint",
        /// logind: a text session's terminal, last read from (its access time).
        Terminal => "terminal",
        /// The machine woke from sleep more recently than the session's own idle time
        /// began: idle since the wake.
        Wake => "wake",
        /// Not known: never selected by `--idle-over`.
        #[default]
        Unknown => "unknown",
    }
    fallback Unknown
}

/// A session's idle time and where it came from; `seconds` is `None` exactly when
/// `source` is [`IdleSource::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Idle {
    /// Seconds without input.
    pub seconds: Option<u64>,
    /// Where they come from.
    pub source: IdleSource,
}

impl Idle {
    /// Idle time not known.
    pub const UNKNOWN: Idle = Idle { seconds: None, source: IdleSource::Unknown };

    /// `seconds` of idle time from `source`.
    pub fn known(seconds: u64, source: IdleSource) -> Idle {
        Idle { seconds: Some(seconds), source }
    }
}

/// What the machine's clocks say about sleep since it booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// It has not slept since it booted (or is not known to have: a remote server).
    NeverSlept,
    /// It last woke from sleep this many seconds ago.
    WokeAgo(u64),
    /// It has slept since it booted, and when it last woke is not known.
    Unknown,
}

/// How much sleep since boot counts as "has slept": clocks that should agree drift a
/// little apart, by far less than a second.
pub const SLEPT_THRESHOLD_MS: u64 = 1000;

/// Applies rule 2: `idle` as it stands after the machine's last wake.
pub fn after_wake(idle: Idle, wake: Wake) -> Idle {
    match (idle.seconds, wake) {
        (None, _) | (_, Wake::NeverSlept) => idle,
        (Some(_), Wake::Unknown) => Idle::UNKNOWN,
        (Some(s), Wake::WokeAgo(w)) if s > w => Idle::known(w, IdleSource::Wake),
        (Some(_), Wake::WokeAgo(_)) => idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_table_round_trips() {
        crate::words::assert_round_trips(IdleSource::ALL);
        assert_eq!(IdleSource::parse("from-the-future"), IdleSource::Unknown);
    }

    #[test]
    fn sleep_never_counts_as_idle() {
        let ten_hours = Idle::known(36_000, IdleSource::LastInput);
        let table: &[(Idle, Wake, Idle)] = &[
            // A laptop opened a minute ago after a night asleep: idle since the wake.
            (ten_hours, Wake::WokeAgo(60), Idle::known(60, IdleSource::Wake)),
            // Idle for less time than it has been awake: unchanged.
            (Idle::known(30, IdleSource::Terminal), Wake::WokeAgo(60), Idle::known(30, IdleSource::Terminal)),
            (ten_hours, Wake::NeverSlept, ten_hours),
            // It slept, but when it woke is not known: the idle time is not either.
            (ten_hours, Wake::Unknown, Idle::UNKNOWN),
            (Idle::UNKNOWN, Wake::WokeAgo(60), Idle::UNKNOWN),
            (Idle::UNKNOWN, Wake::NeverSlept, Idle::UNKNOWN),
            // Idle 0 (a desktop that says "active") stays 0 whatever the wake.
            (Idle::known(0, IdleSource::IdleHint), Wake::WokeAgo(0), Idle::known(0, IdleSource::IdleHint)),
        ];
        for (idle, wake, want) in table {
            assert_eq!(after_wake(*idle, *wake), *want, "{idle:?} {wake:?}");
        }
    }
}
