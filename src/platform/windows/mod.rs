//! Windows: sessions and processes through the WTS API, the Event Log for the audit
//! trail, and the invoker from the process token.
//!
//! - `convert`: what the WTS API reports → the model; pure, compiled and tested on every OS;
//! - `wts`: every `unsafe` Windows call, with RAII guards for OS-allocated buffers;
//! - `backend`: the `Wts` backend, which strings them together;
//! - `registry`: the registry calls, with `unsafe` kept to small wrappers as in `wts`;
//! - `drain`: `--drain` as `change logon /drainuntilrestart` sets it, and its undoing;
//! - `eventlog`: the audit sink;
//! - `jobs` (with `job_rules`, pure): scheduled logoffs' files, and the service that runs one.

// Elsewhere than on Windows only its tests use it.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) mod convert;
// The same: the pure rules of scheduled logoffs (trust, the service's command line).
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) mod job_rules;

#[cfg(windows)]
mod backend;
#[cfg(windows)]
mod drain;
#[cfg(windows)]
pub(crate) mod eventlog;
#[cfg(windows)]
pub(crate) mod jobs;
#[cfg(windows)]
mod registry;
#[cfg(windows)]
pub(crate) mod wts;

#[cfg(windows)]
pub(super) use backend::open as open_backend;
#[cfg(windows)]
pub(super) use eventlog::{invoker, open as open_audit_sink};
