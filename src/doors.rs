//! The test doors of the library, compiled only with the `test-doors` feature, which only
//! the test build turns on (see Cargo.toml): what the binary's hidden test flags open. The
//! other door is [`crate::backend::fake`], a machine described by a JSON file.
//!
//! A release build has neither, so a caller who may run the tool (through sudo, say) can
//! neither rewrite a file through the fake backend nor send the audit trail elsewhere.

use std::path::Path;

use crate::backend::Backend;
use crate::backend::fake::Fake;
use crate::{AuditTrail, Host};

/// The fake machine described by the state file at `path` (`--fake-state FILE`).
pub fn fake_host(path: &Path) -> Host {
    let backend = Fake::open(path).map(|f| Box::new(f) as Box<dyn Backend>);
    let name = backend.as_ref().map(|b| b.host()).unwrap_or_else(|_| "localhost".into());
    Host { name, backend, own_session: None }
}

/// A scheduled job's audit trail: to the test's socket when the job has one, else the
/// system log (when `enabled`).
pub(crate) fn job_audit_trail(enabled: bool, socket: Option<&Path>) -> AuditTrail {
    AuditTrail::open_at(enabled, socket)
}

/// A scheduled job's fake machine, when the job names one.
pub(crate) fn job_fake_host(path: &Path) -> Option<Host> {
    Some(fake_host(path))
}

/// An audit trail written to the syslog datagram socket at `socket` instead of the system
/// log (`--audit-socket PATH`).
pub fn audit_trail_to(socket: &Path) -> AuditTrail {
    AuditTrail::open_at(true, Some(socket))
}
