//! The test doors of the library, compiled only with the `test-doors` feature, which only
//! the test build turns on (see Cargo.toml): what the binary's hidden test flags open. The
//! other door is [`crate::backend::fake`], a machine described by a JSON file.
//!
//! A release build has neither, so a caller who may run the tool (through sudo, say) can
//! neither rewrite a file through the fake backend nor send the audit trail elsewhere.

use std::path::Path;

use crate::AuditTrail;

/// An audit trail written to the syslog datagram socket at `socket` instead of the system
/// log (`--audit-socket PATH`).
pub fn audit_trail_to(socket: &Path) -> AuditTrail {
    AuditTrail::open_at(true, Some(socket))
}
