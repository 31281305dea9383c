//! After the verify phase: wait for the profiles of the users it found logged off to
//! unload (Windows: the hive under `HKEY_USERS`, FSLogix's session state), until a
//! deadline, and give each user its verdict (see [`crate::profile`]). A profile still
//! loaded at the deadline fails its user (exit 1) with its own line.
//!
//! Nothing here acts on a profile: it is only looked at.

use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::event::Event;
use crate::plan::Plan;
use crate::profile::{Judgement, ProfileUnloaded, judge};
use crate::report::{UserOutcome, UserResult};

/// How long to wait between two looks at the profiles still loaded.
const POLL: Duration = Duration::from_millis(250);

/// Checks the profile of every user of `plan` whose outcome in `users` (in plan order) is
/// `logged_off`, looking again until `until`; fills in `profile_unloaded` and fails the
/// users whose profile is still loaded then. Where the backend has no profiles to check
/// (Linux) it does nothing and says nothing.
pub(crate) fn check_profiles(
    backend: &mut dyn Backend,
    plan: &Plan,
    users: &mut [UserResult],
    until: Instant,
    log: &mut dyn FnMut(Event),
) {
    let mut pending: Vec<usize> = (0..users.len().min(plan.users.len()))
        .filter(|&i| users[i].outcome == UserOutcome::LoggedOff && plan.users[i].account.is_some())
        .collect();
    let mut announced = false;
    while !pending.is_empty() {
        let deadline_passed = Instant::now() >= until;
        let mut waiting = Vec::new();
        for i in pending {
            let account = plan.users[i].account.as_ref().expect("pending users have an account");
            let seen = backend.profile_state(account);
            match judge(&seen, deadline_passed) {
                Judgement::NotApplicable => {}
                Judgement::Wait => waiting.push(i),
                Judgement::Done(verdict, detail) => {
                    users[i].profile_unloaded = Some(verdict);
                    if verdict == ProfileUnloaded::No {
                        users[i].outcome = UserOutcome::Failed;
                    }
                    log(Event::Profile { user: account.display_name(), unloaded: verdict, detail });
                }
            }
        }
        if !waiting.is_empty() && !announced {
            announced = true;
            let left = until.saturating_duration_since(Instant::now()).as_millis() as u64;
            log(Event::WaitingProfiles { timeout_ms: left.div_ceil(1000) * 1000 });
        }
        pending = waiting;
        if !pending.is_empty() {
            std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())).max(Duration::from_millis(1)));
        }
    }
}
