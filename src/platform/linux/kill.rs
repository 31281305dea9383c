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

use super::bpf_iter::{Task, TaskIter};
use super::cgroup::Slice;
use super::procfs::ProcFs;
use super::sys;
use crate::backend::{Method, TerminateOptions, Terminated};
use crate::error::{Error, ErrorKind, Result};

/// The fallback gid for the signalling thread when the uid has no passwd entry
/// (`nogroup`); the gid plays no part in the kernel's permission check for signals.
const NOGROUP: u32 = 65534;

/// One full scan's view of the uid's processes.
#[derive(Debug, Default)]
struct Census {
    /// Live processes (spared ones left out).
    live: Vec<u32>,
    /// Live processes that `kill(-1)` as the uid cannot reach: the uid is only their
    /// effective uid.
    out_of_reach: Vec<u32>,
    /// Zombies: gone, not reaped yet.
    zombie_pids: Vec<u32>,
}

/// Terminates every process whose real, effective or saved uid is `uid`, except `spare`
/// pids: SIGTERM, up to `opts.grace` to exit, then SIGKILL until none is left or
/// `opts.timeout` has passed since the start.
pub struct Sweep<'a> {
    procfs: &'a ProcFs,
    /// The task iterator, when loaded: a whole scan in one pass, instead of a `status`
    /// read per process.
    tasks: Option<&'a TaskIter>,
    uid: u32,
    gid: u32,
    spare: HashSet<u32>,
    /// Every live pid seen, for the `signalled` count.
    seen: HashSet<u32>,
    /// Zombies seen: they stay zombies until reaped, so the quick scan skips them.
    zombies: HashSet<u32>,
    /// SIGKILL rounds so far.
    passes: u32,
    /// The uid's cgroup slice, when it exists (in atomic mode only).
    slice: Option<Slice>,
    /// Whether `cgroup.kill` was written to it.
    slice_killed: bool,
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
        tasks: Option<&'a TaskIter>,
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
            tasks,
            uid,
            gid: gid.filter(|&g| g != 0).unwrap_or(NOGROUP),
            spare: spare.iter().copied().collect(),
            seen: HashSet::new(),
            zombies: HashSet::new(),
            passes: 0,
            slice: None,
            slice_killed: false,
            who: who.to_string(),
        })
    }

    fn action(&self) -> String {
        format!("terminate the processes of {}", self.who)
    }

    /// Every process through the task iterator, when it is loaded and can be read.
    fn task_scan(&self) -> Option<Vec<Task>> {
        let iter = self.tasks?;
        self.procfs.pids().and_then(|pids| iter.scan(self.procfs, &pids)).ok()
    }

    /// (pid, uids, dead) of every process whose real, effective or saved uid is the uid:
    /// from the task iterator if loaded, else from every `/proc/PID/status`.
    fn owned(&self) -> Result<Vec<(u32, [u32; 4], bool)>> {
        if let Some(tasks) = self.task_scan() {
            let owned = tasks.into_iter().filter(|t| t.is_owned_by(self.uid));
            return Ok(owned.map(|t| (t.pid, t.uids, t.is_dead())).collect());
        }
        let owned = self.procfs.owned_by(self.uid).map_err(|e| Error::from_io("scan /proc", &e))?;
        Ok(owned.into_iter().map(|(pid, st)| (pid, st.uids, st.is_dead())).collect())
    }

    /// A quick look at which pids may still be the uid's: the live ones the task iterator
    /// finds, or without it the /proc directories the uid owns (see [`ProcFs::owned_dirs`]).
    fn quick(&self) -> Result<Vec<u32>> {
        if let Some(tasks) = self.task_scan() {
            return Ok(tasks.into_iter().filter(|t| t.is_owned_by(self.uid) && !t.is_dead()).map(|t| t.pid).collect());
        }
        self.procfs.owned_dirs(self.uid).map_err(|e| Error::from_io("scan /proc", &e))
    }

    fn census(&mut self) -> Result<Census> {
        let mut census = Census::default();
        for (pid, uids, dead) in self.owned()? {
            if dead {
                census.zombie_pids.push(pid);
            } else if !self.spare.contains(&pid) {
                census.live.push(pid);
                if uids[0] != self.uid && uids[2] != self.uid {
                    census.out_of_reach.push(pid);
                }
                self.seen.insert(pid);
            }
        }
        Ok(census)
    }

    /// Writes `cgroup.kill` to the uid's slice, if there is one and, once it is frozen,
    /// every process in it is one this sweep would end anyway: the uid's by real, effective
    /// or saved uid, and not spared (see [`Slice::kill_checked`]). A root shell from
    /// `sudo -i`, another user's process, or the tool itself fail the check; then, or on an
    /// error, the work is left to `kill(-1)` and the scans.
    fn kill_slice(&mut self, until: Instant) {
        let Some(slice) = &self.slice else { return };
        // Checked right before each freeze: the tool must never freeze itself.
        if self.spare.iter().any(|&pid| slice.holds(pid)) {
            return;
        }
        let (procfs, uid, spare) = (self.procfs, self.uid, &self.spare);
        let may_kill =
            |pid: u32| !spare.contains(&pid) && procfs.status(pid).is_none_or(|st| st.is_dead() || st.is_owned_by(uid));
        if let Ok(true) = slice.kill_checked(may_kill, until) {
            self.slice_killed = true;
        }
    }

    /// Whether `kill(-1)` as the uid would hit a spared process.
    fn spare_in_reach(&self) -> bool {
        self.spare
            .iter()
            .any(|&pid| self.procfs.status(pid).is_some_and(|st| st.uids[0] == self.uid || st.uids[2] == self.uid))
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

    /// Sends `signal` to the uid's processes until `until`, and waits for them to go.
    ///
    /// In atomic mode, `kill(-1)` as the uid goes first; then, while processes exit, the
    /// cheap `stat` scan ([`ProcFs::owned_dirs`]) is polled. A full census runs when that
    /// finds nothing left, when it stops shrinking, or when time is up; the census alone
    /// decides, and whatever it finds that `kill(-1)` cannot reach (or everything, in
    /// pidfd mode) is signalled by pidfd.
    fn signal_and_wait(&mut self, atomic: bool, signal: libc::c_int, until: Instant) -> Result<Census> {
        if atomic && signal == libc::SIGKILL {
            self.kill_slice(until);
        }
        if atomic {
            sys::kill_all_as(self.uid, self.gid, signal).map_err(|e| Error::from_io(self.action(), &e))?;
        }
        // Poll about as long as a scan takes: often when scans are cheap, and never more
        // than half of a CPU while the dying processes need it.
        let mut pause = Duration::from_millis(1);
        let (mut previous, mut stalls) = (usize::MAX, 0);
        let mut census_due = !atomic;
        loop {
            if !census_due {
                let began = Instant::now();
                let quick = self.quick()?;
                pause = began.elapsed().clamp(Duration::from_millis(1), Duration::from_millis(20));
                let left = quick.iter().filter(|p| !self.zombies.contains(p) && !self.spare.contains(p)).count();
                // Not shrinking for a few polls: what is left is not exiting by itself
                // (or the uid is only its effective uid): time for the census.
                stalls = if left >= previous { stalls + 1 } else { 0 };
                census_due = left == 0 || stalls >= 3 || Instant::now() >= until;
                previous = left;
            }
            if census_due {
                let began = Instant::now();
                let census = self.census()?;
                pause = began.elapsed().clamp(Duration::from_millis(1), Duration::from_millis(20));
                self.zombies.extend(census.zombie_pids.iter().copied());
                if census.live.is_empty() || Instant::now() >= until {
                    return Ok(census);
                }
                self.signal_each(if atomic { &census.out_of_reach } else { &census.live }, signal);
                census_due = !atomic;
                (previous, stalls) = (usize::MAX, 0);
            }
            std::thread::sleep(pause.min(until.saturating_duration_since(Instant::now())));
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
        let atomic = !self.spare_in_reach();
        if atomic {
            self.slice = Slice::of_uid(self.uid);
        }
        // A count for the report only: kill(-1) does not say how many it signalled, and a
        // scan here would cost several percent of a whole sweep. So `signalled` is the pids
        // the caller listed just before, plus whatever a scan saw alive later.
        self.seen.extend(opts.listed_pids.iter().filter(|p| !self.spare.contains(p)));

        let mut last = Census::default();
        if !opts.grace.is_zero() {
            last = self.signal_and_wait(atomic, libc::SIGTERM, (start + opts.grace).min(deadline))?;
        }
        let mut round = Duration::from_millis(50);
        // At least one SIGKILL round when anything is left (or no polite round ran), even
        // with a zero timeout.
        while (self.passes == 0 && (opts.grace.is_zero() || !last.live.is_empty()))
            || (!last.live.is_empty() && Instant::now() < deadline)
        {
            self.passes += 1;
            // kill(-1) returns 0 even when it signalled nothing: only a census says whether
            // anything is left, and a SIGKILLed process can look alive for a moment.
            let until = (Instant::now() + round).min(deadline);
            last = self.signal_and_wait(atomic, libc::SIGKILL, until)?;
            round = (round * 2).min(Duration::from_secs(1));
        }
        let method = match (atomic, self.slice_killed) {
            (false, _) => Method::Pidfd,
            (true, false) => Method::KillAsUid,
            (true, true) => Method::CgroupKillAndKillAsUid,
        };
        Ok(Terminated {
            signalled: self.seen.len() as u64,
            method,
            remaining: last.live.len() as u64,
            zombies: last.zombie_pids.len() as u64,
        })
    }
}
