//! Processes from `/proc`: a fast scan that reads each process's `status` (uids, state) and
//! `stat` (start time, session id), the members of given sessions, and the tool's own
//! ancestry.
//!
//! The `/proc` root is a parameter so that tests can run the parsers on a fake tree in a
//! temporary directory. Processes exit during a scan all the time: a process whose files
//! vanish (or read empty) is simply not listed. Nothing here signals anything.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::passwd::Passwd;
use crate::model::Process;

/// The uids and state of one process, from `/proc/PID/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `Name:` (the comm, possibly truncated to 15 bytes by the kernel).
    pub name: String,
    /// The state letter of `State:` (`R`, `S`, `Z`, …).
    pub state: char,
    /// The parent pid, `PPid:`.
    pub ppid: u32,
    /// Real, effective, saved and filesystem uid, `Uid:`.
    pub uids: [u32; 4],
    /// `Threads:`, the threads not yet released, the main thread included (1 when absent).
    pub threads: u32,
}

impl Status {
    /// A zombie (or a dead task): it has exited and only waits to be reaped. A main thread
    /// that exited while other threads of the process run shows `Z` too, but with more
    /// than one thread: that process is alive.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x') && self.threads <= 1
    }

    /// Whether the real, effective or saved uid is `uid`.
    pub fn is_owned_by(&self, uid: u32) -> bool {
        self.uids[..3].contains(&uid)
    }
}

/// Parses the text of `/proc/PID/status`. `None` when a needed line is missing.
pub fn parse_status(text: &str) -> Option<Status> {
    let (mut name, mut state, mut ppid, mut uids, mut threads) = (None, None, None, None, None);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => name = Some(unescape_name(value)),
            "State" => state = value.chars().next(),
            "PPid" => ppid = value.parse().ok(),
            "Uid" => {
                let mut it = value.split_ascii_whitespace().map(str::parse::<u32>);
                let mut out = [0u32; 4];
                for slot in &mut out {
                    *slot = it.next()?.ok()?;
                }
                uids = Some(out);
            }
            "Threads" => {
                threads = value.parse().ok();
                // Threads comes after Name, State, PPid and Uid: nothing more is needed.
                break;
            }
            _ => {}
        }
    }
    Some(Status { name: name?, state: state?, ppid: ppid?, uids: uids?, threads: threads.unwrap_or(1) })
}

/// `status` escapes `\n` and `\\` in the name; undo the two escapes.
fn unescape_name(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    raw.replace("\\n", "\n").replace("\\\\", "\\")
}

/// The start time field of `/proc/PID/stat` (field 22), in clock ticks after boot.
///
/// The comm (field 2) may hold spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat_start_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the comm come field 3 (state) … field 22 (starttime): index 19.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The session id field of `/proc/PID/stat` (field 6): the pid of the process that
/// created the session with `setsid`, which need not be alive any more.
///
/// Fields are counted from the last `)`, as in [`parse_stat_start_ticks`].
pub fn parse_stat_session(text: &str) -> Option<u32> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the comm: field 3 (state), 4 (ppid), 5 (pgrp), 6 (session): index 3.
    rest.split_ascii_whitespace().nth(3)?.parse().ok()
}

/// `btime` of `/proc/stat`: the boot time in seconds since the epoch.
pub fn parse_boot_time(text: &str) -> Option<i64> {
    text.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// `UID_MIN` of `/etc/login.defs`; 1000 when absent or unreadable.
pub fn parse_uid_min(text: &str) -> u32 {
    login_defs_number(text, "UID_MIN").unwrap_or(1000)
}

/// `UID_MAX` of `/etc/login.defs`; 60000 (shadow's default) when absent or unreadable.
pub fn parse_uid_max(text: &str) -> u32 {
    login_defs_number(text, "UID_MAX").unwrap_or(60000)
}

/// The last setting of `key` in `login.defs` text, if it is a number.
fn login_defs_number(text: &str, key: &str) -> Option<u32> {
    text.lines().rev().find_map(|l| {
        let mut words = l.split_ascii_whitespace();
        (words.next() == Some(key)).then(|| words.next()?.parse().ok()).flatten()
    })
}

/// The model's view of a process with these uids (real, effective, saved, fs), state
/// letter and deadness (see [`Status::is_dead`]); the user name is the real uid's, from
/// `passwd`.
pub fn process(pid: u32, uids: [u32; 4], (state, dead): (char, bool), name: String, passwd: &Passwd) -> Process {
    let [uid, euid, suid, _] = uids;
    Process {
        pid,
        user: passwd.by_uid(uid).map(|e| e.name.clone()),
        domain: None,
        uid: Some(uid),
        euid: (euid != uid).then_some(euid),
        suid: (suid != uid).then_some(suid),
        sid: None,
        session_id: None,
        zombie: dead,
        uninterruptible: state == 'D',
        name,
    }
}

/// Reads a small /proc file into `buf`, returning its length.
///
/// `std::fs::read_to_end` would add a `statx` and an `lseek` per file: six system calls
/// instead of three. /proc's single-record files (`status`, `stat`) hand over their whole text in
/// one `read` when it fits, so a short read is the end.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut file = File::open(path)?;
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    let mut len = 0;
    loop {
        let got = file.read(&mut buf[len..])?;
        len += got;
        if got == 0 || len < buf.len() {
            return Ok(len);
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// Runs `f` on every pid, spread over the CPUs: a scan is bound by the kernel formatting
/// each file, which runs on the reading thread's CPU. Results keep no particular order.
fn scan<T: Send>(pids: &[u32], f: impl Fn(u32, &mut Vec<u8>) -> Option<T> + Sync) -> Vec<T> {
    const PER_THREAD_MIN: usize = 256;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let threads = threads.min(pids.len() / PER_THREAD_MIN).max(1);
    let run = |chunk: &[u32]| {
        let mut buf = Vec::new();
        chunk.iter().filter_map(|&pid| f(pid, &mut buf)).collect::<Vec<T>>()
    };
    if threads == 1 {
        return run(pids);
    }
    let chunk = pids.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = pids.chunks(chunk).map(|c| s.spawn(|| run(c))).collect();
        // A scan thread only parses text; if one panicked, that is a bug worth surfacing.
        handles.into_iter().flat_map(|h| h.join().expect("scan thread panicked")).collect()
    })
}

/// A reader of `/proc` (or of a fake tree laid out like it).
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: std::path::PathBuf,
}

impl ProcFs {
    /// A reader of the tree at `root`, normally `/proc`.
    pub fn new(root: impl Into<std::path::PathBuf>) -> ProcFs {
        ProcFs { root: root.into() }
    }

    /// Every numeric directory of the root, in no particular order.
    ///
    /// # Errors
    ///
    /// Fails when the root cannot be read (no /proc mounted).
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let mut pids = Vec::with_capacity(1024);
        for entry in std::fs::read_dir(&self.root)? {
            let Ok(entry) = entry else { continue };
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    /// The status of `pid`; `None` when it is gone (or its status cannot be parsed).
    pub fn status(&self, pid: u32) -> Option<Status> {
        self.status_with(pid, &mut Vec::new())
    }

    fn status_with(&self, pid: u32, buf: &mut Vec<u8>) -> Option<Status> {
        let len = read_into(&self.root.join(format!("{pid}/status")), buf).ok()?;
        parse_status(&String::from_utf8_lossy(&buf[..len]))
    }

    /// The start time of `pid` in seconds since the epoch, given the boot time.
    fn start_time_with(&self, pid: u32, boot: Option<i64>, ticks: u64, buf: &mut Vec<u8>) -> Option<i64> {
        let start = self.start_ticks_with(pid, buf)?;
        Some(boot? + (start / ticks.max(1)) as i64)
    }

    fn start_ticks_with(&self, pid: u32, buf: &mut Vec<u8>) -> Option<u64> {
        let len = read_into(&self.root.join(format!("{pid}/stat")), buf).ok()?;
        parse_stat_start_ticks(&String::from_utf8_lossy(&buf[..len]))
    }

    /// The start time of `pid` in seconds since the epoch; `None` when it is gone.
    pub fn start_time(&self, pid: u32) -> Option<i64> {
        self.start_time_with(pid, self.boot_time(), super::sys::clock_ticks(), &mut Vec::new())
    }

    /// The boot time, from `stat` at the root.
    pub fn boot_time(&self) -> Option<i64> {
        std::fs::read_to_string(self.root.join("stat")).ok().and_then(|t| parse_boot_time(&t))
    }

    /// Lists every process, with names from `passwd`.
    ///
    /// # Errors
    ///
    /// Fails only when the root cannot be read; vanished processes are skipped.
    pub fn list_processes(&self, passwd: &Passwd) -> io::Result<Vec<Process>> {
        Ok(self.list_processes_of(&self.pids()?, passwd))
    }

    /// [`ProcFs::list_processes`] for the given pids (from [`ProcFs::pids`]).
    ///
    /// Only `status` is read: the start time (a second file, `stat`) is left unknown, since
    /// nothing a run decides depends on it; [`ProcFs::start_time`] reads it for one pid.
    pub fn list_processes_of(&self, pids: &[u32], passwd: &Passwd) -> Vec<Process> {
        let mut out = scan(pids, |pid, buf| {
            let st = self.status_with(pid, buf)?;
            Some(process(pid, st.uids, (st.state, st.is_dead()), st.name, passwd))
        });
        out.sort_by_key(|p| p.pid);
        out
    }

    /// The pids whose `/proc/PID` directory belongs to one of `uids`, in one pass: a `stat`
    /// per process, about five times cheaper than reading `status`.
    ///
    /// The directory's owner is the effective uid of a dumpable process, and root for a
    /// non-dumpable one (after a setuid exec), so this is a fast first look, never proof
    /// that a uid has no process: [`ProcFs::owned_by`] is.
    ///
    /// # Errors
    ///
    /// Fails only when the root cannot be read.
    pub fn owned_dirs_any(&self, uids: &[u32]) -> io::Result<Vec<u32>> {
        use std::os::unix::fs::MetadataExt;
        // One thread: `DirEntry::metadata` is an fstatat relative to the open directory,
        // cheaper than a path walk per pid even when those are spread over two CPUs.
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if entry.metadata().is_ok_and(|m| uids.contains(&m.uid())) {
                out.push(pid);
            }
        }
        Ok(out)
    }

    /// The processes whose real, effective or saved uid is `uid`, with their status. Only
    /// `status` is read, to keep the scan short.
    ///
    /// # Errors
    ///
    /// Fails only when the root cannot be read.
    pub fn owned_by(&self, uid: u32) -> io::Result<Vec<(u32, Status)>> {
        self.owned_by_any(&[uid])
    }

    /// [`ProcFs::owned_by`] for a set of uids, in one scan.
    ///
    /// # Errors
    ///
    /// Fails only when the root cannot be read.
    pub fn owned_by_any(&self, uids: &[u32]) -> io::Result<Vec<(u32, Status)>> {
        Ok(scan(&self.pids()?, |pid, buf| {
            let st = self.status_with(pid, buf)?;
            uids.iter().any(|u| st.is_owned_by(*u)).then_some((pid, st))
        }))
    }

    /// The processes whose real, effective or saved uid is one of `uids`, read from
    /// `status` alone: no start time, no user name (verification asks who owns what, and
    /// whether it is alive, nothing more).
    ///
    /// # Errors
    ///
    /// Fails only when the root cannot be read.
    pub fn processes_of(&self, uids: &[u32]) -> io::Result<Vec<Process>> {
        let none = Passwd::default();
        let mut out: Vec<Process> = self
            .owned_by_any(uids)?
            .into_iter()
            .map(|(pid, st)| {
                let dead = st.is_dead();
                process(pid, st.uids, (st.state, dead), st.name, &none)
            })
            .collect();
        out.sort_by_key(|p| p.pid);
        Ok(out)
    }

    /// The session id of `pid`; `None` when it is gone.
    pub fn session_of(&self, pid: u32) -> Option<u32> {
        let mut buf = Vec::new();
        let len = read_into(&self.root.join(format!("{pid}/stat")), &mut buf).ok()?;
        parse_stat_session(&String::from_utf8_lossy(&buf[..len]))
    }

    /// The live (not zombie) processes whose session id is one of `sessions`, as
    /// (pid, session id, status). A `stat` per process, and a `status` only for members.
    ///
    /// # Errors
    ///
    /// Fails only when the root cannot be read; vanished processes are skipped.
    pub fn session_members(&self, sessions: &[u32]) -> io::Result<Vec<(u32, u32, Status)>> {
        Ok(scan(&self.pids()?, |pid, buf| {
            let len = read_into(&self.root.join(format!("{pid}/stat")), buf).ok()?;
            let sid = parse_stat_session(&String::from_utf8_lossy(&buf[..len]))?;
            if !sessions.contains(&sid) {
                return None;
            }
            let st = self.status_with(pid, buf)?;
            (!st.is_dead()).then_some((pid, sid, st))
        }))
    }

    /// `pid` and its ancestors, child first, up to (not including) pid 0.
    pub fn ancestry(&self, pid: u32) -> Vec<u32> {
        let mut chain = vec![pid];
        let mut current = pid;
        while let Some(st) = self.status(current) {
            if st.ppid == 0 || chain.contains(&st.ppid) || chain.len() > 4096 {
                break;
            }
            chain.push(st.ppid);
            current = st.ppid;
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_text(name: &str, state: &str, ppid: u32, uids: &str) -> String {
        format!(
            "Name:\t{name}\nUmask:\t0022\nState:\t{state}\nTgid:\t5\nNgid:\t0\nPid:\t5\nPPid:\t{ppid}\n\
             TracerPid:\t0\nUid:\t{uids}\nGid:\t0\t0\t0\t0\nFDSize:\t64\n"
        )
    }

    fn stat_text(pid: u32, comm: &str, start: u64) -> String {
        stat_text_in(pid, comm, start, 6)
    }

    fn stat_text_in(pid: u32, comm: &str, start: u64, session: u32) -> String {
        let mut fields = vec![format!("{pid}"), format!("({comm})"), "S".into()];
        // fields 4..=21 (6 = session), then 22 = start time, then a few more
        for i in 4..=21 {
            fields.push(if i == 6 { session.to_string() } else { i.to_string() });
        }
        fields.push(start.to_string());
        fields.extend(["1000", "200", "18446744073709551615"].map(String::from));
        fields.join(" ")
    }

    #[test]
    fn parses_status() {
        let st = parse_status(&status_text("bash", "S (sleeping)", 1, "1001\t0\t1002\t0")).unwrap();
        assert_eq!(st.name, "bash");
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.uids, [1001, 0, 1002, 0]);
        assert!(st.is_owned_by(1002) && st.is_owned_by(0) && !st.is_owned_by(5));
        let z = parse_status(&status_text("a\\nb", "Z (zombie)", 1, "1\t1\t1\t1")).unwrap();
        assert!(z.is_dead());
        // A main thread that exited while two threads run: Z, but alive.
        let text = status_text("py", "Z (zombie)", 1, "1\t1\t1\t1") + "Threads:\t3\n";
        let leaderless = parse_status(&text).unwrap();
        assert_eq!(leaderless.threads, 3);
        assert!(!leaderless.is_dead());
        let text = status_text("py", "Z (zombie)", 1, "1\t1\t1\t1") + "Threads:\t1\n";
        assert!(parse_status(&text).unwrap().is_dead());
        assert_eq!(z.name, "a\nb");
        assert!(parse_status("Name:\tx\nState:\tS\n").is_none());
        assert!(parse_status("").is_none());
        assert!(parse_status("Name:\tx\nState:\tS\nPPid:\t1\nUid:\t1\t2\n").is_none());
    }

    #[test]
    fn parses_stat_with_hostile_comm() {
        assert_eq!(parse_stat_start_ticks(&stat_text(7, "a) b (c", 4242)), Some(4242));
        assert_eq!(parse_stat_start_ticks("7 (x) S 1 2"), None);
        assert_eq!(parse_stat_start_ticks("garbage"), None);
    }

    #[test]
    fn parses_stat_session() {
        assert_eq!(parse_stat_session(&stat_text_in(7, "a) b (c", 1, 4242)), Some(4242));
        let real = "1234 (sleep) S 1 1230 1230 0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 8623 5623808";
        assert_eq!(parse_stat_session(real), Some(1230));
        assert_eq!(parse_stat_session("7 (x) S 1 2"), None);
        assert_eq!(parse_stat_session("7 (x) S 1 2 -3 0"), None);
        assert_eq!(parse_stat_session("garbage"), None);
    }

    #[test]
    fn parses_boot_time_and_uid_min() {
        assert_eq!(parse_boot_time("cpu 1 2\nbtime 1700000000\nprocesses 5\n"), Some(1_700_000_000));
        assert_eq!(parse_boot_time("cpu 1\n"), None);
        assert_eq!(parse_uid_min("# UID_MIN 5\nUID_MIN\t\t\t 1500\nUID_MAX 60000\n"), 1500);
        assert_eq!(parse_uid_min("SYS_UID_MIN 100\n"), 1000);
        assert_eq!(parse_uid_min("UID_MIN nonsense\n"), 1000);
        assert_eq!(parse_uid_max("UID_MIN 1000\nUID_MAX\t\t60000\n"), 60000);
        assert_eq!(parse_uid_max("UID_MAX 59999\n"), 59999);
        assert_eq!(parse_uid_max("# UID_MAX 5\n"), 60000);
    }

    #[test]
    fn lists_a_fake_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("stat"), "cpu 0\nbtime 1000\n").unwrap();
        let ticks = crate::platform::linux::sys::clock_ticks();
        let add = |pid: u32, name: &str, state: &str, ppid: u32, uids: &str, start_s: u64| {
            let d = root.join(pid.to_string());
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("status"), status_text(name, state, ppid, uids)).unwrap();
            // Session 20 for the children of 20, else one's own.
            let session = if ppid == 20 { 20 } else { pid };
            std::fs::write(d.join("stat"), stat_text_in(pid, name, start_s * ticks, session)).unwrap();
        };
        add(1, "init", "S (sleeping)", 0, "0\t0\t0\t0", 0);
        add(20, "bash", "S (sleeping)", 1, "1001\t1001\t1001\t1001", 5);
        add(21, "su", "S (sleeping)", 20, "1001\t0\t0\t0", 6);
        add(22, "dead", "Z (zombie)", 20, "1001\t1001\t1001\t1001", 7);
        add(23, "sshd", "S (sleeping)", 1, "0\t1001\t0\t0", 8);
        // A process that vanished: directory without files.
        std::fs::create_dir(root.join("30")).unwrap();
        std::fs::create_dir(root.join("self")).unwrap();
        let passwd = Passwd::parse("root:x:0:0::/:/bin/sh\nalice:x:1001:1001::/:/bin/sh\n");

        let procfs = ProcFs::new(root);
        let list = procfs.list_processes(&passwd).unwrap();
        assert_eq!(list.iter().map(|p| p.pid).collect::<Vec<_>>(), [1, 20, 21, 22, 23]);
        let su = &list[2];
        assert_eq!((su.uid, su.euid, su.suid), (Some(1001), Some(0), Some(0)));
        assert_eq!(su.user.as_deref(), Some("alice"));
        // The listing reads `status` only; the start time is `stat`'s, read for one pid.
        assert_eq!(procfs.start_time(21), Some(1006));
        assert_eq!(list[1].euid, None);
        assert!(list[3].zombie);
        assert_eq!(list[4].euid, Some(1001));

        let mut owned: Vec<(u32, bool)> =
            procfs.owned_by(1001).unwrap().into_iter().map(|(pid, st)| (pid, st.is_dead())).collect();
        owned.sort();
        assert_eq!(owned, [(20, false), (21, false), (22, true), (23, false)]);
        assert_eq!(procfs.ancestry(21), [21, 20, 1]);

        // Session 20: 20 itself, 21, and the zombie 22 (left out); 30 vanished.
        let mut members: Vec<(u32, u32, u32)> =
            procfs.session_members(&[20, 77]).unwrap().into_iter().map(|(p, s, st)| (p, s, st.uids[0])).collect();
        members.sort();
        assert_eq!(members, [(20, 20, 1001), (21, 20, 1001)]);
        assert!(procfs.session_members(&[]).unwrap().is_empty());
        assert_eq!(procfs.session_of(23), Some(23));
        assert_eq!(procfs.session_of(30), None);
        assert_eq!(procfs.ancestry(99), [99]);
    }
}
