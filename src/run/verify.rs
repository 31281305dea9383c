//! The verify phase: poll what was planned until every targeted session and process is
//! gone or the timeout passes.
//!
//! Only the plan is polled, never the whole machine: the planned sessions
//! ([`Backend::find_sessions`]) and the planned accounts' processes
//! ([`Backend::find_processes`]), which include any process an account forked after the
//! plan. Which session or process belongs to which account is the snapshot's
//! [`Identities`](crate::identity::Identities)' answer, as in planning.
//!
//! What is "targeted": each planned session (by id and account, since an id can be reused
//! by a new logon), and, for a user whose processes are terminated, every process of that
//! user that the run's sparing does not spare (so a process forked during the run counts
//! too); for a user who is only logged off, the user's processes in the logged-off sessions.
//! Zombies count as gone.

use std::time::{Duration, Instant};

use crate::backend::{Backend, Sparing};
use crate::event::Event;
use crate::identity::{Account, AccountId};
use crate::model::{Process, Session, SessionState};
use crate::plan::{Plan, UserPlan};
use crate::report::{Remaining, Verification};
use crate::snapshot::Snapshot;

/// How verification polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifyOptions {
    /// How long it may wait.
    pub timeout: Duration,
    /// The first wait between two polls; it grows by half up to 500 ms, and is never
    /// shorter than the last poll took (a scan of a busy machine takes its time: polling
    /// never uses more than about half a CPU).
    pub poll: Duration,
    /// A session counts as done when it is disconnected (`--disconnect`), and processes
    /// are not waited for.
    pub disconnect: bool,
    /// What the run's terminations left alone.
    pub sparing: Sparing,
}

/// What must be gone for a user to count as logged off.
struct Target<'a> {
    user: &'a UserPlan,
    account: &'a Account,
}

/// What verification found: the report's part, and the accounts that remained.
pub(crate) struct Verified {
    pub report: Verification,
    pub remaining: Vec<AccountId>,
}

impl Target<'_> {
    fn remaining(
        &self,
        snap: &Snapshot,
        sessions: &[Session],
        processes: &[Process],
        opts: &VerifyOptions,
    ) -> (Remaining, u64) {
        let id = &self.account.id;
        let left_sessions: Vec<String> = self
            .user
            .sessions
            .iter()
            .filter(|planned| {
                sessions.iter().any(|s| {
                    s.id == planned.id
                        && snap.account_of(s).id == *id
                        && !(opts.disconnect && s.state == SessionState::Disconnected)
                })
            })
            .map(|s| s.id.clone())
            .collect();
        let ids: Vec<&str> = self.user.sessions.iter().map(|s| s.id.as_str()).collect();
        let (mut zombies, mut pids, mut names, mut uninterruptible) = (0, Vec::new(), Vec::new(), Vec::new());
        for p in processes {
            if opts.sparing.spares(p) || !snap.identities().owns(id, p) {
                continue;
            }
            let targeted = self.user.terminate.is_some() || p.session_id.as_deref().is_some_and(|s| ids.contains(&s));
            if !targeted {
                continue;
            }
            if p.zombie {
                zombies += 1;
            } else {
                pids.push(p.pid);
                names.push(p.name.clone());
                if p.uninterruptible {
                    uninterruptible.push(p.pid);
                }
            }
        }
        (
            Remaining { user: self.account.display_name(), sessions: left_sessions, pids, names, uninterruptible },
            zombies,
        )
    }

    /// Everything planned, as remaining: what is reported when the machine could not be
    /// listed at all until the timeout.
    fn as_planned(&self, snap: &Snapshot) -> Remaining {
        let name =
            |pid: &u32| snap.processes.iter().find(|p| p.pid == *pid).map(|p| p.name.clone()).unwrap_or_default();
        Remaining {
            user: self.account.display_name(),
            sessions: self.user.sessions.iter().map(|s| s.id.clone()).collect(),
            pids: self.user.pids.clone(),
            names: self.user.pids.iter().map(name).collect(),
            uninterruptible: Vec::new(),
        }
    }
}

/// One poll: the planned sessions and the planned accounts' processes, as they are now.
fn poll(
    backend: &mut dyn Backend,
    plan: &Plan,
    targets: &[Target],
    opts: &VerifyOptions,
) -> crate::error::Result<(Vec<Session>, Vec<Process>)> {
    let planned: Vec<&Session> = plan.sessions().map(|(_, s)| s).collect();
    let sessions = if planned.is_empty() { Vec::new() } else { backend.find_sessions(&planned)? };
    // A disconnected session keeps its processes: that is the point of --disconnect.
    let accounts: Vec<&AccountId> = targets.iter().map(|t| &t.account.id).collect();
    let processes =
        if opts.disconnect || accounts.is_empty() { Vec::new() } else { backend.find_processes(&accounts)? };
    Ok((sessions, processes))
}

/// Polls until every target of `plan` is gone or `opts.timeout` passes.
pub(crate) fn verify(
    backend: &mut dyn Backend,
    snap: &Snapshot,
    plan: &Plan,
    opts: &VerifyOptions,
    log: &mut dyn FnMut(Event),
) -> Verified {
    let targets: Vec<Target> = plan
        .users
        .iter()
        .filter_map(|u| u.account.as_ref().map(|account| Target { user: u, account }))
        .filter(|t| !t.user.sessions.is_empty() || t.user.terminate.is_some())
        .collect();
    let start = Instant::now();
    let mut polls = 0;
    let mut errors: Vec<String> = Vec::new();
    let mut wait = opts.poll;
    if !targets.is_empty() {
        // What is left of the run's timeout, shown rounded up to whole seconds.
        let ms = opts.timeout.as_millis() as u64;
        log(Event::Waiting { timeout_ms: if ms >= 1000 { ms.div_ceil(1000) * 1000 } else { ms } });
    }
    loop {
        polls += 1;
        let timed_out = || start.elapsed() >= opts.timeout;
        let began = Instant::now();
        let listed = poll(backend, plan, &targets, opts);
        let cost = began.elapsed();
        let found = match listed {
            Ok((sessions, processes)) => {
                let found: Vec<(Remaining, u64)> =
                    targets.iter().map(|t| t.remaining(snap, &sessions, &processes, opts)).collect();
                let gone = found.iter().all(|(r, _)| r.sessions.is_empty() && r.pids.is_empty());
                (gone || timed_out()).then_some((found, false))
            }
            Err(e) => {
                let msg = e.to_string();
                if !errors.contains(&msg) {
                    errors.push(msg);
                }
                // Never listed again: everything planned counts as still there.
                timed_out().then(|| (targets.iter().map(|t| (t.as_planned(snap), 0)).collect(), true))
            }
        };
        if let Some((found, unlisted)) = found {
            return conclude(&targets, found, unlisted, (start.elapsed(), polls), errors, log);
        }
        let left = opts.timeout.saturating_sub(start.elapsed());
        std::thread::sleep(wait.max(cost).min(left).max(Duration::from_millis(1)));
        wait = wait.mul_f64(1.5).min(Duration::from_millis(500));
    }
}

/// The verification's end: one line per target, and the report.
fn conclude(
    targets: &[Target],
    found: Vec<(Remaining, u64)>,
    unlisted: bool,
    (elapsed, polls): (Duration, u32),
    errors: Vec<String>,
    log: &mut dyn FnMut(Event),
) -> Verified {
    let mut zombies = 0;
    let mut remaining = Vec::new();
    let mut remaining_ids = Vec::new();
    for (t, (r, z)) in targets.iter().zip(found) {
        zombies += z;
        if !unlisted && r.sessions.is_empty() && r.pids.is_empty() {
            log(Event::VerifiedGone { user: r.user, zombies: z });
        } else {
            log(Event::StillPresent {
                user: r.user.clone(),
                sessions: r.sessions.clone(),
                pids: r.pids.clone(),
                names: r.names.clone(),
                uninterruptible: r.uninterruptible.clone(),
            });
            remaining_ids.push(t.account.id.clone());
            remaining.push(r);
        }
    }
    let verified = remaining.is_empty();
    let report = Verification {
        verified,
        timed_out: !verified,
        elapsed_ms: elapsed.as_millis() as u64,
        polls,
        zombies,
        remaining,
        errors,
    };
    Verified { report, remaining: remaining_ids }
}
