//! The sweep: terminating every process of one uid, without losing a race with a fork.
//!
//! A scan of /proc followed by one `kill` per pid (what `pkill` and `killall` do) loses to
//! a fork storm: children forked after the scan are never signalled. Measured here, ~2000 of
//! a 3000-process storm survived each such pass. So the mass signal is `kill(-1)` sent by a
//! thread whose credentials are the target uid ([`sys::kill_all_as`]), which the kernel
//! delivers atomically with respect to fork. It reaches every process whose real or saved
//! uid is the target; processes that are the target's by effective uid only (real uid 0,
//! effective uid U) are found by a scan afterwards and signalled one by one through a
//! pidfd, so that a pid recycled in between is never hit.
//!
//! When a process the tool must spare (the tool's own ancestors) is itself reachable by
//! `kill(-1)` as the uid, `kill(-1)` cannot be used; the sweep then falls back to scanning
//! and signalling by pidfd until nothing is left, which is not atomic against a fork storm.
//!
//! Zombies count as gone: they have exited and only wait for their parent (or PID 1) to
//! reap them. uid 0 is always refused.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::procfs::ProcFs;
use super::sys;
use crate::backend::{TerminateOptions, Terminated};
use crate::error::{Error, ErrorKind, Result};

/// The report name of the atomic method.
pub const METHOD_KILL_AS_UID: &str = "kill(-1) as uid";
/// The report name of the fallback method.
pub const METHOD_PIDFD: &str = "pidfd";

/// The fallback gid for the signalling thread when the uid has no passwd entry
/// (`nogroup`); the gid plays no part in the kernel's permission check for signals.
const NOGROUP: u32 = 65534;

/// One scan's view of the uid's processes.
#[derive(Debug, Default)]
struct Census {
    live: Vec<u32>,
    zombies: u64,
}

/// Terminates every process whose real, effective or saved uid is `uid`, except `spare`
/// pids: SIGTERM, up to `opts.grace` to exit, then SIGKILL until none is left or
/// `opts.timeout` has passed since the start.
pub struct Sweep<'a> {
    procfs: &'a ProcFs,
    uid: u32,
    gid: u32,
    spare: HashSet<u32>,
    /// Every live pid seen, for the `signalled` count.
    seen: HashSet<u32>,
    who: String,
}

impl<'a> Sweep<'a> {
    /// A sweep of `uid` (named `who` in errors); `gid` is the primary gid, if known.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for uid 0, which is never swept.
    pub fn new(
        procfs: &'a ProcFs,
        uid: u32,
        gid: Option<u32>,
        spare: &[u32],
        who: &str,
    ) -> Result<Sweep<'a>> {
        if uid == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("terminate the processes of {who}"),
                "uid 0 (root) is never signalled",
            ));
        }
        Ok(Sweep {
            procfs,
            uid,
            gid: gid.filter(|&g| g != 0).unwrap_or(NOGROUP),
            spare: spare.iter().copied().collect(),
            seen: HashSet::new(),
            who: who.to_string(),
        })
    }

    fn action(&self) -> String {
        format!("terminate the processes of {}", self.who)
    }

    fn census(&mut self) -> Result<Census> {
        let owned = self
            .procfs
            .owned_by(self.uid)
            .map_err(|e| Error::from_io("scan /proc", &e))?;
        let mut census = Census::default();
        for (pid, dead) in owned {
            if dead {
                census.zombies += 1;
            } else if !self.spare.contains(&pid) {
                census.live.push(pid);
                self.seen.insert(pid);
            }
        }
        Ok(census)
    }

    /// Whether `kill(-1)` as the uid would hit a spared process.
    fn spare_in_reach(&self) -> bool {
        self.spare.iter().any(|&pid| {
            self.procfs
                .status(pid)
                .is_some_and(|st| st.uids[0] == self.uid || st.uids[2] == self.uid)
        })
    }

    /// Signals each of `pids` through a pidfd, after checking, with the pidfd already
    /// open, that the pid still names a live process of the uid.
    fn signal_each(&self, pids: &[u32], signal: libc::c_int) {
        for &pid in pids {
            if self.spare.contains(&pid) {
                continue;
            }
            let Ok(fd) = sys::pidfd_open(pid) else {
                continue;
            };
            // Read after the pidfd is open: if the pid was recycled after this check, the
            // pidfd still names the exited process and the signal goes nowhere.
            match self.procfs.status(pid) {
                Some(st) if st.is_owned_by(self.uid) && !st.is_dead() => {
                    // ESRCH: it exited meanwhile, which is the goal.
                    let _ = sys::pidfd_send_signal(&fd, signal);
                }
                _ => {}
            }
        }
    }

    /// One signalling pass: `kill(-1)` as the uid (unless `atomic` is off), then every
    /// process still found is signalled by pidfd.
    fn pass(&mut self, atomic: bool, signal: libc::c_int) -> Result<Census> {
        if atomic {
            sys::kill_all_as(self.uid, self.gid, signal)
                .map_err(|e| Error::from_io(self.action(), &e))?;
        }
        let census = self.census()?;
        self.signal_each(&census.live, signal);
        Ok(census)
    }

    /// Waits until no live process is left or `until` passes, scanning with a growing pause.
    fn wait_gone(&mut self, until: Instant) -> Result<Census> {
        let mut pause = Duration::from_millis(2);
        loop {
            let census = self.census()?;
            let now = Instant::now();
            if census.live.is_empty() || now >= until {
                return Ok(census);
            }
            std::thread::sleep(pause.min(until - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Runs the sweep.
    ///
    /// # Errors
    ///
    /// Fails when /proc cannot be read or the signalling thread cannot take the uid's
    /// credentials (the tool is not root). Processes still alive at the timeout are not an
    /// error: they are counted in `remaining`.
    pub fn run(mut self, opts: &TerminateOptions) -> Result<Terminated> {
        let start = Instant::now();
        let deadline = start + opts.timeout;
        let first = self.census()?;
        let atomic = !self.spare_in_reach();
        let method = if atomic {
            METHOD_KILL_AS_UID
        } else {
            METHOD_PIDFD
        }
        .to_string();
        if first.live.is_empty() {
            return Ok(Terminated {
                signalled: 0,
                method,
                remaining: 0,
                zombies: first.zombies,
            });
        }

        let mut last = first;
        if !opts.grace.is_zero() {
            self.pass(atomic, libc::SIGTERM)?;
            last = self.wait_gone((start + opts.grace).min(deadline))?;
        }
        let mut pause = Duration::from_millis(5);
        while !last.live.is_empty() && Instant::now() < deadline {
            // kill(-1) returns 0 even when it signalled nothing, so only a scan says
            // whether anything is left.
            self.pass(atomic, libc::SIGKILL)?;
            // A SIGKILLed process can still look alive for a moment while it exits.
            let until = (Instant::now() + pause).min(deadline);
            last = self.wait_gone(until)?;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        Ok(Terminated {
            signalled: self.seen.len() as u64,
            method,
            remaining: last.live.len() as u64,
            zombies: last.zombies,
        })
    }
}
