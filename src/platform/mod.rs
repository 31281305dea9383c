//! Everything that talks to an operating system, one folder per platform, each with the
//! same three entry points: `open_backend` (the [`Backend`](crate::backend::Backend)),
//! `open_audit_sink` (the system log) and `invoker` (who runs the tool), and a `jobs`
//! module for scheduled logoffs.
//!
//! - `linux/`: logind over D-Bus, utmp and /proc, the process sweep, syslog;
//! - `windows/`: the WTS API, the Event Log; its pure conversions (`windows::convert`) are
//!   compiled on every OS, so that they are tested everywhere;
//! - `unknown/`: every other OS, which builds and says "not supported" (exit 3).
//!
//! `#[cfg]` appears on `mod` lines only, here and inside each folder.

#[cfg(target_os = "linux")]
pub(crate) mod linux;
#[cfg(target_os = "linux")]
use linux as native;

// Always compiled, for its pure conversions; its OS code is behind `cfg(windows)` inside.
pub(crate) mod windows;
#[cfg(windows)]
use windows as native;

// Compiled for the tests everywhere, so that they show what it does.
#[cfg(any(test, not(any(target_os = "linux", windows))))]
mod unknown;
#[cfg(not(any(target_os = "linux", windows)))]
use unknown as native;

/// Scheduled logoffs (`crate::schedule`): the job directory, its lock, and what runs a job.
pub(crate) use native::jobs;

use std::path::Path;

use crate::audit::AuditSink;
use crate::backend::{Backend, NativeOptions};
use crate::error::Result;

/// Opens this OS's backend.
///
/// # Errors
///
/// See each platform: a logind that does not answer when asked for by name (Linux), an
/// unreachable server (Windows). The unknown platform opens, and every call then returns
/// `Unsupported`.
pub fn open_backend(opts: &NativeOptions) -> Result<Box<dyn Backend>> {
    native::open_backend(opts)
}

/// Opens this OS's system log for the audit trail; `socket` is a syslog socket path (a
/// test's), meaningful on Linux only.
///
/// # Errors
///
/// The I/O error when the log cannot be opened (and `Unsupported` where there is none).
pub(crate) fn open_audit_sink(socket: Option<&Path>) -> std::io::Result<Box<dyn AuditSink>> {
    native::open_audit_sink(socket)
}

/// Who runs the tool, as the OS says it (not as the environment claims).
pub(crate) fn invoker() -> String {
    native::invoker()
}
