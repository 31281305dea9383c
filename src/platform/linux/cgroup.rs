//! A user's cgroup-v2 slice (`user.slice/user-UID.slice`, which systemd creates for every
//! logged-in uid): a second atomic way, besides `kill(-1)` as the uid, to end every process
//! of a login.
//!
//! Writing `cgroup.kill` SIGKILLs every process of the subtree at once, forks included.
//! But a user's slice may hold processes the sweep must never touch: a root shell from
//! `sudo -i` in the user's session, another user's process from `sudo -u`, or the tool
//! itself when it runs with sudo from that session. So the sweep freezes the slice first
//! (then no process in it runs, forks or changes credentials), checks every member, and
//! writes `cgroup.kill` only to cgroups whose members are all processes the sweep would
//! end anyway (the target's by real, effective or saved uid, and not spared): the whole
//! slice, or else each such session scope or service in it; in every case it thaws the
//! slice.
//!
//! The paths come from `/proc/self/mountinfo` and `/proc/PID/cgroup`; without a cgroup2
//! mount whose root is the cgroup namespace's root, or without the slice, nothing here is
//! used. The parsers are pure and tested; the rest only reads and writes cgroup files.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The mount point of the cgroup2 file system, from the text of `/proc/self/mountinfo`.
/// Only a mount of the namespace's root counts (field 4 is `/`), so that paths in
/// `/proc/PID/cgroup` can be joined to it.
pub fn parse_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let fstype = right.split(' ').next()?;
        let point = fields.get(4)?;
        (fstype == "cgroup2" && fields.get(3) == Some(&"/")).then(|| PathBuf::from(unescape_mountinfo(point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The cgroup-v2 path of a process, from the text of `/proc/PID/cgroup` (the `0::` line).
pub fn parse_proc_cgroup(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Whether cgroup `path` is `slice` or inside it.
fn is_within(path: &str, slice: &str) -> bool {
    path == slice || path.strip_prefix(slice).is_some_and(|rest| rest.starts_with('/'))
}

/// The value of `key` in the text of `cgroup.events` (`populated 1`, `frozen 0`).
pub fn parse_events(text: &str, key: &str) -> Option<bool> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim() == "1")
    })
}

/// The slice of one uid.
#[derive(Debug)]
pub struct Slice {
    /// The slice's path inside the hierarchy, as `/proc/PID/cgroup` shows it.
    path: String,
    /// Its directory.
    dir: PathBuf,
}

impl Slice {
    /// The slice of `uid`, when the cgroup2 hierarchy is mounted and the slice exists with
    /// a `cgroup.kill` file (Linux 5.14 and later).
    pub fn of_uid(uid: u32) -> Option<Slice> {
        let mount = parse_cgroup2_mount(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)?;
        let path = format!("/user.slice/user-{uid}.slice");
        let dir = mount.join(path.trim_start_matches('/'));
        dir.join("cgroup.kill").exists().then_some(Slice { path, dir })
    }

    /// Whether `pid` is in the slice; `false` when it is gone.
    pub fn holds(&self, pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .is_some_and(|t| parse_proc_cgroup(&t).is_some_and(|p| is_within(p, &self.path)))
    }

    /// Freezes the slice, asks `may_kill` about every process in it, and writes
    /// `cgroup.kill` where it allowed them all: to the whole slice when every process in it
    /// passed, else to each child cgroup (a session scope, the user manager) whose
    /// processes all passed. A session scope that systemd is still tearing down may hold
    /// its root `sshd` for a moment; that scope is left alone, the others are killed.
    /// The slice is thawed in every case. Then the sweep waits (until `until`) for each
    /// killed cgroup's `cgroup.events` to say `populated 0`: a killed process can look
    /// alive for a moment. Returns whether anything was killed.
    ///
    /// # Errors
    ///
    /// When a cgroup file cannot be read or written; the slice is thawed first.
    pub fn kill_checked(&self, may_kill: impl Fn(u32) -> bool, until: Instant) -> io::Result<bool> {
        write(&self.dir, "cgroup.freeze", "1")?;
        let frozen_by = (Instant::now() + Duration::from_millis(200)).min(until);
        let killed = if wait_event(&self.dir, "frozen", true, frozen_by) {
            self.kill_allowed(&may_kill)
        } else {
            Ok(Vec::new()) // a member would not freeze (uninterruptible sleep): leave it to the scan
        };
        // Thaw whatever happened: a frozen slice would freeze the user's next login too.
        let thawed = write(&self.dir, "cgroup.freeze", "0");
        let killed = killed?;
        match thawed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for dir in &killed {
            wait_event(dir, "populated", false, until);
        }
        Ok(!killed.is_empty())
    }

    /// The cgroups (the slice, or some of its children) it killed, the slice frozen.
    fn kill_allowed(&self, may_kill: &impl Fn(u32) -> bool) -> io::Result<Vec<PathBuf>> {
        let children = child_dirs(&self.dir)?;
        let mut allowed = Vec::new();
        for child in &children {
            if members(child)?.into_iter().all(may_kill) {
                allowed.push(child.clone());
            }
        }
        let own_ok = procs(&self.dir)?.into_iter().all(may_kill);
        let targets = if own_ok && allowed.len() == children.len() { vec![self.dir.clone()] } else { allowed };
        for dir in &targets {
            write(dir, "cgroup.kill", "1")?;
        }
        Ok(targets)
    }
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value)
}

/// Polls `cgroup.events` of `dir` until `key` has `value` or `until`; whether it got there.
fn wait_event(dir: &Path, key: &str, value: bool, until: Instant) -> bool {
    loop {
        match std::fs::read_to_string(dir.join("cgroup.events")) {
            Ok(text) if parse_events(&text, key) == Some(value) => return true,
            // The cgroup went away: systemd removes a unit's cgroup once it is empty.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return key == "populated" && !value,
            _ => {}
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The pids directly in cgroup `dir`.
fn procs(dir: &Path) -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string(dir.join("cgroup.procs"))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// The child cgroups of `dir`.
fn child_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Every pid in cgroup `dir` and the cgroups below it.
fn members(dir: &Path) -> io::Result<Vec<u32>> {
    let mut out = procs(dir)?;
    for child in child_dirs(dir)? {
        out.extend(members(&child)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount() {
        let host = "24 30 0:21 / /sys rw,nosuid - sysfs sysfs rw\n\
                    35 24 0:30 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n\
                    36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(parse_cgroup2_mount(host), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let container = "100 90 0:40 / /sys/fs/cgroup rw shared:5 - cgroup2 cgroup rw\n";
        assert_eq!(parse_cgroup2_mount(container), Some(PathBuf::from("/sys/fs/cgroup")));
        // A bind of a subtree does not map /proc/PID/cgroup paths: not used.
        let subtree = "100 90 0:40 /payload /sys/fs/cgroup rw - cgroup2 cgroup rw\n";
        assert_eq!(parse_cgroup2_mount(subtree), None);
        assert_eq!(parse_cgroup2_mount("36 35 0:31 / /a\\040b rw - cgroup2 cgroup2 rw\n"), Some("/a b".into()));
        assert_eq!(parse_cgroup2_mount(""), None);
        assert_eq!(parse_cgroup2_mount("garbage without separator\n"), None);
    }

    #[test]
    fn reads_proc_cgroup_and_events() {
        let hybrid = "12:pids:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n\
                      0::/user.slice/user-1000.slice/session-3.scope\n";
        let path = parse_proc_cgroup(hybrid).unwrap();
        assert_eq!(path, "/user.slice/user-1000.slice/session-3.scope");
        assert!(is_within(path, "/user.slice/user-1000.slice"));
        assert!(is_within("/user.slice/user-1000.slice", "/user.slice/user-1000.slice"));
        assert!(!is_within("/user.slice/user-10001.slice/x", "/user.slice/user-1000.slice"));
        assert!(!is_within("/system.slice", "/user.slice/user-1000.slice"));
        assert_eq!(parse_proc_cgroup("1:name=systemd:/\n"), None);
        let events = "populated 1\nfrozen 0\n";
        assert_eq!(parse_events(events, "populated"), Some(true));
        assert_eq!(parse_events(events, "frozen"), Some(false));
        assert_eq!(parse_events(events, "other"), None);
    }
}
