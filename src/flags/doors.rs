//! The test build's hidden flags (feature `test-doors`, which only the test build turns
//! on): a fake machine, the audit trail sent to a test's socket, a job directory of the
//! test's own, and the mechanism that starts a scheduled logoff's runner. A release build
//! compiles `no_doors.rs` instead, which has none of these flags.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use logoff_users::schedule::{self, Via};
use logoff_users::{AuditTrail, Host};

/// The hidden test flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Doors {
    /// Act on a fake machine described by a JSON state file (for tests).
    #[arg(long, value_name = "FILE", hide = true)]
    pub fake_state: Option<PathBuf>,

    /// Write the audit trail to this syslog datagram socket instead of /dev/log (for tests).
    /// With --fake-state, there is no audit trail unless this is given.
    #[arg(long, value_name = "PATH", hide = true)]
    pub audit_socket: Option<PathBuf>,

    /// The directory of scheduled logoffs, instead of the system's (for tests).
    #[arg(long, value_name = "DIR", hide = true)]
    pub job_dir: Option<PathBuf>,

    /// What starts a scheduled logoff's runner: auto, systemd, daemon, service (for tests).
    #[arg(long, value_name = "HOW", hide = true, default_value = "auto", value_parser = parse_via)]
    pub detach_via: Via,
}

fn parse_via(text: &str) -> Result<Via, String> {
    Via::from_str_exact(text).ok_or_else(|| format!("{text:?}: one of auto, systemd, daemon, service"))
}

/// Where the audit trail of a run goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuditTo {
    Nowhere,
    SystemLog,
    Socket(PathBuf),
}

impl Doors {
    /// The fake machine, when `--fake-state` asks for one.
    pub fn fake_host(&self) -> Option<Host> {
        self.fake_state.as_deref().map(logoff_users::doors::fake_host)
    }

    /// The fake machine's state file, for a scheduled job to open again.
    pub fn fake_state(&self) -> Option<&Path> {
        self.fake_state.as_deref()
    }

    /// Where a run's audit trail goes, for a scheduled job to write it there too:
    /// `Some(socket)` for a test's socket; whether it is written at all is `audit_on`.
    pub fn audit_socket(&self) -> Option<&Path> {
        self.audit_socket.as_deref()
    }

    /// Whether a run that writes an audit trail (`enabled`) writes one here.
    pub fn audit_on(&self, enabled: bool) -> bool {
        self.audit_to(enabled) != AuditTo::Nowhere
    }

    /// The job directory.
    pub fn job_dir(&self) -> PathBuf {
        self.job_dir.clone().unwrap_or_else(schedule::default_dir)
    }

    /// What starts a runner.
    pub fn detach_via(&self) -> Via {
        self.detach_via
    }

    /// The runner's arguments beyond the job's id: the test's job directory (`dir`, made
    /// absolute by the caller), when it is not the system's.
    pub fn runner_args(&self, dir: &Path) -> Vec<OsString> {
        if dir == schedule::default_dir() {
            return Vec::new();
        }
        vec!["--job-dir".into(), dir.as_os_str().to_owned()]
    }

    /// The audit trail of a run that writes one (`enabled`): to the test's socket, nowhere
    /// for a fake machine without one, else the system log.
    pub fn audit_trail(&self, enabled: bool) -> AuditTrail {
        match self.audit_to(enabled) {
            AuditTo::Nowhere => AuditTrail::open(false),
            AuditTo::SystemLog => AuditTrail::open(true),
            AuditTo::Socket(path) => logoff_users::doors::audit_trail_to(&path),
        }
    }

    fn audit_to(&self, enabled: bool) -> AuditTo {
        match (&self.audit_socket, &self.fake_state) {
            _ if !enabled => AuditTo::Nowhere,
            (Some(socket), _) => AuditTo::Socket(socket.clone()),
            (None, Some(_)) => AuditTo::Nowhere,
            (None, None) => AuditTo::SystemLog,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        doors: Doors,
    }

    #[test]
    fn the_audit_trail_is_off_for_dry_runs_and_fake_machines_without_a_socket() {
        let doors =
            |argv: &[&str]| Args::try_parse_from(std::iter::once("x").chain(argv.iter().copied())).unwrap().doors;
        assert_eq!(doors(&[]).audit_to(true), AuditTo::SystemLog);
        assert_eq!(doors(&[]).audit_to(false), AuditTo::Nowhere);
        assert_eq!(doors(&["--fake-state", "s.json"]).audit_to(true), AuditTo::Nowhere);
        let to_socket = doors(&["--fake-state", "s.json", "--audit-socket", "/tmp/log"]);
        assert_eq!(to_socket.audit_to(true), AuditTo::Socket("/tmp/log".into()));
        assert_eq!(to_socket.audit_to(false), AuditTo::Nowhere);
    }
}
