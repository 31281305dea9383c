//! The audit trail of a run: opens the platform's system log and writes one record per
//! action and one for the outcome, with who ran the tool. A failure to write a record
//! never stops a run; it warns once on stderr.
//!
//! The records themselves are `crate::audit`'s (pure); the sinks are the platforms'.

use std::path::Path;

use crate::audit::{AuditRecord, AuditSink, Severity, action_record, drain_record, record, summary_record};
use crate::drain::{DrainAction, DrainReport, DrainStep};
use crate::event::Event;
use crate::report::{ActionRecord, Report, Stop};

/// The audit trail of a run: every action and the outcome go to the system log, with who
/// ran the tool.
pub struct AuditTrail {
    sink: Option<Box<dyn AuditSink>>,
    invoker: String,
    warned: bool,
}

impl AuditTrail {
    /// Opens the system log; `enabled` false gives a trail that writes nothing (a dry run
    /// changes nothing to audit).
    pub fn open(enabled: bool) -> AuditTrail {
        AuditTrail::open_at(enabled, None)
    }

    /// [`open`](AuditTrail::open), or, for the test build's door
    /// (`crate::doors::audit_trail_to`), the syslog socket at `socket`.
    pub(crate) fn open_at(enabled: bool, socket: Option<&Path>) -> AuditTrail {
        let sink = if enabled {
            match crate::platform::open_audit_sink(socket) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("{}", crate::text::warning_line("could not open the system log for the audit trail", &e));
                    None
                }
            }
        } else {
            None
        };
        AuditTrail { sink, invoker: crate::platform::invoker(), warned: false }
    }

    /// Records what an event of a run on `host` did, if it did anything: an action, or
    /// what `--drain`/`--undrain` did. Every other event is a line of the log only.
    pub fn event(&mut self, host: &str, event: &Event) {
        match event {
            Event::Action(a) => self.action(host, a),
            Event::Drain { step, report } => self.drain(host, *step, report),
            _ => {}
        }
    }

    /// Records one action on `host`.
    fn action(&mut self, host: &str, a: &ActionRecord) {
        let record = action_record(&self.invoker, host, a);
        self.write(record);
    }

    /// Records what `--drain` or `--undrain` did on `host` (not a dry run's plan).
    fn drain(&mut self, host: &str, step: DrainStep, r: &DrainReport) {
        if r.action != DrainAction::Planned {
            let record = drain_record(&self.invoker, host, step, r);
            self.write(record);
        }
    }

    /// Records the outcome of a run that acted (or was cancelled while warning); a dry
    /// run, or a run refused before acting, did nothing to record.
    pub fn outcome(&mut self, r: &Report) {
        if r.request.dry_run || matches!(r.stop, Some(Stop::Usage | Stop::Privilege)) {
            return;
        }
        let targets = if r.request.all { "ALL".to_string() } else { r.request.users.join(",") };
        let record = summary_record(&self.invoker, &targets, &r.summary);
        self.write(record);
    }

    /// Who runs the tool, as the records name them (`invoked_by`).
    pub fn invoker(&self) -> &str {
        &self.invoker
    }

    /// Records one event of a scheduled logoff (`crate::schedule`): its `key=value` fields,
    /// each value quoted as needed, then `invoked_by`.
    pub(crate) fn job(&mut self, severity: Severity, fields: &[(&str, String)]) {
        let r = record(severity, fields, &self.invoker);
        self.write(r);
    }

    fn write(&mut self, record: AuditRecord) {
        if let Some(sink) = &mut self.sink {
            if let Err(e) = sink.write(&record) {
                if !self.warned {
                    eprintln!("{}", crate::text::warning_line("could not write the audit trail to the system log", &e));
                    self.warned = true;
                }
            }
        }
    }
}
