//! The Unix audit sink: RFC 3164 records to the local syslog socket (`/dev/log` by
//! default), facility authpriv, which rsyslog and journald both accept.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::audit::{AuditRecord, AuditSink, Severity};

/// The default syslog socket.
pub const DEFAULT_SOCKET: &str = "/dev/log";

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
        Ok(Syslog { path: path.to_path_buf(), socket: UnixDatagram::unbound()?, pid: std::process::id() })
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
        self.socket.send_to(format_datagram(record, self.pid).as_bytes(), &self.path).map(|_| ())
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

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let mut sink = Syslog::new(Path::new("/nonexistent/dev/log")).unwrap();
        let rec = AuditRecord { severity: Severity::Notice, message: "x".into() };
        assert!(sink.write(&rec).is_err());
    }
}
