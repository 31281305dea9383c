//! A release build's stand-in for `doors.rs`: no fake machine and no test socket for a
//! scheduled job either. A job file that names one (only root can write one, and only a
//! test build makes one) gets the system log, and fails rather than act on a fake.

use std::path::Path;

use crate::{AuditTrail, Host};

/// The system log, when `enabled`; a test's socket is never used.
pub(crate) fn job_audit_trail(enabled: bool, _socket: Option<&Path>) -> AuditTrail {
    AuditTrail::open(enabled)
}

/// Never a fake machine.
pub(crate) fn job_fake_host(_path: &Path) -> Option<Host> {
    None
}
