//! The sweep: terminating every process of a set of uids, without losing a race with a
//! fork, and with one grace period shared by all of them.
//!
//! A scan of /proc followed by one `kill` per pid (what `pkill` and `killall` do) loses to
//! a fork storm: children forked after the scan are never signalled. Measured here, ~2000 of
//! a 3000-process storm survived each such pass. So the mass signal is `kill(-1)` sent by a
//! thread whose credentials are the target uid ([`sys::kill_all_as`]), which the kernel
//! delivers atomically with respect to fork: one call per uid per round. It reaches every
//! process whose real or saved uid is the target; processes that are the target's by
//! effective uid only (real uid 0, effective uid U) are found by a scan afterwards and
//! signalled one by one through a pidfd, so that a pid recycled in between is never hit.
//!
//! Every uid gets its SIGTERM first, then the whole set waits out one grace period, then
//! every uid with anything left gets SIGKILL rounds: a run over thirty users costs about
//! one grace period, not thirty. Each poll is one scan of /proc for the whole set.
//!
//! When a process the tool must spare (the tool's own ancestors) is itself reachable by
//! `kill(-1)` as a uid, `kill(-1)` cannot be used for that uid; it then falls back to
//! scanning and signalling by pidfd until nothing is left, which is not atomic against a
//! fork storm.
//!
//! No cgroup file is ever written here: where systemd runs it owns the cgroup tree, and
//! the caller's `force` hook (logind's `KillUser`) reaches the user's slice through it.
//! Nothing here freezes anything, so no instant at which the tool dies can leave a user
//! frozen. Zombies count as gone. uid 0 is always refused.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::bpf_iter::{Task, TaskIter};
use super::procfs::{ProcFs, Status};
use super::sys;
use crate::backend::{Method, Terminated};
use crate::error::{Error, ErrorKind, Result};

/// The fallback gid for the signalling thread when the uid has no passwd entry
/// (`nogroup`); the gid plays no part in the kernel's permission check for signals.
const NOGROUP: u32 = 65534;

/// One uid to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The uid.
    pub uid: u32,
    /// Its primary gid, if known.
    pub gid: Option<u32>,
    /// Its name, for messages.
    pub who: String,
    /// Its processes as the caller listed them just before: counted in
    /// `Terminated::signalled` without another scan.
    pub listed: Vec<u32>,
}

/// How long a sweep may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// After SIGTERM, how long the processes get before SIGKILL.
    pub grace: Duration,
    /// Give up after this long (processes left are counted, not an error).
    pub timeout: Duration,
}

/// One full scan's view of one uid's processes.
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

/// The state of one uid during a sweep.
#[derive(Debug)]
struct Swept {
    uid: u32,
    gid: u32,
    who: String,
    /// `kill(-1)` as the uid may be used (no spared process is in its reach).
    atomic: bool,
    /// Every live pid seen, for the `signalled` count.
    seen: HashSet<u32>,
    /// Zombies seen: they stay zombies until reaped, so the quick scan skips them.
    zombies: HashSet<u32>,
    /// SIGKILL rounds so far.
    passes: u32,
    /// The last census.
    last: Census,
    /// The caller's `force` hook reached this uid (logind's `KillUser`).
    forced: bool,
    /// A failure that ended this uid's sweep.
    error: Option<Error>,
}

impl Swept {
    fn action(&self) -> String {
        format!("terminate the processes of {}", self.who)
    }

    fn left(&self) -> bool {
        self.error.is_none() && !self.last.live.is_empty()
    }
}

/// Terminates every process whose real, effective or saved uid is one of the targets',
/// except `spare` pids: SIGTERM to all, up to `grace` for them to exit, then SIGKILL until
/// none is left or `timeout` has passed since the start.
pub struct Sweep<'a> {
    procfs: &'a ProcFs,
    /// The task iterator, when loaded: a whole scan in one pass, instead of a `status`
    /// read per process.
    tasks: Option<&'a TaskIter>,
    spare: HashSet<u32>,
    uids: Vec<Swept>,
}

impl<'a> Sweep<'a> {
    /// A sweep of `targets`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when a target is uid 0, which is never swept.
    pub fn new(
        procfs: &'a ProcFs,
        tasks: Option<&'a TaskIter>,
        targets: &[Target],
        spare: &[u32],
    ) -> Result<Sweep<'a>> {
        if let Some(root) = targets.iter().find(|t| t.uid == 0) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("terminate the processes of {}", root.who),
                "uid 0 (root) is never signalled",
            ));
        }
        let spare: HashSet<u32> = spare.iter().copied().collect();
        let uids = targets
            .iter()
            .map(|t| Swept {
                uid: t.uid,
                gid: t.gid.filter(|&g| g != 0).unwrap_or(NOGROUP),
                who: t.who.clone(),
                atomic: true,
                seen: t.listed.iter().copied().filter(|p| !spare.contains(p)).collect(),
                zombies: HashSet::new(),
                passes: 0,
                last: Census::default(),
                forced: false,
                error: None,
            })
            .collect();
        Ok(Sweep { procfs, tasks, spare, uids })
    }

    /// Every process through the task iterator, when it is loaded and can be read.
    fn task_scan(&self) -> Option<Vec<Task>> {
        let iter = self.tasks?;
        self.procfs.pids().and_then(|pids| iter.scan(self.procfs, &pids)).ok()
    }

    /// (pid, uids, dead) of every process whose real, effective or saved uid is one of
    /// `uids`: from the task iterator if loaded, else from every `/proc/PID/status`.
    fn owned(&self, uids: &[u32]) -> std::io::Result<Vec<(u32, [u32; 4], bool)>> {
        if let Some(tasks) = self.task_scan() {
            let owned = tasks.into_iter().filter(|t| uids.iter().any(|u| t.is_owned_by(*u)));
            return Ok(owned.map(|t| (t.pid, t.uids, t.is_dead())).collect());
        }
        let owned = self.procfs.owned_by_any(uids)?;
        Ok(owned.into_iter().map(|(pid, st): (u32, Status)| (pid, st.uids, st.is_dead())).collect())
    }

    /// A quick look at how many pids may still be the uids': the live ones the task
    /// iterator finds, or without it the /proc directories they own (see
    /// [`ProcFs::owned_dirs_any`]), less known zombies and spared pids.
    fn quick(&self, uids: &[u32]) -> std::io::Result<usize> {
        let pids: Vec<u32> = match self.task_scan() {
            Some(tasks) => tasks
                .into_iter()
                .filter(|t| !t.is_dead() && uids.iter().any(|u| t.is_owned_by(*u)))
                .map(|t| t.pid)
                .collect(),
            None => self.procfs.owned_dirs_any(uids)?,
        };
        let zombie = |p: &u32| self.uids.iter().any(|s| s.zombies.contains(p));
        Ok(pids.iter().filter(|p| !zombie(p) && !self.spare.contains(p)).count())
    }

    /// One census of the uids at `which`: each one's live, out-of-reach and zombie pids.
    fn census(&mut self, which: &[usize]) -> std::io::Result<()> {
        let uids: Vec<u32> = which.iter().map(|&i| self.uids[i].uid).collect();
        let owned = self.owned(&uids)?;
        for &i in which {
            let s = &mut self.uids[i];
            let mut census = Census::default();
            for (pid, ids, dead) in owned.iter().filter(|(_, ids, _)| ids[..3].contains(&s.uid)) {
                if *dead {
                    census.zombie_pids.push(*pid);
                } else if !self.spare.contains(pid) {
                    census.live.push(*pid);
                    if ids[0] != s.uid && ids[2] != s.uid {
                        census.out_of_reach.push(*pid);
                    }
                    s.seen.insert(*pid);
                }
            }
            s.zombies.extend(census.zombie_pids.iter().copied());
            s.last = census;
        }
        Ok(())
    }

    /// Signals each of `pids` through a pidfd, after checking, with the pidfd already
    /// open, that the pid still names a live process of `uid`.
    fn signal_each(&self, uid: u32, pids: &[u32], signal: libc::c_int) {
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
                Some(st) if st.is_owned_by(uid) && !st.is_dead() => {
                    // ESRCH: it exited meanwhile, which is the goal.
                    let _ = sys::pidfd_send_signal(&fd, signal);
                }
                _ => {}
            }
        }
    }

    /// Sends `signal` to the uids at `which`, then waits until their processes are gone or
    /// `until`.
    ///
    /// In atomic mode, `kill(-1)` as the uid goes first; then, while processes exit, the
    /// cheap `stat` scan ([`ProcFs::owned_dirs_any`]) is polled for the whole set. A full
    /// census runs when that finds nothing left, when it stops shrinking, or when time is
    /// up; the census alone decides, and whatever it finds that `kill(-1)` cannot reach
    /// (or everything, in pidfd mode) is signalled by pidfd.
    fn signal_and_wait(&mut self, which: &[usize], signal: libc::c_int, until: Instant) -> Result<()> {
        for &i in which {
            let s = &mut self.uids[i];
            if s.atomic {
                if let Err(e) = sys::kill_all_as(s.uid, s.gid, signal) {
                    s.error = Some(Error::from_io(s.action(), &e));
                }
            }
        }
        let which: Vec<usize> = which.iter().copied().filter(|&i| self.uids[i].error.is_none()).collect();
        let uids: Vec<u32> = which.iter().map(|&i| self.uids[i].uid).collect();
        let scan_error = |e: std::io::Error| Error::from_io("scan /proc", &e);
        // Poll about as long as a scan takes: often when scans are cheap, and never more
        // than half of a CPU while the dying processes need it.
        let mut pause = Duration::from_millis(1);
        let (mut previous, mut stalls) = (usize::MAX, 0);
        let any_pidfd = which.iter().any(|&i| !self.uids[i].atomic);
        let mut census_due = any_pidfd;
        loop {
            if !census_due {
                let began = Instant::now();
                let left = self.quick(&uids).map_err(scan_error)?;
                pause = began.elapsed().clamp(Duration::from_millis(1), Duration::from_millis(20));
                // Not shrinking for a few polls: what is left is not exiting by itself
                // (or the uid is only its effective uid): time for the census.
                stalls = if left >= previous { stalls + 1 } else { 0 };
                census_due = left == 0 || stalls >= 3 || Instant::now() >= until;
                previous = left;
            }
            if census_due {
                let began = Instant::now();
                self.census(&which).map_err(scan_error)?;
                pause = began.elapsed().clamp(Duration::from_millis(1), Duration::from_millis(20));
                if which.iter().all(|&i| self.uids[i].last.live.is_empty()) || Instant::now() >= until {
                    return Ok(());
                }
                for &i in &which {
                    let s = &self.uids[i];
                    self.signal_each(s.uid, if s.atomic { &s.last.out_of_reach } else { &s.last.live }, signal);
                }
                census_due = any_pidfd;
                (previous, stalls) = (usize::MAX, 0);
            }
            std::thread::sleep(pause.min(until.saturating_duration_since(Instant::now())));
        }
    }

    /// Runs the sweep. `force(uid)` is called before each uid's first SIGKILL round (the
    /// Linux backend asks logind to `KillUser` there); it returns whether it reached the
    /// uid.
    ///
    /// Returns one result per target, in order. A target fails when /proc cannot be read or
    /// the signalling thread cannot take its credentials (the tool is not root). Processes
    /// still alive at the timeout are not an error: they are counted in `remaining`.
    pub fn run(mut self, timing: Timing, force: &mut dyn FnMut(u32) -> bool) -> Vec<Result<Terminated>> {
        let start = Instant::now();
        let deadline = start + timing.timeout;
        // `kill(-1)` as a uid would hit a spared process whose real or saved uid it is.
        let in_reach: HashSet<u32> = self
            .spare
            .iter()
            .filter_map(|&pid| self.procfs.status(pid))
            .flat_map(|st| [st.uids[0], st.uids[2]])
            .collect();
        for t in &mut self.uids {
            t.atomic = !in_reach.contains(&t.uid);
        }
        let all: Vec<usize> = (0..self.uids.len()).collect();
        let mut failed = None;
        if !timing.grace.is_zero() {
            failed = self.signal_and_wait(&all, libc::SIGTERM, (start + timing.grace).min(deadline)).err();
        }
        let mut round = Duration::from_millis(50);
        while failed.is_none() {
            // At least one SIGKILL round for a uid with anything left (or when no polite
            // round ran), even with a zero timeout.
            let due: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&i| {
                    let s = &self.uids[i];
                    s.error.is_none()
                        && ((s.passes == 0 && (timing.grace.is_zero() || s.left()))
                            || (s.left() && Instant::now() < deadline))
                })
                .collect();
            if due.is_empty() {
                break;
            }
            for &i in &due {
                let s = &mut self.uids[i];
                if s.passes == 0 {
                    s.forced = force(s.uid);
                }
                s.passes += 1;
            }
            // kill(-1) returns 0 even when it signalled nothing: only a census says whether
            // anything is left, and a SIGKILLed process can look alive for a moment.
            let until = (Instant::now() + round).min(deadline);
            failed = self.signal_and_wait(&due, libc::SIGKILL, until).err();
            round = (round * 2).min(Duration::from_secs(1));
        }
        self.uids.into_iter().map(|s| outcome(s, failed.as_ref())).collect()
    }
}

fn outcome(s: Swept, failed: Option<&Error>) -> Result<Terminated> {
    if let Some(e) = s.error {
        return Err(e);
    }
    if let Some(e) = failed {
        return Err(Error { action: s.action(), ..e.clone() });
    }
    let method = match (s.atomic, s.forced) {
        (false, _) => Method::Pidfd,
        (true, false) => Method::KillAsUid,
        (true, true) => Method::KillUserAndKillAsUid,
    };
    Ok(Terminated {
        signalled: s.seen.len() as u64,
        method,
        remaining: s.last.live.len() as u64,
        zombies: s.last.zombie_pids.len() as u64,
    })
}
