//! The Windows audit sink: records in the Application event log under our own source,
//! `logoff-users`, through `RegisterEventSourceW` and `ReportEventW`, each with the user SID
//! of this process's token, so that Event Viewer's "User" column names who ran the tool.
//!
//! Who ran it ([`invoker`]) also comes from the token, never from `USERNAME` and
//! `USERDOMAIN`, which anyone can set.
//!
//! The source is not registered in the registry with a message file, so Event Viewer
//! prefixes the text with a note that the description was not found; the text itself is
//! complete and searchable.

use std::path::Path;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE, RegisterEventSourceW, ReportEventW,
};

use super::wts::{self, Server, Sid, wide};
use crate::audit::{AuditRecord, AuditSink, Severity};

/// The event source name.
pub const SOURCE: &str = "logoff-users";

/// Writes audit records to the Application event log.
pub struct EventLog {
    handle: HANDLE,
    /// The token's user, passed with every record; `None` when the token could not be read
    /// (the record then names no user, and its text still says who, as far as known).
    user: Option<Sid>,
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
    Ok(Box::new(EventLog::open()?))
}

impl EventLog {
    fn open() -> std::io::Result<EventLog> {
        let source = wide(SOURCE);
        // SAFETY: a null server name means this machine; `source` is NUL-terminated and
        // lives across the call.
        let handle = unsafe { RegisterEventSourceW(std::ptr::null(), source.as_ptr()) };
        if handle.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EventLog { handle, user: wts::token_user().ok() })
    }
}

impl AuditSink for EventLog {
    fn write(&mut self, record: &AuditRecord) -> std::io::Result<()> {
        let kind = match record.severity {
            Severity::Notice => EVENTLOG_INFORMATION_TYPE,
            Severity::Warning => EVENTLOG_WARNING_TYPE,
        };
        let text = wide(&record.message);
        let strings = [text.as_ptr()];
        let user = self.user.as_ref().map_or(std::ptr::null_mut(), Sid::as_psid);
        // SAFETY: the handle is live; one NUL-terminated string is passed with a count of 1;
        // the user SID is null or a valid SID that self owns (ReportEventW only reads it);
        // no raw data.
        let ok = unsafe { ReportEventW(self.handle, kind, 0, 1000, user, 1, 0, strings.as_ptr(), std::ptr::null()) };
        if ok == 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
    }
}

/// Who runs the tool, from this process's token: `DOMAIN\user` as this machine resolves the
/// token's user SID (`NT AUTHORITY\SYSTEM` for an RMM agent), the SID itself when it does
/// not resolve, `unknown` when the token cannot be read.
pub fn invoker() -> String {
    let Ok(sid) = wts::token_user() else {
        return "unknown".to_string();
    };
    match Server::local().lookup_account_sid(&sid) {
        Ok((user, domain)) => crate::model::qualified_name(&user, Some(&domain)),
        Err(_) => sid.to_string_sid().unwrap_or_else(|_| "unknown".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invoker_is_the_tokens_user_whatever_the_environment_says() {
        let sid = wts::token_user().expect("the token's user");
        let (user, domain) = Server::local().lookup_account_sid(&sid).expect("it resolves");
        let expected = format!("{domain}\\{user}");
        assert_eq!(invoker(), expected);
        // A forged USERNAME must not change the answer.
        // SAFETY: no other test reads or writes USERNAME or USERDOMAIN.
        unsafe {
            std::env::set_var("USERNAME", "mallory");
            std::env::set_var("USERDOMAIN", "EVIL");
        }
        assert_eq!(invoker(), expected);
        assert!(!invoker().contains("mallory"));
    }

    #[test]
    fn records_carry_the_tokens_sid() {
        let mut log = EventLog::open().expect("the event source registers");
        let user = log.user.as_ref().expect("the token's SID is kept for the records");
        assert_eq!(user.to_string_sid().unwrap(), wts::token_user().unwrap().to_string_sid().unwrap());
        let record = AuditRecord { severity: Severity::Notice, message: "action=unit_test (logoff-users)".into() };
        log.write(&record).expect("ReportEventW accepts the record with its SID");
    }
}
