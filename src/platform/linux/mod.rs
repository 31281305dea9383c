//! The Linux backend: sessions from systemd-logind (D-Bus) or utmp, processes from /proc,
//! and a race-free sweep of a user's processes.
//!
//! - [`logind`] is the D-Bus client (sessions, TerminateSession, GetSessionByPID);
//! - [`utmp`] parses the utmp file, for machines without logind;
//! - [`procfs`] scans /proc; [`passwd`] reads /etc/passwd (no NSS);
//! - `kill` is the sweep of a set of uids with one shared grace (`kill(-1)` as each uid,
//!   logind's `KillUser` where logind runs, then pidfd for stragglers); [`cgroup`] only
//!   finds a user's slice and thaws one an earlier, killed run left frozen;
//! - [`bpf_iter`] lists every process's uids in one pass, with [`btf`] for the layout;
//! - [`notifications`] shows the warning on a graphical session's desktop;
//! - [`drain`] refuses new logins with `/run/nologin` (`--drain`) and undoes it;
//! - [`syslog`] is the audit sink, and says who runs the tool;
//! - `jobs` keeps scheduled logoffs' files and starts their runners (systemd, or a daemon);
//! - `sys` holds every `unsafe` system call wrapper.
//!
//! Which session source is used is decided once, when the backend is opened.

// `pub` only so that `crate::testing` can hand them to the project's own tests; the
// platform module above them is private.
pub mod bpf_iter;
pub mod btf;
pub mod cgroup;
pub mod drain;
pub(crate) mod jobs;
mod kill;
pub mod logind;
pub mod notifications;
pub mod passwd;
pub mod procfs;
mod sys;
mod syslog;
pub mod utmp;

pub(crate) use syslog::format_datagram;
pub(super) use syslog::{invoker, open as open_audit_sink};

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::backend::{
    Backend, Done, NativeOptions, Policy, ProcessSource, SessionSource, TerminateOptions, TerminateTarget, Terminated,
};
use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Account, AccountId};
use crate::model::{Process, Session, SessionState};
use bpf_iter::TaskIter;
use logind::Logind;
use passwd::Passwd;
use procfs::ProcFs;
use utmp::UtmpFile;

/// The utmp file glibc writes.
pub const DEFAULT_UTMP: &str = "/var/run/utmp";
const PASSWD: &str = "/etc/passwd";
const LOGIN_DEFS: &str = "/etc/login.defs";

/// A utmp leader must have started by the recorded login time; `/proc` start times are
/// computed from a boot time rounded to the second, hence the slack. A live pid that
/// started later is a recycled pid, not the leader.
const LEADER_START_SLACK_SECS: i64 = 2;

/// Opens the Linux backend.
///
/// # Errors
///
/// With `SessionSource::Logind`, fails when logind does not answer on the system bus.
/// `Auto` falls back to utmp and never fails.
pub fn open_backend(opts: &NativeOptions) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Linux::open(opts)?))
}

enum Source {
    Logind(Logind),
    Utmp(UtmpFile),
}

/// Where process uids come from: the BPF task iterator once it has loaded, else /proc.
enum Tasks {
    /// Not loaded (yet): /proc serves.
    NotLoaded,
    Iter(TaskIter),
    /// Tried and failed, or `ProcessSource::Procfs`: /proc serves for good.
    Unavailable,
}

impl Tasks {
    /// The iterator, if loaded.
    fn loaded(&self) -> Option<&TaskIter> {
        match self {
            Tasks::Iter(iter) => Some(iter),
            _ => None,
        }
    }
}

/// With `ProcessSource::Auto`, the number of processes on the machine from which the task
/// iterator is loaded. Loading it (BTF, verifier) costs about 4 ms here; reading `status`
/// and `stat` costs about 15 us per process, against under 2 us through the iterator.
const TASK_ITER_MIN_PROCESSES: usize = 1000;

/// How many users' logind requests a run keeps in flight at once.
const LOGIND_IN_FLIGHT: usize = 8;

/// The Linux backend. See the module documentation.
pub struct Linux {
    source: Source,
    procfs: ProcFs,
    tasks: Tasks,
    processes: ProcessSource,
}

impl Linux {
    /// Opens the backend with the session source `opts` asks for.
    ///
    /// # Errors
    ///
    /// See [`open_backend`].
    pub fn open(opts: &NativeOptions) -> Result<Linux> {
        let utmp = || match &opts.utmp_path {
            Some(path) => Source::Utmp(UtmpFile::given(path)),
            None => Source::Utmp(UtmpFile::system(DEFAULT_UTMP)),
        };
        let source = match opts.source {
            SessionSource::Logind => Source::Logind(Logind::connect()?),
            SessionSource::Utmp => utmp(),
            SessionSource::Auto => Logind::connect().map(Source::Logind).unwrap_or_else(|_| utmp()),
        };
        let tasks = if opts.processes == ProcessSource::Procfs { Tasks::Unavailable } else { Tasks::NotLoaded };
        Ok(Linux { source, procfs: ProcFs::new("/proc"), tasks, processes: opts.processes })
    }

    /// Loads the task iterator if it is not loaded yet and worth loading for a machine with
    /// `machine_processes` processes (see [`ProcessSource`]). Where it cannot load (no
    /// root, a container, an old kernel) the /proc scan serves from then on.
    fn load_task_iter(&mut self, machine_processes: usize) {
        let wanted = self.processes == ProcessSource::TaskIter || machine_processes >= TASK_ITER_MIN_PROCESSES;
        if matches!(self.tasks, Tasks::NotLoaded) && wanted {
            self.tasks = TaskIter::open().map_or(Tasks::Unavailable, Tasks::Iter);
        }
    }

    fn passwd() -> Passwd {
        // Read on every use: accounts come and go while the tool runs (tests add them).
        Passwd::load(Path::new(PASSWD))
    }

    fn utmp_sessions(&self, file: &UtmpFile) -> Result<Vec<Session>> {
        let bytes = file.read()?;
        let passwd = Self::passwd();
        let mut scan_error = None;
        let sessions = utmp::sessions(
            &utmp::parse(&bytes),
            |pid, logon| self.leader_state(pid, logon),
            |name| passwd.by_name(name).map(|e| e.uid),
            // Called only when some record's leader has died: one /proc scan for them all.
            |pending| {
                let sids: Vec<u32> = pending.iter().map(|&(sid, _)| sid).collect();
                match self.procfs.session_members(&sids) {
                    Ok(members) => pending
                        .iter()
                        .copied()
                        .filter(|&(sid, uid)| members.iter().any(|(_, s, st)| *s == sid && st.uids[0] == uid))
                        .collect(),
                    Err(e) => {
                        scan_error = Some(e);
                        Vec::new()
                    }
                }
            },
        );
        match scan_error {
            Some(e) => Err(Error::from_io("list processes in /proc", &e)),
            None => Ok(sessions),
        }
    }

    /// What became of the leader of a login at `logon`: a live pid that started later is a
    /// recycled pid, not the leader; a zombie is the leader, dead.
    fn leader_state(&self, pid: u32, logon: i64) -> utmp::Leader {
        match self.procfs.status(pid) {
            Some(st) if !st.is_dead() => {
                if self.procfs.start_time(pid).is_none_or(|start| start <= logon + LEADER_START_SLACK_SECS) {
                    utmp::Leader::Alive
                } else {
                    utmp::Leader::Recycled
                }
            }
            _ => utmp::Leader::Dead,
        }
    }

    /// Whether `pid` is alive and old enough to be the leader of a login at `logon`.
    fn is_leader(&self, pid: u32, logon: i64) -> bool {
        self.leader_state(pid, logon) == utmp::Leader::Alive
    }

    /// Whether a live (not zombie) process has `pid`.
    fn is_live(&self, pid: u32) -> bool {
        self.procfs.status(pid).is_some_and(|st| !st.is_dead())
    }

    /// Logs off a utmp session whose leader has died: SIGHUP, then SIGTERM, through
    /// pidfds, to the live processes of the session (session id `sid`) that `uid` owns.
    fn signal_session(&self, session: &Session, sid: u32) -> Result<Done> {
        let action = || format!("log off session {} of {}", session.id, session.display_name());
        let Some(uid) = session.uid else {
            return Err(Error::new(ErrorKind::InvalidInput, action(), "the session's user has no uid"));
        };
        // The leader died when the session was listed; a live process with its pid now is
        // a recycled pid, which may lead a new session with the same id.
        if self.is_live(sid) {
            return Ok(Done::AlreadyGone);
        }
        let members = self.procfs.session_members(&[sid]).map_err(|e| Error::from_io(action(), &e))?;
        let mut signalled = false;
        for (pid, _, _) in members.into_iter().filter(|(_, _, st)| st.uids[0] == uid) {
            let fd = match sys::pidfd_open(pid) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
                Err(e) => return Err(Error::from_io(action(), &e)),
            };
            // Checked with the pidfd open, so the signals below reach the process checked
            // here, not a process that took its pid since the scan.
            let owned = self.procfs.status(pid).is_some_and(|st| !st.is_dead() && st.uids[0] == uid);
            if !owned || self.procfs.session_of(pid) != Some(sid) || self.is_live(sid) {
                continue;
            }
            for signal in [libc::SIGHUP, libc::SIGTERM] {
                match sys::pidfd_send_signal(&fd, signal) {
                    Ok(()) => signalled = true,
                    // Gone: it exited by itself, or of the SIGHUP.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => break,
                    Err(e) => return Err(Error::from_io(action(), &e)),
                }
            }
        }
        Ok(if signalled { Done::Requested } else { Done::AlreadyGone })
    }

    /// SIGHUP, then SIGTERM, to a utmp session's leader, through a pidfd; for a session
    /// whose leader has died, to the processes left in it (see [`Linux::signal_session`]).
    fn signal_leader(&self, session: &Session) -> Result<Done> {
        let action = || format!("log off session {} of {}", session.id, session.display_name());
        if session.state == SessionState::Disconnected && session.leader.is_none() {
            let Some(sid) = utmp::leader_of(&session.id) else {
                return Err(Error::new(ErrorKind::InvalidInput, action(), "the session id names no utmp session"));
            };
            return self.signal_session(session, sid);
        }
        let Some(pid) = session.leader.or_else(|| utmp::leader_of(&session.id)) else {
            return Err(Error::new(ErrorKind::InvalidInput, action(), "the session has no leader pid"));
        };
        let fd = match sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(Done::AlreadyGone),
            Err(e) => return Err(Error::from_io(action(), &e)),
        };
        // Checked with the pidfd open, so the signals below reach the process checked here.
        let logon = session.logon_time.unwrap_or(i64::MAX - LEADER_START_SLACK_SECS);
        if !self.is_leader(pid, logon) {
            return Ok(Done::AlreadyGone);
        }
        for (i, signal) in [libc::SIGHUP, libc::SIGTERM].into_iter().enumerate() {
            match sys::pidfd_send_signal(&fd, signal) {
                Ok(()) => {}
                // Gone before the first signal: someone else ended it. Gone after it: the
                // SIGHUP did (and its parent reaped it already).
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    return Ok(if i == 0 { Done::AlreadyGone } else { Done::Requested });
                }
                Err(e) => return Err(Error::from_io(action(), &e)),
            }
        }
        Ok(Done::Requested)
    }
}

impl Backend for Linux {
    fn name(&self) -> &str {
        match self.source {
            Source::Logind(_) => "logind",
            Source::Utmp { .. } => "utmp",
        }
    }

    fn policy(&self) -> Policy {
        let defs = std::fs::read_to_string(LOGIN_DEFS).unwrap_or_default();
        Policy {
            sweep_after_logoff: true,
            uid_min: Some(procfs::parse_uid_min(&defs)),
            uid_max: Some(procfs::parse_uid_max(&defs)),
            local_domain: None,
            can_disconnect: false,
            services_session: None,
            // The sweep is by uid: it cannot leave one session's processes alone.
            spares_own_session: false,
        }
    }

    fn check_privilege(&mut self) -> Result<()> {
        check_euid(sys::effective_uid())
    }

    fn list_sessions(&mut self) -> Result<Vec<Session>> {
        match &self.source {
            Source::Logind(l) => l.list_sessions(),
            Source::Utmp(file) => self.utmp_sessions(file),
        }
    }

    fn list_processes(&mut self) -> Result<Vec<Process>> {
        let passwd = Self::passwd();
        let pids = self.procfs.pids().map_err(|e| Error::from_io("list processes in /proc", &e))?;
        self.load_task_iter(pids.len());
        if let Some(iter) = self.tasks.loaded() {
            match iter.list_processes(&self.procfs, &pids, &passwd) {
                Ok(list) => return Ok(list),
                // Not expected once loaded; /proc gives the same answer, slower.
                Err(_) => self.tasks = Tasks::Unavailable,
            }
        }
        Ok(self.procfs.list_processes_of(&pids, &passwd))
    }

    /// logind: `ListSessions` alone, one D-Bus call, instead of every session's properties.
    fn find_sessions(&mut self, planned: &[&Session]) -> Result<Vec<Session>> {
        match &self.source {
            Source::Logind(l) => Ok(l
                .session_ids()?
                .into_iter()
                .filter(|(id, _, _)| planned.iter().any(|p| &p.id == id))
                .map(|(id, uid, user)| Session { uid: Some(uid), ..Session::new(id, user, SessionState::Unknown) })
                .collect()),
            Source::Utmp(file) => self.utmp_sessions(file),
        }
    }

    /// The processes whose real, effective or saved uid is one of `accounts`' uids: only
    /// `status` is read (no start time, no user names), which is what verification needs.
    /// Accounts known by name only make it list everything.
    fn find_processes(&mut self, accounts: &[&AccountId]) -> Result<Vec<Process>> {
        let uids: Option<Vec<u32>> = accounts.iter().map(|a| a.uid()).collect();
        let Some(uids) = uids else { return self.list_processes() };
        self.procfs.processes_of(&uids).map_err(|e| Error::from_io("list processes in /proc", &e))
    }

    fn current_session(&mut self) -> Result<Option<String>> {
        match &self.source {
            Source::Logind(l) => l.session_of_pid(std::process::id()),
            Source::Utmp(file) => {
                let ancestry = self.procfs.ancestry(std::process::id());
                let sessions = self.utmp_sessions(file)?;
                // The nearest ancestor that leads a session is the tool's session.
                Ok(ancestry
                    .iter()
                    .find_map(|pid| sessions.iter().find(|s| s.leader == Some(*pid)).map(|s| s.id.clone())))
            }
        }
    }

    fn own_pids(&mut self) -> Vec<u32> {
        self.procfs.ancestry(std::process::id())
    }

    /// logind's lingering users; none without logind (nothing keeps a service manager).
    fn lingering_uids(&mut self) -> Result<Vec<u32>> {
        match &self.source {
            Source::Logind(l) => l.lingering_uids(),
            Source::Utmp { .. } => Ok(Vec::new()),
        }
    }

    fn logoff_session(&mut self, session: &Session) -> Result<Done> {
        match &self.source {
            Source::Logind(l) => l.terminate_session(&session.id),
            Source::Utmp { .. } => self.signal_leader(session),
        }
    }

    fn terminate_processes(&mut self, owner: &Account, opts: &TerminateOptions) -> Result<Terminated> {
        let target = TerminateTarget { account: owner, listed_pids: &[] };
        self.terminate_all(&[target], opts).pop().expect("one result per target")
    }

    /// One sweep for every target uid, with one shared grace: SIGTERM to all (`kill(-1)` as
    /// each uid), the grace, then SIGKILL, with logind's `KillUser` first where logind runs.
    fn terminate_all(&mut self, targets: &[TerminateTarget], opts: &TerminateOptions) -> Vec<Result<Terminated>> {
        let passwd = Self::passwd();
        let resolved: Vec<Result<kill::Target>> = targets.iter().map(|t| sweep_target(&passwd, t)).collect();
        // The sweep never loads the iterator for itself (measured: loading it costs about as
        // much as it saves in one sweep, even of 5,000 processes) but uses it when the
        // listing before it has loaded it, or when asked to.
        if self.processes == ProcessSource::TaskIter {
            self.load_task_iter(0);
        }
        let ok: Vec<kill::Target> = resolved.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        let timing = kill::Timing { grace: opts.grace, timeout: opts.timeout };
        let logind = match &self.source {
            Source::Logind(l) => Some(l),
            Source::Utmp { .. } => None,
        };
        let mut force = |uid: u32| logind.is_some_and(|l| l.kill_user(uid, libc::SIGKILL).is_ok());
        let mut swept = match kill::Sweep::new(&self.procfs, self.tasks.loaded(), &ok, &opts.spare.pids) {
            Ok(sweep) => sweep.run(timing, &mut force),
            Err(e) => vec![Err(e); ok.len()],
        }
        .into_iter();
        resolved.into_iter().map(|r| r.and_then(|_| swept.next().expect("one result per swept target"))).collect()
    }

    /// logind: one `TerminateSession` per session, up to `LOGIND_IN_FLIGHT` users'
    /// requests in flight at once on the one connection (logind answers each once systemd
    /// has queued the scope's stop, some tens of milliseconds); utmp: one session after the
    /// other.
    ///
    /// Not `TerminateUser`, even for a user whose every session is planned: measured in the
    /// container (10 users, 20 processes each, `bench/loginctl-bench.sh`), it was slower
    /// (277 ms median against 190 ms until every process was gone), since it also stops the
    /// user's service manager and logind waits for that; the sweep ends those processes.
    fn logoff_all(&mut self, users: &[(&Account, Vec<&Session>)]) -> Vec<Vec<Result<Done>>> {
        let Source::Logind(l) = &self.source else {
            return users
                .iter()
                .map(|(_, sessions)| sessions.iter().map(|s| self.signal_leader(s)).collect())
                .collect();
        };
        let one_user = |(_, sessions): &(&Account, Vec<&Session>)| -> Vec<Result<Done>> {
            sessions.iter().map(|s| l.terminate_session(&s.id)).collect()
        };
        let mut out = Vec::with_capacity(users.len());
        for chunk in users.chunks(LOGIND_IN_FLIGHT) {
            std::thread::scope(|scope| {
                let handles: Vec<_> = chunk.iter().map(|u| scope.spawn(move || one_user(u))).collect();
                out.extend(handles.into_iter().map(|h| h.join().expect("a logind request thread panicked")));
            });
        }
        out
    }

    /// Thaws the slice of each account that an earlier, killed run left frozen (see
    /// [`cgroup`]): through systemd's `ThawUnit` where logind runs, then by writing
    /// `cgroup.freeze` only if that did not do it.
    fn repair(&mut self, accounts: &[&Account]) -> Vec<String> {
        let mut done = Vec::new();
        let Some(mount) = cgroup::cgroup2_mount() else { return done };
        for account in accounts {
            let Some(uid) = account.id.uid().filter(|&u| u != 0) else { continue };
            let Some(dir) = cgroup::user_slice_under(&mount, uid) else { continue };
            if !cgroup::is_frozen(&dir).unwrap_or(false) {
                continue;
            }
            if let Source::Logind(l) = &self.source {
                let _ = l.thaw_unit(&format!("user-{uid}.slice"));
            }
            let outcome = match cgroup::is_frozen(&dir) {
                Ok(false) => Ok("through systemd"),
                _ => cgroup::thaw(&dir).map(|()| "by writing cgroup.freeze"),
            };
            done.push(match outcome {
                Ok(how) => format!(
                    "the cgroup slice of {} ({}) was frozen with no sweep in progress (an earlier run killed mid-sweep?); thawed {how}",
                    account.display_name(),
                    dir.display()
                ),
                Err(e) => format!("the cgroup slice of {} ({}) is frozen and could not be thawed: {e}", account.display_name(), dir.display()),
            });
        }
        done
    }

    fn drain_status(&mut self) -> Result<crate::drain::DrainStatus> {
        drain::Nologin::system().status()
    }

    fn drain(&mut self, request: &crate::drain::DrainRequest) -> Result<crate::drain::DrainReport> {
        drain::Nologin::system().drain(request)
    }

    fn undrain(&mut self) -> Result<crate::drain::DrainReport> {
        drain::Nologin::system().undrain()
    }

    /// Writes the message to the session's terminal, and for a graphical session also
    /// shows it as a desktop notification on the user's session bus. Delivered when either
    /// worked; a `tty` session has only its terminal.
    fn send_message(&mut self, session: &Session, title: &str, text: &str) -> Result<()> {
        let on_terminal = write_to_terminal(session, title, text);
        let Some(bus) = notifications::session_bus_of(session) else {
            return on_terminal;
        };
        let on_desktop = Self::passwd()
            .by_uid(bus.uid)
            .map(|e| e.gid)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("show a desktop notification on {}", bus.path.display()),
                    "no such user in /etc/passwd",
                )
            })
            .and_then(|gid| notifications::notify(&bus.path, bus.uid, gid, title, text));
        match (on_terminal, on_desktop) {
            (Ok(()), _) | (_, Ok(_)) => Ok(()),
            (Err(t), Err(d)) => Err(both_failed(session, &t, &d)),
        }
    }
}

/// The uid a sweep of `t` signals: the account's uid, or its passwd entry's.
fn sweep_target(passwd: &Passwd, t: &TerminateTarget) -> Result<kill::Target> {
    let who = t.account.display_name();
    let entry = match t.account.id.uid() {
        Some(uid) => passwd.by_uid(uid),
        None => passwd.by_name(&t.account.user),
    };
    let Some(uid) = t.account.id.uid().or(entry.map(|e| e.uid)) else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("terminate the processes of {who}"),
            "no such user in /etc/passwd",
        ));
    };
    if uid == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("terminate the processes of {who}"),
            "uid 0 (root) is never signalled",
        ));
    }
    Ok(kill::Target { uid, gid: entry.map(|e| e.gid), who, listed: t.listed_pids.to_vec() })
}

/// Writes the message to the session's terminal, as `wall` does.
fn write_to_terminal(session: &Session, title: &str, text: &str) -> Result<()> {
    let action = || format!("send a message to session {}", session.id);
    let Some(station) = session.station.as_deref().filter(|s| is_tty_name(s)) else {
        return Err(Error::unsupported(action(), "the session has no terminal"));
    };
    let tty = Path::new("/dev").join(station);
    // O_NOCTTY: never become the tty's controlling process; O_NONBLOCK: a stuck
    // terminal (XOFF) must not hang the tool, as wall(1) does.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&tty)
        .map_err(|e| Error::from_io(action(), &e))?;
    file.write_all(format_message(title, text).as_bytes()).map_err(|e| Error::from_io(action(), &e))
}

/// One error for a message that reached neither the terminal nor the desktop: it names
/// both causes. Its kind is the desktop's unless that is only "not available here".
fn both_failed(session: &Session, terminal: &Error, desktop: &Error) -> Error {
    let kind = match desktop.kind {
        ErrorKind::NotFound | ErrorKind::Unsupported => terminal.kind,
        k => k,
    };
    Error::new(
        kind,
        format!("send a message to session {}", session.id),
        format!("terminal: {}; desktop notification: {}", terminal.cause, desktop),
    )
}

/// Privilege is the effective uid 0: the sweep needs to take other users' credentials.
fn check_euid(euid: u32) -> Result<()> {
    if euid == 0 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::PermissionDenied,
        "log users off",
        format!("this needs root, and the effective uid is {euid}; run it as root (for example with sudo)"),
    ))
}

/// A tty name under /dev: `pts/3`, `tty1`. Nothing that could leave /dev.
fn is_tty_name(station: &str) -> bool {
    !station.is_empty()
        && !station.starts_with('/')
        && station.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
        && (station.starts_with("pts/") || station.starts_with("tty") || station.starts_with("console"))
}

/// The text written to a terminal: CR LF line ends (the tty may be in raw mode), a bell,
/// and no control characters from the caller other than newlines and tabs.
fn format_message(title: &str, text: &str) -> String {
    let clean = |s: &str| crate::drain::printable(s).replace('\n', "\r\n");
    format!("\r\n\x07{}\r\n\r\n{}\r\n", clean(title), clean(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_needs_euid_zero() {
        assert!(check_euid(0).is_ok());
        let err = check_euid(1000).unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("sudo"), "{err}");
    }

    #[test]
    fn tty_names() {
        assert!(is_tty_name("pts/3") && is_tty_name("tty1") && is_tty_name("console"));
        for bad in ["", "/etc/passwd", "pts/../../etc/shadow", ":0", "pts//1", "sda"] {
            assert!(!is_tty_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_message_that_reached_neither_names_both_causes() {
        let session = Session::new("c7", "alice", crate::model::SessionState::Active);
        let terminal = Error::unsupported("send a message to session c7", "the session has no terminal");
        let desktop = Error::new(ErrorKind::TimedOut, "show a desktop notification on /run/user/1000/bus", "no answer");
        let err = both_failed(&session, &terminal, &desktop);
        assert_eq!(err.kind, ErrorKind::TimedOut);
        assert_eq!(
            err.to_string(),
            "could not send a message to session c7: terminal: the session has no terminal; desktop notification: \
             could not show a desktop notification on /run/user/1000/bus: no answer"
        );
        let no_bus = Error::new(ErrorKind::NotFound, "show a desktop notification", "the user has no session bus");
        assert_eq!(both_failed(&session, &terminal, &no_bus).kind, ErrorKind::Unsupported);
    }

    #[test]
    fn a_tty_session_gets_no_notification() {
        let mut linux = Linux {
            source: Source::Utmp(UtmpFile::given("/nonexistent")),
            procfs: ProcFs::new("/proc"),
            tasks: Tasks::Unavailable,
            processes: ProcessSource::Procfs,
        };
        let session = Session {
            uid: Some(1000),
            kind: Some(crate::model::SessionType::Tty),
            ..Session::new("c8", "alice", crate::model::SessionState::Active)
        };
        let err = linux.send_message(&session, "t", "x").unwrap_err();
        assert_eq!(err.to_string(), "could not send a message to session c8: the session has no terminal");
    }

    #[test]
    fn message_is_tty_safe() {
        assert_eq!(format_message("T\x1b[2J", "a\nb"), "\r\n\x07T[2J\r\n\r\na\r\nb\r\n");
    }

    #[test]
    fn uid_zero_is_refused() {
        let procfs = ProcFs::new("/proc");
        let root = kill::Target { uid: 0, gid: Some(0), who: "root".into(), listed: vec![] };
        let err = kill::Sweep::new(&procfs, None, &[root], &[]).err().unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        let mut linux = Linux {
            source: Source::Utmp(UtmpFile::given("/nonexistent")),
            procfs,
            tasks: Tasks::NotLoaded,
            processes: ProcessSource::Auto,
        };
        let opts = TerminateOptions {
            grace: std::time::Duration::ZERO,
            timeout: std::time::Duration::from_secs(1),
            spare: crate::backend::Sparing::default(),
        };
        let root = Account { id: AccountId::Uid(0), user: "root".into(), domain: None };
        assert_eq!(linux.terminate_processes(&root, &opts).unwrap_err().kind, ErrorKind::InvalidInput);
        let by_name = Account::by_name("root", None);
        assert_eq!(linux.terminate_processes(&by_name, &opts).unwrap_err().kind, ErrorKind::InvalidInput);
    }
}
