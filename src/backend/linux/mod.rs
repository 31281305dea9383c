//! The Linux backend: sessions from systemd-logind (D-Bus) or utmp, processes from /proc,
//! and a race-free kill of a user's processes.
//!
//! (Being built: see issue 7.)

pub mod logind;

use super::{Backend, NativeOptions};
use crate::error::Result;

/// Opens the Linux backend.
///
/// # Errors
///
/// Fails when the requested session source is not available.
pub fn open(_opts: &NativeOptions) -> Result<Box<dyn Backend>> {
    Ok(Box::new(super::Unsupported))
}
