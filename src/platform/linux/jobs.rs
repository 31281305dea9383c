//! Scheduled logoffs on Linux: where their files live, who may own them, the lock, and
//! what runs a job so that it outlives the caller.
//!
//! - **Where:** `/run/logoff-users/jobs/`, mode 0700, owned by root. `/run` is a tmpfs: a
//!   job's file goes with a reboot, as does whatever was waiting to run it, and a reboot
//!   has logged everyone off anyway.
//! - **Trust:** a directory or file not owned by root (or by the account the tool runs as,
//!   for a test's own directory), or writable by its group or others, is refused; files are
//!   opened without following symlinks and must be plain files with one link.
//! - **Lock:** `flock(LOCK_EX)` on a lock file in the directory; released when it closes.
//! - **What runs the job**, so that it survives the caller's process tree, session and
//!   cgroup being killed, and the RMM agent's restart:
//!   - where systemd runs (`/run/systemd/system` exists), a transient service started over
//!     D-Bus (`StartTransientUnit` on `org.freedesktop.systemd1`): a unit of its own in
//!     `system.slice`, a child of PID 1, in no session. It is gone when it exits
//!     (`CollectMode=inactive-or-failed`); its output is in the journal.
//!   - elsewhere, a daemon: `setsid` then a second fork, so the runner is in a session and
//!     process group of its own, not a session leader, adopted by init (or the nearest
//!     child subreaper), with `/` as its directory and no inherited descriptor but
//!     `/dev/null` as stdio. A kill of the caller's process group, session or process
//!     tree does not reach it, nor does an agent restart that kills those. Without a
//!     manager it stays in the caller's cgroup (the tool writes no cgroup file): a
//!     supervisor that kills a whole cgroup (a container runtime stopping the container)
//!     ends it too, along with everything else there.
//!
//! The daemon's two forks and the lock are the only `unsafe` here, each with its SAFETY.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zbus::blocking::Connection;
use zbus::zvariant::Value;

use super::logind::{
    CONNECT_TIMEOUT, ConnectFailed, SYSTEMD_DESTINATION, SYSTEMD_MANAGER_IFACE, SYSTEMD_PATH, connect_pinged,
};
use crate::error::{Error, ErrorKind, Result};
use crate::schedule::{Launch, Via};

/// Where job files live.
pub(crate) const DEFAULT_DIR: &str = "/run/logoff-users/jobs";

/// The default directory of job files.
pub(crate) fn default_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DIR)
}

fn euid() -> u32 {
    super::sys::effective_uid()
}

/// Why a file or directory there cannot be trusted, or `None`: not owned by root or by the
/// account the tool runs as, or writable by group or others.
fn untrusted(m: &std::fs::Metadata) -> Option<String> {
    if m.uid() != 0 && m.uid() != euid() {
        return Some(format!("owned by uid {}, not by root", m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Some(format!("writable by its group or others (mode {:o})", m.mode() & 0o7777));
    }
    None
}

/// Makes sure `dir` exists (when `create`), is a directory and can be trusted, and so can
/// its parent. Returns whether it exists.
///
/// # Errors
///
/// `PermissionDenied` when it cannot be created (not root); `Os` with the reason when it
/// or its parent cannot be trusted.
pub(crate) fn ensure_dir(dir: &Path, create: bool) -> Result<bool> {
    let action = || format!("use the job directory {}", dir.display());
    if create {
        if let Some(parent) = dir.parent() {
            if !parent.exists() {
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .recursive(true)
                    .create(parent)
                    .map_err(|e| Error::from_io(action(), &e))?;
            }
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::from_io(action(), &e)),
        }
    }
    let m = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::from_io(action(), &e)),
    };
    if !m.is_dir() {
        return Err(Error::new(ErrorKind::Os, action(), "it is not a directory (a symlink or a file is refused)"));
    }
    if let Some(why) = untrusted(&m) {
        return Err(Error::new(ErrorKind::Os, action(), format!("it is {why}; refusing to trust it")));
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        let pm = std::fs::metadata(parent).map_err(|e| Error::from_io(action(), &e))?;
        // A sticky, world-writable parent (/tmp) cannot rename our directory away.
        let sticky_tmp = pm.mode() & 0o1000 != 0 && pm.uid() == 0;
        if let Some(why) = untrusted(&pm).filter(|_| !sticky_tmp) {
            return Err(Error::new(
                ErrorKind::Os,
                action(),
                format!("its parent {} is {why}; refusing to trust it", parent.display()),
            ));
        }
    }
    Ok(true)
}

/// Opens an existing job file for reading, never through a symlink.
pub(crate) fn open_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

/// Why an opened job file cannot be trusted, or `None`.
pub(crate) fn check_file(file: &File) -> Option<String> {
    let m = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot be examined: {e}")),
    };
    if !m.is_file() {
        return Some("not a plain file".into());
    }
    if m.nlink() != 1 {
        return Some(format!("has {} links (a hard link of another file?)", m.nlink()));
    }
    untrusted(&m)
}

/// Creates a new file only its owner can read and write, failing if it exists.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens (or creates) a file to append to, only its owner can read and write.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

/// Opens (or creates) a lock file (the caller checks that it can be trusted).
pub(crate) fn open_lock(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Takes an exclusive lock on `file`, waiting for it; it is released when the file closes.
pub(crate) fn lock_exclusive(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: flock takes a descriptor this File owns and an operation flag.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Renames `from` over `to` (atomic; readers that have the old file open keep reading it).
pub(crate) fn replace(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// Makes the new file's contents durable, then the directory entry of the rename.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// This boot of the machine.
pub(crate) fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

/// Whether process `pid` is certainly gone: no such process in this pid namespace, or a
/// dead one ([`Status::is_dead`](super::procfs::Status::is_dead): a zombie whose threads
/// have all exited). A pid reused by another process looks alive, which only delays the
/// verdict.
pub(crate) fn process_gone(pid: u32) -> bool {
    match super::procfs::ProcFs::new("/proc").status(pid) {
        Some(st) => st.is_dead(),
        None => !Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// Whether systemd is the service manager (what `sd_booted` checks).
fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Starts what runs the job: a transient systemd service, or a daemon. Returns what it
/// started, for the job file and the output.
///
/// # Errors
///
/// When systemd runs but cannot be reached or refuses the unit (no silent fall back to a
/// daemon: under systemd a daemon would die with the caller's cgroup), or the daemon
/// cannot be started.
pub(crate) fn launch(l: &Launch) -> Result<String> {
    let via = match l.via {
        Via::Auto if systemd_runs() && euid() == 0 => Via::Systemd,
        Via::Auto => Via::Daemon,
        v => v,
    };
    match via {
        Via::Systemd => start_transient_service(l),
        Via::Daemon => start_daemon(l),
        v => Err(Error::unsupported(format!("start job {} as {v}", l.id), "only systemd or daemon on Linux")),
    }
}

/// After the job is over or cancelled: nothing to withdraw on Linux (the transient unit
/// goes by itself, the daemon exits).
pub(crate) fn withdraw(_id: &str) {}

/// The Windows service's entry point has no meaning here.
pub(crate) fn serve(_run: Box<dyn FnOnce(&std::sync::atomic::AtomicBool) -> i32 + Send>) -> Result<i32> {
    Err(Error::unsupported("run as a Windows service", "--service is for Windows"))
}

fn unit_name(id: &str) -> String {
    format!("logoff-users-job-{id}.service")
}

fn connect_system_bus() -> Result<Connection> {
    const ACTION: &str = "connect to systemd on the system bus";
    // A bus or systemd that does not answer within CONNECT_TIMEOUT must not hold up the caller.
    match connect_pinged(None, SYSTEMD_DESTINATION, SYSTEMD_PATH) {
        Ok(conn) => Ok(conn),
        Err(ConnectFailed::Thread(e)) => Err(Error::from_io(ACTION, &e)),
        Err(ConnectFailed::Bus(e)) => Err(Error::new(ErrorKind::Os, ACTION, e.to_string())),
        Err(ConnectFailed::TimedOut) => Err(Error::new(
            ErrorKind::Os,
            ACTION,
            format!("the system bus or systemd did not answer within {}s", CONNECT_TIMEOUT.as_secs()),
        )),
    }
}

fn start_transient_service(l: &Launch) -> Result<String> {
    let unit = unit_name(l.id.as_str());
    let action = format!("start {unit} through systemd");
    let conn = connect_system_bus()?;
    let exe = l.exe.to_string_lossy().into_owned();
    let mut argv = vec![exe.clone()];
    argv.extend(l.args.iter().map(|a| a.to_string_lossy().into_owned()));
    let exec_start: Vec<(String, Vec<String>, bool)> = vec![(exe, argv, false)];
    let description = format!("logoff-users scheduled logoff {}", l.id);
    let properties: Vec<(&str, Value)> = vec![
        ("Description", Value::from(description.as_str())),
        ("ExecStart", Value::from(exec_start)),
        ("Type", Value::from("exec")),
        ("CollectMode", Value::from("inactive-or-failed")),
    ];
    let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
    conn.call_method(
        Some(SYSTEMD_DESTINATION),
        SYSTEMD_PATH,
        Some(SYSTEMD_MANAGER_IFACE),
        "StartTransientUnit",
        &(unit.as_str(), "fail", properties, aux),
    )
    .map_err(|e| Error::new(ErrorKind::Os, action, e.to_string()))?;
    Ok(format!("systemd unit {unit}"))
}

fn start_daemon(l: &Launch) -> Result<String> {
    let action = format!("start the runner of job {}", l.id);
    let mut cmd = Command::new(&l.exe);
    cmd.args(&l.args).current_dir("/").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec, and calls only
    // async-signal-safe system calls (setsid, clone without handlers, _exit, umask,
    // close_range); it allocates nothing.
    unsafe {
        cmd.pre_exec(daemonize_child);
    }
    let mut intermediate = cmd.spawn().map_err(|e| Error::from_io(&action, &e))?;
    // The first child exits as soon as the second is forked; the runner is its child,
    // adopted by init once it exits.
    let status = intermediate.wait().map_err(|e| Error::from_io(&action, &e))?;
    if !status.success() {
        return Err(Error::new(ErrorKind::Os, action, format!("the first fork ended with {status}")));
    }
    Ok("daemon (setsid, double fork)".to_string())
}

/// In the child of `Command::spawn`, before exec: a session of its own, then a second fork
/// whose parent exits at once, so the runner is not a session leader and is adopted by
/// init; `/` is its directory (set by the Command), umask 077, and any descriptor it
/// inherited beyond stdio closes at exec.
fn daemonize_child() -> io::Result<()> {
    // SAFETY: setsid has no preconditions; it fails only if we lead a process group,
    // which a freshly forked child does not.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a raw clone with SIGCHLD and no other flag is fork(2) without glibc's atfork
    // handlers (which may take locks another thread held at the first fork); the child
    // gets a copy of this stack and continues below, as after fork.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        // SAFETY: _exit ends the intermediate child at once, running no destructor or
        // atexit handler of the parent's copy.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: umask only sets the process's file mode mask.
    unsafe { libc::umask(0o077) };
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only marks descriptors 3 and up as
    // close-on-exec; an old kernel's ENOSYS is ignored (std's own are close-on-exec).
    let _ = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_directory_is_trusted_only_when_root_or_we_own_it_and_others_cannot_write() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("jobs");
        assert!(!ensure_dir(&dir, false).unwrap(), "absent, not created");
        assert!(ensure_dir(&dir, true).unwrap());
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o733)).unwrap();
        let e = ensure_dir(&dir, false).unwrap_err();
        assert!(e.to_string().contains("writable by its group or others (mode 733)"), "{e}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A symlink to a good directory is refused too.
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(ensure_dir(&link, false).unwrap_err().to_string().contains("not a directory"));
    }

    #[test]
    fn files_are_checked_on_the_open_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        drop(create_new(&path).unwrap());
        assert!(create_new(&path).is_err(), "never over an existing file");
        let f = open_existing(&path).unwrap();
        assert_eq!(check_file(&f), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).unwrap();
        assert!(check_file(&open_existing(&path).unwrap()).unwrap().contains("writable"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::hard_link(&path, dir.path().join("b.json")).unwrap();
        assert!(check_file(&open_existing(&path).unwrap()).unwrap().contains("2 links"));
        let link = dir.path().join("c.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(open_existing(&link).is_err(), "symlinks are not followed");
    }

    #[test]
    fn a_process_that_exited_is_gone_a_live_one_is_not() {
        assert!(!process_gone(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(process_gone(pid) || !Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_boot_id_is_read() {
        let id = boot_id().expect("/proc/sys/kernel/random/boot_id");
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(boot_id().unwrap(), id);
    }
}
