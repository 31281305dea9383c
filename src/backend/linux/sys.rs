//! The only `unsafe` code of the Linux backend: small wrappers over raw system calls, each
//! returning `io::Result`.
//!
//! Raw `libc::syscall` is used where glibc's wrapper would do the wrong thing (credential
//! changes, which glibc broadcasts to every thread) or does not exist on older glibc or musl
//! (`pidfd_open`, `pidfd_send_signal`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// The effective uid of the calling thread.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Clock ticks per second, the unit of `/proc/PID/stat` times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Opens a pidfd for `pid`: a handle that keeps naming that very process, even after its
/// pid is reused.
///
/// # Errors
///
/// `ESRCH` when there is no such process.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags by value; no memory is passed.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) })?;
    // SAFETY: on success the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Sends `signal` to the process behind `pidfd`.
///
/// # Errors
///
/// `ESRCH` when that process has exited (even if its pid now names another process).
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: the fd is a valid open pidfd; a null siginfo makes the kernel fill in the
    // same fields kill(2) would.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    })?;
    Ok(())
}

/// Sends `signal` to every process that a process with the credentials of `uid` may signal,
/// that is, every process whose real or saved uid is `uid` (`kill(-1, signal)`).
///
/// The kernel delivers `kill(-1)` under the task-list lock, and a fork that races with it
/// is restarted, so no child of a signalled process escapes: unlike a scan of /proc followed
/// by one `kill` per pid, this does not lose a race with a fork storm.
///
/// It runs in a fresh thread that drops its own credentials to `uid`/`gid` with the raw
/// system calls, which on Linux change only the calling thread (glibc's wrappers would
/// change every thread of the tool). The thread then holds no capability, which is checked
/// before it signals anything. The thread ends right after, so the tool itself keeps its
/// credentials. `kill(-1)` never signals the caller's own process nor PID 1.
///
/// # Errors
///
/// Fails if the credentials cannot be dropped (the tool is not root), if a capability
/// survived the drop, or if `kill` fails. `kill(-1)` succeeds even when it signalled
/// nothing, so success says nothing about how many processes there were.
pub fn kill_all_as(uid: u32, gid: u32, signal: libc::c_int) -> io::Result<()> {
    if uid == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "refusing to signal as uid 0"));
    }
    std::thread::Builder::new()
        .name("kill-as-uid".into())
        .spawn(move || -> io::Result<()> {
            // SAFETY: setgroups(0, NULL) clears the supplementary groups of this thread only.
            check(unsafe { libc::syscall(libc::SYS_setgroups, 0 as libc::size_t, std::ptr::null::<libc::gid_t>()) })?;
            // SAFETY: raw setresgid changes the credentials of this thread only.
            check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
            // SAFETY: raw setresuid changes the credentials of this thread only; moving all
            // three uids away from 0 also clears its permitted and effective capabilities.
            check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })?;
            if thread_has_capabilities()? {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "capabilities survived the switch to the target uid (securebits set?)",
                ));
            }
            // SAFETY: kill takes plain integers.
            check(unsafe { libc::syscall(libc::SYS_kill, -1 as libc::pid_t, signal) })?;
            Ok(())
        })?
        .join()
        .map_err(|_| io::Error::other("the kill-as-uid thread panicked"))?
}

/// Whether the calling thread holds any effective capability.
fn thread_has_capabilities() -> io::Result<bool> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header { version: VERSION_3, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: header and data are valid for writing; version 3 uses two Data structs.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()) })?;
    Ok(data.iter().any(|d| d.effective != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfd_of_self_can_be_signalled_with_zero() {
        let fd = pidfd_open(std::process::id()).unwrap();
        pidfd_send_signal(&fd, 0).unwrap();
    }

    #[test]
    fn pidfd_of_missing_pid_is_esrch() {
        let err = pidfd_open(u32::MAX).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
    }

    #[test]
    fn kill_all_as_root_is_refused() {
        assert!(kill_all_as(0, 0, 0).is_err());
    }

    /// A pid reused between listing and killing: the pidfd still names the exited process,
    /// so the signal cannot reach the new owner of the pid. The reuse is forced with
    /// `ns_last_pid` (root only), with processes this test starts.
    #[test]
    fn a_pidfd_never_signals_the_next_owner_of_its_pid() {
        if effective_uid() != 0 {
            assert!(
                std::env::var("LOGOFF_REQUIRE_REAL_TESTS").as_deref() != Ok("1"),
                "LOGOFF_REQUIRE_REAL_TESTS=1 but not root"
            );
            eprintln!("note: skipping the pid-reuse test: it needs root to set ns_last_pid");
            return;
        }
        let spawn = || std::process::Command::new("sleep").arg("600").spawn().unwrap();
        // Other processes on the machine may take the pid first: try a few times.
        for _ in 0..20 {
            let mut old = spawn();
            let pid = old.id();
            let fd = pidfd_open(pid).unwrap();
            old.kill().unwrap();
            old.wait().unwrap();
            std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
            let mut new = spawn();
            if new.id() != pid {
                new.kill().unwrap();
                new.wait().unwrap();
                continue;
            }
            let err = pidfd_send_signal(&fd, libc::SIGKILL).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(new.try_wait().unwrap().is_none(), "the new owner of pid {pid} was signalled");
            new.kill().unwrap();
            new.wait().unwrap();
            return;
        }
        panic!("could not get a pid reused in 20 tries");
    }
}
