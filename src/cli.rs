//! The wiring of the binary: parse the flags, open the hosts, run, print, exit. The flags
//! are `crate::flags`'s; the work and the exit code are the library's.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use crate::flags::{self, Args, Command, Format, Hosts, UsageError};
use crate::jobs_cli;
use logoff_users::backend::fake::Fake;
use logoff_users::backend::{Backend, NativeOptions};
use logoff_users::event::Event;
use logoff_users::report::{EXIT_OK, EXIT_USAGE, Report, Stop};
use logoff_users::{AuditTrail, Host, Observer, open_native, text};

/// Runs the tool; returns the exit code.
pub fn main() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    match flags::command(args, std::env::var("LOGOFF_USERS").ok()) {
        Ok(Command::List { format, hosts }) => list(format, &hosts),
        Ok(Command::Logoff { run, format, hosts, audit }) => {
            let mut console = Console { format, audit: AuditTrail::open(audit.enabled, audit.socket.as_deref()) };
            let cancel = cancel_flag(run.warning.is_some() && !run.dry_run);
            let report = logoff_users::run(&run, open_hosts(&hosts), &mut console, &cancel);
            console.audit.outcome(&report);
            finish(format, &report)
        }
        Ok(Command::Detach { run, format, hosts, audit, jobs }) => {
            jobs_cli::detach(&run, format, &hosts, &audit, &jobs)
        }
        Ok(Command::Pending { format, dir }) => jobs_cli::pending(format, &dir),
        Ok(Command::Cancel { target, message, format, dir, audit }) => {
            jobs_cli::cancel(&target, message.as_deref(), format, &dir, &audit)
        }
        Ok(Command::RunJob { id, dir, service }) => jobs_cli::run_job(id, dir, service),
        Err(UsageError { message, request, format }) => {
            let mut report = logoff_users::refused(None, &message, Stop::Usage);
            report.request = request;
            finish(format, &report)
        }
    }
}

/// The run's events, printed as text lines (unless the output is JSON) and, for
/// actions, written to the audit trail.
struct Console {
    format: Format,
    audit: AuditTrail,
}

impl Observer for Console {
    fn event(&mut self, host: &str, event: Event) {
        if let Event::Action(a) = &event {
            self.audit.action(host, a);
        }
        if self.format == Format::Text {
            line(&event);
        }
    }
}

/// Prints one line of text output and flushes it, so that an RMM sees it as it happens.
fn line(line: impl std::fmt::Display) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe must not panic the tool mid-run; the exit code still tells.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).expect("report serializes");
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// A flag that Ctrl-C or SIGTERM sets, when a grace period can be cancelled; without one
/// the signals keep their default effect.
fn cancel_flag(wanted: bool) -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    if wanted {
        let flag = Arc::clone(&cancel);
        if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
            eprintln!(
                "warning: could not install the Ctrl-C/SIGTERM handler; the grace period cannot be cancelled: {e}"
            );
        }
    }
    cancel
}

/// The hosts to act on: a fake machine, this machine, or each remote server.
fn open_hosts(hosts: &Hosts) -> Vec<Host> {
    if let Some(path) = &hosts.fake_state {
        let backend = Fake::open(path).map(|f| Box::new(f) as Box<dyn Backend>);
        let name = backend.as_ref().map(|b| b.host()).unwrap_or_else(|_| "localhost".into());
        return vec![Host { name, backend }];
    }
    if hosts.servers.is_empty() {
        return vec![Host { name: "localhost".into(), backend: open_native(&hosts.native) }];
    }
    hosts
        .servers
        .iter()
        .map(|server| {
            let opts = NativeOptions { server: Some(server.clone()), ..hosts.native.clone() };
            Host { name: server.clone(), backend: open_native(&opts) }
        })
        .collect()
}

fn list(format: Format, hosts: &Hosts) -> i32 {
    let (doc, code) = logoff_users::list(open_hosts(hosts));
    for h in &doc.hosts {
        if let Some(e) = &h.error {
            eprintln!("error: {e}");
        }
    }
    match format {
        Format::Json => json(&doc),
        Format::Text if doc.hosts.iter().any(|h| h.error.is_none()) => print!("{}", text::session_table(&doc.hosts)),
        Format::Text => {}
    }
    code
}

/// Prints the end of a run (its error lines, the summary line or the JSON document) and
/// returns its exit code.
fn finish(format: Format, report: &Report) -> i32 {
    for l in text::error_lines(report) {
        eprintln!("{l}");
    }
    if format == Format::Text {
        if let Some(summary) = text::summary_line(report) {
            line(summary);
        }
    }
    if format == Format::Json {
        json(report);
    }
    report.summary.exit_code
}
