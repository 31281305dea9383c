//! A user's cgroup-v2 slice (`user.slice/user-UID.slice`, which systemd creates for every
//! logged-in uid): found, and repaired when an earlier run left it frozen. Nothing else.
//!
//! The tool does not freeze or kill cgroups any more. Versions up to 0.1.0 froze a user's
//! slice while checking it before `cgroup.kill`; a tool killed by SIGKILL in that window
//! (an RMM agent's time limit) left it frozen, and every new login of that user hung. Where
//! systemd runs it owns the cgroup tree, and a freeze written behind its back is one it does
//! not know about. So now: logind's `KillUser` reaches the slice through systemd, `kill(-1)`
//! as the uid reaches the rest, and here a frozen target slice is thawed before acting on
//! that user, through systemd's `ThawUnit` where systemd runs, and by writing
//! `cgroup.freeze` only where that did not do it (a freeze systemd never knew of, or a host
//! without a manager).
//!
//! The paths come from `/proc/self/mountinfo`; without a cgroup2 mount whose root is the
//! cgroup namespace's root, or without the slice, nothing here is used. The parsers are
//! pure and tested; the rest only reads and writes cgroup files.

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

/// The value of `key` in the text of `cgroup.events` (`populated 1`, `frozen 0`).
pub fn parse_events(text: &str, key: &str) -> Option<bool> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim() == "1")
    })
}

/// Where this namespace's cgroup2 hierarchy is mounted, if it is.
pub fn cgroup2_mount() -> Option<PathBuf> {
    parse_cgroup2_mount(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)
}

/// The directory of `uid`'s slice under the cgroup2 mount `mount`, if it exists.
pub fn user_slice_under(mount: &Path, uid: u32) -> Option<PathBuf> {
    let dir = mount.join(format!("user.slice/user-{uid}.slice"));
    dir.join("cgroup.freeze").exists().then_some(dir)
}

/// Whether the cgroup at `dir` is asked to be frozen (`cgroup.freeze` reads 1).
///
/// # Errors
///
/// When `cgroup.freeze` cannot be read.
pub fn is_frozen(dir: &Path) -> io::Result<bool> {
    Ok(std::fs::read_to_string(dir.join("cgroup.freeze"))?.trim() == "1")
}

/// Thaws the cgroup at `dir` by writing `cgroup.freeze`, and waits up to a second for
/// `cgroup.events` to say `frozen 0`.
///
/// # Errors
///
/// When the file cannot be written, or the cgroup is still frozen after the wait.
pub fn thaw(dir: &Path) -> io::Result<()> {
    std::fs::write(dir.join("cgroup.freeze"), "0")?;
    if wait_event(dir, "frozen", false, Instant::now() + Duration::from_secs(1)) {
        Ok(())
    } else {
        Err(io::Error::other(format!("{} is still frozen after a second", dir.display())))
    }
}

/// Polls `cgroup.events` of `dir` until `key` has `value` or `until`; whether it got there.
fn wait_event(dir: &Path, key: &str, value: bool, until: Instant) -> bool {
    loop {
        match std::fs::read_to_string(dir.join("cgroup.events")) {
            Ok(text) if parse_events(&text, key) == Some(value) => return true,
            // The cgroup went away: systemd removes a unit's cgroup once it is empty.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            _ => {}
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
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
    fn reads_events() {
        let events = "populated 1\nfrozen 0\n";
        assert_eq!(parse_events(events, "populated"), Some(true));
        assert_eq!(parse_events(events, "frozen"), Some(false));
        assert_eq!(parse_events(events, "other"), None);
    }
}
