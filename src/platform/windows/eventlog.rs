//! The Windows audit sink: records in the Application event log under our own source,
//! `logoff-users`, through `RegisterEventSourceW` and `ReportEventW`.
//!
//! The source is not registered in the registry with a message file, so Event Viewer
//! prefixes the text with a note that the description was not found; the text itself is
//! complete and searchable.

use std::path::Path;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE, RegisterEventSourceW, ReportEventW,
};

use crate::audit::{AuditRecord, AuditSink, Severity};

/// The event source name.
pub const SOURCE: &str = "logoff-users";

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Writes audit records to the Application event log.
pub struct EventLog {
    handle: HANDLE,
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegisterEventSourceW and is deregistered once.
        unsafe { DeregisterEventSource(self.handle) };
    }
}

/// Opens the event log sink. `_path` is a Unix socket path and has no meaning here.
///
/// # Errors
///
/// Fails when the event source cannot be registered.
pub fn open(_path: Option<&Path>) -> std::io::Result<Box<dyn AuditSink>> {
    let source = wide(SOURCE);
    // SAFETY: a null server name means this machine; `source` is NUL-terminated and lives
    // across the call.
    let handle = unsafe { RegisterEventSourceW(std::ptr::null(), source.as_ptr()) };
    if handle.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Box::new(EventLog { handle }))
}

impl AuditSink for EventLog {
    fn write(&mut self, record: &AuditRecord) -> std::io::Result<()> {
        let kind = match record.severity {
            Severity::Notice => EVENTLOG_INFORMATION_TYPE,
            Severity::Warning => EVENTLOG_WARNING_TYPE,
        };
        let text = wide(&record.message);
        let strings = [text.as_ptr()];
        // SAFETY: the handle is live; one NUL-terminated string is passed with a count of 1;
        // no user SID and no raw data.
        let ok = unsafe {
            ReportEventW(self.handle, kind, 0, 1000, std::ptr::null_mut(), 1, 0, strings.as_ptr(), std::ptr::null())
        };
        if ok == 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
    }
}

/// Who runs the tool: `DOMAIN\user` from the environment.
pub fn invoker() -> String {
    let user = std::env::var("USERNAME").unwrap_or_else(|_| "unknown".into());
    match std::env::var("USERDOMAIN") {
        Ok(d) if !d.is_empty() => format!("{d}\\{user}"),
        _ => user,
    }
}
