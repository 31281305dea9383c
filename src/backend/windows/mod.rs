//! The Windows backend: WTS sessions, verified logoff, SID-scoped fallback.
//!
//! (Being built: see issue 3.)

use super::{Backend, NativeOptions};
use crate::error::Result;

/// Opens the Windows backend, on this machine or on `opts.server`.
///
/// # Errors
///
/// Fails when a remote server cannot be opened.
pub fn open(_opts: &NativeOptions) -> Result<Box<dyn Backend>> {
    Ok(Box::new(super::Unsupported))
}
