//! The only `unsafe` code of the Linux backend: small wrappers over raw system calls, each
//! returning `io::Result`.
//!
//! Raw `libc::syscall` is used where glibc's wrapper would do the wrong thing (credential
//! changes, which glibc broadcasts to every thread) or does not exist on older glibc or musl
//! (`pidfd_open`, `pidfd_send_signal`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

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

/// A clock's time in microseconds (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`, which stops while
/// the machine sleeps, and `CLOCK_BOOTTIME`, which does not); 0 if the clock cannot be
/// read.
pub fn clock_usec(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `ts`, which is valid and owned here.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec.max(0) as u64).saturating_mul(1_000_000) + (ts.tv_nsec.max(0) as u64) / 1000
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
            drop_thread_credentials(uid, gid)?;
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

/// Connects a Unix stream socket to `path` with the credentials of `uid`/`gid`.
///
/// The connect runs in a fresh thread that first drops its own credentials (as
/// [`kill_all_as`] does, the calling thread and the rest of the tool keep theirs), so:
///
/// - the kernel records `uid`/`gid` as the socket's peer credentials (`SO_PEERCRED` is
///   taken from the connecting thread at `connect()`), which is what a D-Bus session bus
///   checks before it lets a client in;
/// - the path is resolved with the user's permissions only: a user who owns the directory
///   cannot point the tool at a socket they could not reach themselves.
///
/// The returned socket carries those credentials whichever thread uses it afterwards.
///
/// # Errors
///
/// Fails if the credentials cannot be dropped (the tool is not root) or the connect fails
/// (`NotFound` when there is no socket, `ConnectionRefused` when nobody listens).
pub fn connect_unix_as(path: &Path, uid: u32, gid: u32) -> io::Result<UnixStream> {
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("connect-as-uid".into())
        .spawn(move || -> io::Result<UnixStream> {
            drop_thread_credentials(uid, gid)?;
            UnixStream::connect(&path)
        })?
        .join()
        .map_err(|_| io::Error::other("the connect-as-uid thread panicked"))?
}

/// Sets every uid and gid of the calling thread to `uid`/`gid` and clears its
/// supplementary groups. Only this thread changes: the raw system calls, unlike glibc's
/// wrappers, do not broadcast to the other threads. Call it only in a thread that ends
/// right after its work, so that no thread of the tool is left with lesser credentials.
fn drop_thread_credentials(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: setgroups(0, NULL) clears the supplementary groups of this thread only.
    check(unsafe { libc::syscall(libc::SYS_setgroups, 0 as libc::size_t, std::ptr::null::<libc::gid_t>()) })?;
    // SAFETY: raw setresgid changes the credentials of this thread only.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: raw setresuid changes the credentials of this thread only; moving all three
    // uids away from 0 also clears its permitted and effective capabilities.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })?;
    Ok(())
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

/// `bpf(2)` commands and values used by [`bpf_task_iter`] (`include/uapi/linux/bpf.h`).
mod bpf {
    pub const PROG_LOAD: libc::c_long = 5;
    pub const LINK_CREATE: libc::c_long = 28;
    pub const ITER_CREATE: libc::c_long = 33;
    pub const PROG_TYPE_TRACING: u32 = 26;
    pub const TRACE_ITER: u32 = 28;
    /// `sizeof(union bpf_attr)` as of Linux 6.1; older kernels accept a larger attr as long
    /// as the bytes they do not know are zero.
    pub const ATTR_SIZE: usize = 144;
}

fn bpf_call(cmd: libc::c_long, attr: &mut [u8; bpf::ATTR_SIZE]) -> io::Result<OwnedFd> {
    // SAFETY: attr is a zero-initialised `union bpf_attr` image of the size passed; every
    // pointer stored in it (by the caller) points to memory that outlives this call.
    let fd = check(unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), bpf::ATTR_SIZE as libc::c_uint) })?;
    // SAFETY: on success these commands return a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

fn put(attr: &mut [u8], at: usize, bytes: &[u8]) {
    attr[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Loads `insns` as a task iterator program (`BPF_PROG_TYPE_TRACING`, attached to the
/// kernel function whose BTF id is `attach_btf_id`, `bpf_iter_task`) and returns its link;
/// [`bpf_iter_open`] starts one pass over the tasks.
///
/// # Errors
///
/// `EPERM` without `CAP_BPF`/`CAP_SYS_ADMIN` (or in a container that filters `bpf`),
/// `EINVAL`/`EACCES` when the verifier refuses the program; then `log` (when not empty)
/// holds its reasons.
pub fn bpf_task_iter_link(insns: &[u64], attach_btf_id: u32, log: &mut [u8]) -> io::Result<OwnedFd> {
    const LICENSE: &[u8] = b"GPL\0";
    let mut attr = [0u8; bpf::ATTR_SIZE];
    put(&mut attr, 0, &bpf::PROG_TYPE_TRACING.to_ne_bytes());
    put(&mut attr, 4, &(insns.len() as u32).to_ne_bytes());
    put(&mut attr, 8, &(insns.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 16, &(LICENSE.as_ptr() as u64).to_ne_bytes());
    if !log.is_empty() {
        put(&mut attr, 24, &1u32.to_ne_bytes());
        put(&mut attr, 28, &(log.len() as u32).to_ne_bytes());
        put(&mut attr, 32, &(log.as_mut_ptr() as u64).to_ne_bytes());
    }
    put(&mut attr, 48, b"logoff_tasks");
    put(&mut attr, 68, &bpf::TRACE_ITER.to_ne_bytes());
    put(&mut attr, 108, &attach_btf_id.to_ne_bytes());
    let prog = bpf_call(bpf::PROG_LOAD, &mut attr)?;

    let mut attr = [0u8; bpf::ATTR_SIZE];
    put(&mut attr, 0, &(prog.as_raw_fd() as u32).to_ne_bytes());
    put(&mut attr, 8, &bpf::TRACE_ITER.to_ne_bytes());
    // The link holds the program: its fd can be closed.
    bpf_call(bpf::LINK_CREATE, &mut attr)
}

/// Starts one pass of the iterator behind `link`: every `read` of the returned fd runs the
/// program on the next tasks and returns what it wrote; end of file ends the pass.
///
/// # Errors
///
/// As `bpf(BPF_ITER_CREATE)`; not expected once the link exists.
pub fn bpf_iter_open(link: &OwnedFd) -> io::Result<std::fs::File> {
    let mut attr = [0u8; bpf::ATTR_SIZE];
    put(&mut attr, 0, &(link.as_raw_fd() as u32).to_ne_bytes());
    Ok(bpf_call(bpf::ITER_CREATE, &mut attr)?.into())
}

/// The inode numbers of the calling process's pid and user namespaces.
pub fn namespace_inodes() -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Ok((std::fs::metadata("/proc/self/ns/pid")?.ino(), std::fs::metadata("/proc/self/ns/user")?.ino()))
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

    /// The socket's peer credentials are the user's, and the calling thread keeps root.
    #[test]
    fn connect_unix_as_connects_with_the_users_credentials() {
        if effective_uid() != 0 {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let _client = connect_unix_as(&path, 65_534, 65_534).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: cred and len are valid for writing and len is the size of cred.
        let ret = unsafe {
            libc::getsockopt(
                server.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        assert_eq!(ret, 0);
        assert_eq!((cred.uid, cred.gid, cred.pid as u32), (65_534, 65_534, std::process::id()));
        assert_eq!(effective_uid(), 0);
        // The user's permissions apply to the path: a root-only socket is refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = connect_unix_as(&path, 65_534, 65_534).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
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
