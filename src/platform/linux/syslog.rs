//! The Unix audit sink: RFC 3164 records to the local syslog socket (`/dev/log` by
//! default), facility authpriv, which rsyslog and journald both accept.

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::audit::{AuditRecord, AuditSink, Severity};

/// The default syslog socket.
pub const DEFAULT_SOCKET: &str = "/dev/log";

/// How long one record may wait for room in a full system log queue (a stuck journald or
/// rsyslog). After one such wait the sink stops waiting: a record that finds the queue
/// full is dropped at once (and the trail warns), so the log never holds up a logoff.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// LOG_AUTHPRIV: security and authorization messages.
const FACILITY_AUTHPRIV: u8 = 10;

/// Writes audit records to a syslog datagram socket.
#[derive(Debug)]
pub struct Syslog {
    path: PathBuf,
    socket: UnixDatagram,
    pid: u32,
}

impl Syslog {
    /// Prepares a sink for the socket at `path`. Nothing is sent until a record is written.
    ///
    /// # Errors
    ///
    /// Fails when no datagram socket can be created.
    pub fn new(path: &Path) -> std::io::Result<Syslog> {
        let socket = UnixDatagram::unbound()?;
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Syslog { path: path.to_path_buf(), socket, pid: std::process::id() })
    }
}

/// Opens the system log sink: the syslog socket at `path`, or [`DEFAULT_SOCKET`].
///
/// # Errors
///
/// Fails when no datagram socket can be created.
pub fn open(path: Option<&Path>) -> std::io::Result<Box<dyn AuditSink>> {
    Ok(Box::new(Syslog::new(path.unwrap_or(Path::new(DEFAULT_SOCKET)))?))
}

/// Formats one record as a syslog datagram: `<PRI>logoff-users[PID]: MESSAGE`. The
/// timestamp is left to the daemon, which stamps what it receives.
pub fn format_datagram(record: &AuditRecord, pid: u32) -> String {
    let severity = match record.severity {
        Severity::Notice => 5,
        Severity::Warning => 4,
    };
    format!("<{}>logoff-users[{pid}]: {}", FACILITY_AUTHPRIV * 8 + severity, record.message)
}

impl AuditSink for Syslog {
    fn write(&mut self, record: &AuditRecord) -> std::io::Result<()> {
        match self.socket.send_to(format_datagram(record, self.pid).as_bytes(), &self.path) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // The queue stayed full: wait no more for the rest of the run.
                let _ = self.socket.set_nonblocking(true);
                Err(std::io::Error::new(e.kind(), format!("the system log's queue is full, record dropped ({e})")))
            }
            Err(e) => Err(e),
        }
    }
}

/// Names who ran the tool, from what the OS says: the account the tool runs as, and the
/// one that elevated it (`SUDO_USER`) or logged in (the audit login uid), where they
/// differ.
pub fn describe_invoker(runs_as: &str, elevated_from: Option<&str>, login_user: Option<&str>) -> String {
    let mut out = runs_as.to_string();
    if let Some(u) = elevated_from.filter(|u| !u.is_empty() && *u != runs_as) {
        out.push_str(&format!(" (via sudo from {u})"));
    } else if let Some(u) = login_user.filter(|u| !u.is_empty() && *u != runs_as) {
        out.push_str(&format!(" (login {u})"));
    }
    out
}

/// Who runs the tool: the effective uid's account, and the one it came from through sudo
/// (`SUDO_USER`) or logged in as (the kernel's audit login uid).
pub fn invoker() -> String {
    let passwd = super::passwd::Passwd::load(Path::new("/etc/passwd"));
    let name_of = |uid: u32| passwd.by_uid(uid).map_or_else(|| format!("uid {uid}"), |e| e.name.clone());
    let euid = super::sys::effective_uid();
    let login = std::fs::read_to_string("/proc/self/loginuid")
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|u| *u != u32::MAX)
        .map(name_of);
    let sudo = std::env::var("SUDO_USER").ok();
    describe_invoker(&name_of(euid), sudo.as_deref(), login.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoker_description() {
        assert_eq!(describe_invoker("root", Some("admin"), None), "root (via sudo from admin)");
        assert_eq!(describe_invoker("root", None, Some("ops")), "root (login ops)");
        assert_eq!(describe_invoker("root", Some("root"), Some("root")), "root");
    }

    #[test]
    fn records_reach_a_bound_datagram_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut sink = Syslog::new(&path).unwrap();
        let rec = AuditRecord { severity: Severity::Warning, message: "action=run exit_code=1".into() };
        sink.write(&rec).unwrap();
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(got, format!("<84>logoff-users[{}]: action=run exit_code=1", std::process::id()));
    }

    /// A system log that reads nothing (its queue full) costs one wait of [`SEND_TIMEOUT`],
    /// not one per record, and never hangs the run.
    #[test]
    fn a_full_log_queue_is_waited_for_once_then_records_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let _server = UnixDatagram::bind(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let sink_path = path.clone();
        std::thread::spawn(move || {
            let mut sink = Syslog::new(&sink_path).unwrap();
            let rec = AuditRecord { severity: Severity::Notice, message: "x".repeat(200) };
            let sent = (0..100_000).take_while(|_| sink.write(&rec).is_ok()).count();
            let start = std::time::Instant::now();
            let later: Vec<_> = (0..20).map(|_| sink.write(&rec)).collect();
            let _ = tx.send((sent, start.elapsed(), later));
        });
        // Without the timeout the writer blocks for ever on the full queue.
        let (sent, later_took, later) =
            rx.recv_timeout(Duration::from_secs(60)).expect("a write into a full queue returned");
        assert!(sent < 100_000, "the queue never filled: {sent} records sent");
        assert!(later.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::WouldBlock)), "{later:?}");
        // 20 more records, each a full wait, would take 20 s.
        assert!(later_took < SEND_TIMEOUT * 5, "later records waited: {later_took:?}");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let mut sink = Syslog::new(Path::new("/nonexistent/dev/log")).unwrap();
        let rec = AuditRecord { severity: Severity::Notice, message: "x".into() };
        assert!(sink.write(&rec).is_err());
    }
}
