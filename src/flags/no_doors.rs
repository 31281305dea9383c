//! A release build's stand-in for the test build's hidden flags (`doors.rs`): no flag, no
//! fake machine, and the audit trail always goes to the system log.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use logoff_users::schedule::{self, Via};
use logoff_users::{AuditTrail, Host};

// No hidden flag at all, so clap refuses the test build's as unknown arguments. (A plain
// comment: clap would print a doc comment, and ci/check-release-doors.sh looks for the
// flags' names in the binary.)
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Doors {}

impl Doors {
    /// Never a fake machine.
    pub fn fake_host(&self) -> Option<Host> {
        None
    }

    /// The system log, for a run that writes an audit trail (`enabled`).
    pub fn audit_trail(&self, enabled: bool) -> AuditTrail {
        AuditTrail::open(enabled)
    }

    /// Never a fake machine's state file.
    pub fn fake_state(&self) -> Option<&Path> {
        None
    }

    /// Never a test's socket.
    pub fn audit_socket(&self) -> Option<&Path> {
        None
    }

    /// The system log is always written, when the run writes one.
    pub fn audit_on(&self, enabled: bool) -> bool {
        enabled
    }

    /// The system's job directory.
    pub fn job_dir(&self) -> PathBuf {
        schedule::default_dir()
    }

    /// What the machine has.
    pub fn detach_via(&self) -> Via {
        Via::Auto
    }

    /// Nothing beyond the job's id: the runner uses the system's job directory.
    pub fn runner_args(&self, _dir: &Path) -> Vec<OsString> {
        Vec::new()
    }
}
