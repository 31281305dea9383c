//! The audit trail: one record in the system log for every logoff and every process
//! termination, and one for the run's outcome, saying who ran the tool, what it acted on,
//! and what came of it.
//!
//! The records are built here from the report's types (pure); writing them is the job of
//! an [`AuditSink`] from the platform's folder: syslog over `/dev/log` on Linux (which
//! reaches the journal where one runs), the Event Log on Windows. `crate::audit_trail`
//! opens one and feeds it a run's records.

use crate::drain::{DrainReport, DrainStep};
use crate::report::{ActionRecord, ActionResult, Summary};
use crate::text::{escape_char, is_hostile};

/// How serious a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A normal action or a successful run.
    Notice,
    /// A failed action or a run that did not verify.
    Warning,
}

/// One audit record: `key=value` pairs, so that a log search can pick fields out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// How serious it is.
    pub severity: Severity,
    /// The text, `key=value ...`.
    pub message: String,
}

/// Where audit records go.
pub trait AuditSink {
    /// Writes one record.
    ///
    /// # Errors
    ///
    /// Returns the I/O error when the system log cannot be reached.
    fn write(&mut self, record: &AuditRecord) -> std::io::Result<()>;
}

/// Quotes a value when it holds blanks, quotes, `=` or a hostile character
/// ([`is_hostile`]), so that `key=value` stays parseable whatever a user name holds, and a
/// record stays one line: inside quotes, `"` and `\` are escaped with a backslash, and a
/// hostile character is shown as the text output shows it (`\n`, `\x1b`, `\u{202e}`).
/// A newline in a user name can therefore never start a forged record.
pub fn quote(value: &str) -> String {
    if !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c == '"' || c == '=' || is_hostile(c)) {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_hostile(c) => escape_char(c, &mut out).expect("writing to a String cannot fail"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One record: `key=value` for each of `fields` (the values quoted as needed), then
/// `invoked_by`.
pub(crate) fn record(severity: Severity, fields: &[(&str, String)], invoker: &str) -> AuditRecord {
    let mut parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    parts.push(format!("invoked_by={}", quote(invoker)));
    AuditRecord { severity, message: parts.join(" ") }
}

/// The record of what `--drain` or `--undrain` did on `host`, run by `invoker`.
pub(crate) fn drain_record(invoker: &str, host: &str, step: DrainStep, r: &DrainReport) -> AuditRecord {
    let mut fields = vec![
        ("action", step.to_string()),
        ("host", host.to_string()),
        ("result", r.action.to_string()),
        ("draining", r.status.draining.to_string()),
    ];
    fields.extend(r.status.mechanism.clone().map(|m| ("mechanism", m)));
    fields.extend(r.error.clone().map(|e| ("error", e)));
    let severity = if r.succeeded(step) { Severity::Notice } else { Severity::Warning };
    record(severity, &fields, invoker)
}

/// The record for one action on `host`, run by `invoker`.
pub(crate) fn action_record(invoker: &str, host: &str, a: &ActionRecord) -> AuditRecord {
    let mut fields = vec![("action", a.action.to_string()), ("host", host.to_string()), ("user", a.user.clone())];
    fields.extend(a.session_id.clone().map(|s| ("session", s)));
    fields.extend(a.reason.map(|r| ("reason", r.to_string())));
    fields.push(("result", a.result.to_string()));
    fields.extend(a.signalled.map(|n| ("signalled", n.to_string())));
    fields.extend(a.error.clone().map(|e| ("error", e)));
    let severity = if a.result == ActionResult::Failed { Severity::Warning } else { Severity::Notice };
    record(severity, &fields, invoker)
}

/// The record for the outcome of a run that acted on `targets`.
pub(crate) fn summary_record(invoker: &str, targets: &str, s: &Summary) -> AuditRecord {
    let fields = [
        ("action", "run".to_string()),
        ("targets", targets.to_string()),
        ("users_logged_off", s.users_logged_off.to_string()),
        ("users_not_logged_on", s.users_not_logged_on.to_string()),
        ("users_failed", s.users_failed.to_string()),
        ("sessions_logged_off", s.sessions_logged_off.to_string()),
        ("processes_terminated", s.processes_terminated.to_string()),
        ("actions_failed", s.actions_failed.to_string()),
        ("exit_code", s.exit_code.to_string()),
    ];
    let severity = if s.exit_code == 0 { Severity::Notice } else { Severity::Warning };
    record(severity, &fields, invoker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_blanks_and_quotes_stay_parseable() {
        let table = [
            ("alice", "alice"),
            ("John Smith", "\"John Smith\""),
            ("a\"b", "\"a\\\"b\""),
            ("x=y", "\"x=y\""),
            ("CORP\\jsmith", "CORP\\jsmith"),
            ("", "\"\""),
            ("bad\nline", "\"bad\\nline\""),
            ("a\x1b[2J", "\"a\\x1b[2J\""),
            ("rlo\u{202e}", "\"rlo\\u{202e}\""),
            ("José", "José"),
        ];
        for (input, want) in table {
            assert_eq!(quote(input), want, "{input:?}");
        }
    }

    #[test]
    fn a_hostile_value_never_starts_a_record_or_a_key() {
        use crate::testing::fuzz::render;
        let forged = [
            "x\n<85>logoff-users[1]: action=run exit_code=0",
            "alice result=requested",
            "bob\" result=\"requested",
            "a\\\" invoked_by=root",
            "e\\",
            "\"",
            "=",
            "",
        ];
        let hostile = render::HOSTILE.iter().map(|(raw, _)| *raw);
        for value in forged.into_iter().chain(hostile) {
            render::check_audit_round_trip(&[value.to_string()]);
            render::check_audit_round_trip(&[value.to_string(), "CORP\\ok".into(), String::new()]);
            let record =
                action_record(value, value, &ActionRecord::new(crate::report::ActionKind::LogoffSession, value, None));
            assert!(!record.message.contains(render::forbidden), "{:?}", record.message);
        }
    }

    #[test]
    fn records_name_the_invoker_the_target_and_the_outcome() {
        let a = ActionRecord {
            action: crate::report::ActionKind::LogoffSession,
            user: "CORP\\John Smith".into(),
            session_id: Some("3".into()),
            reason: None,
            result: ActionResult::Failed,
            error: Some("could not log off session 3: Access is denied.".into()),
            signalled: None,
            method: None,
        };
        let r = action_record("root (via sudo from admin)", "localhost", &a);
        assert_eq!(r.severity, Severity::Warning);
        assert_eq!(
            r.message,
            "action=logoff_session host=localhost user=\"CORP\\\\John Smith\" session=3 result=failed \
             error=\"could not log off session 3: Access is denied.\" invoked_by=\"root (via sudo from admin)\""
        );
        let s = Summary { users_logged_off: 2, sessions_logged_off: 3, exit_code: 0, ..Summary::default() };
        let r = summary_record("root", "alice,bob", &s);
        assert_eq!(r.severity, Severity::Notice);
        assert!(r.message.starts_with("action=run targets=alice,bob users_logged_off=2 "));
        assert!(r.message.ends_with(" exit_code=0 invoked_by=root"));
    }

    #[test]
    fn a_drain_record_says_what_refuses_logons() {
        use crate::drain::{DrainAction, DrainReport, DrainStatus, DrainStep};
        let status = DrainStatus { draining: true, mechanism: Some("/run/nologin".into()), ours: None };
        let r =
            drain_record("root", "localhost", DrainStep::Drain, &DrainReport::new(DrainAction::Drained, status, ""));
        assert_eq!(r.severity, Severity::Notice);
        assert_eq!(
            r.message,
            "action=drain host=localhost result=drained draining=true mechanism=/run/nologin invoked_by=root"
        );
        // An undrain after which logons stay refused is a warning.
        let status = DrainStatus { draining: true, mechanism: Some("/run/nologin".into()), ours: None };
        let r = drain_record("root", "h", DrainStep::Undrain, &DrainReport::new(DrainAction::NotOurs, status, ""));
        assert_eq!(r.severity, Severity::Warning);
        assert!(r.message.starts_with("action=undrain host=h result=not_ours draining=true "), "{}", r.message);
    }
}
