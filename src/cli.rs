//! The wiring of the binary: parse the flags, open the hosts, run, print, exit. The flags
//! are `crate::flags`'s; the work and the exit code are the library's.

use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use crate::flags::{self, Args, Command, Format, Hosts, UsageError};
use crate::jobs_cli;
use logoff_users::event::Event;
use logoff_users::report::{EXIT_OK, EXIT_USAGE, Report, Stop};
use logoff_users::{AuditTrail, Host, Observer, text};

/// Runs the tool; returns the exit code.
pub fn main() -> i32 {
    let args = match parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    match flags::command(args, std::env::var("LOGOFF_USERS").ok()) {
        Ok(Command::List { format, hosts }) => list(format, &hosts),
        Ok(Command::Logoff { run, format, hosts, audit }) => {
            let mut console = Console { format, audit: hosts.doors.audit_trail(audit) };
            let cancel = cancel_flag(run.warning.is_some() && !run.dry_run, "the grace period cannot be cancelled");
            let report = logoff_users::run(&run, open_hosts(&hosts), &mut console, &cancel);
            console.audit.outcome(&report);
            finish(format, &report)
        }
        Ok(Command::Detach { run, format, hosts, audit, jobs }) => jobs_cli::detach(&run, format, &hosts, audit, &jobs),
        Ok(Command::Pending { format, dir }) => jobs_cli::pending(format, &dir),
        Ok(Command::Cancel { target, message, format, dir, doors }) => {
            jobs_cli::cancel(&target, message.as_deref(), format, &dir, &doors)
        }
        Ok(Command::RunJob { id, dir, service }) => jobs_cli::run_job(id, dir, service),
        Err(UsageError { message, request, format }) => {
            // Refused before any host was looked at: exit 2, nothing done.
            finish(format, &Report::new(request, Vec::new(), Some(Stop::Usage), Some(message)))
        }
    }
}

const UNREADABLE_ARGUMENTS: &str =
    "error: the arguments could not be read: not UTF-8, or a control character where none can be\n";

/// The parsed arguments, or the exit code of `--help`, `--version` or a usage error.
fn parse_args() -> Result<Args, i32> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match Args::try_parse_from(&argv) {
        Ok(a) => Ok(a),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(EXIT_OK)
        }
        Err(e) => {
            // clap's message quotes the offending argument, which may hold anything, a
            // newline included: it is told from the arguments as the text output shows them.
            let shown: Vec<String> = argv.iter().map(|a| text::escape(&a.to_string_lossy()).into_owned()).collect();
            let plain = argv.iter().zip(&shown).all(|(a, s)| a.to_str() == Some(s.as_str()));
            let message = if plain {
                e.render().to_string()
            } else {
                match Args::try_parse_from(&shown) {
                    Err(shown_error) => shown_error.render().to_string(),
                    // Only arguments that are not UTF-8 or hold control characters get here.
                    Ok(_) => UNREADABLE_ARGUMENTS.to_string(),
                }
            };
            eprint!("{}", text::escape_lines(&message));
            Err(EXIT_USAGE)
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
        self.audit.event(host, &event);
        if self.format == Format::Text {
            line(&event);
        }
    }
}

/// Prints one line of text output and flushes it, so that an RMM sees it as it happens.
pub(crate) fn line(line: impl std::fmt::Display) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe must not panic the tool mid-run; the exit code still tells.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

pub(crate) fn json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).expect("report serializes");
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// A flag that Ctrl-C or SIGTERM sets, when `wanted`; without one the signals keep their
/// default effect. `lost` says what cannot be done when the handler cannot be installed.
pub(crate) fn cancel_flag(wanted: bool, lost: &str) -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    if wanted {
        let flag = Arc::clone(&cancel);
        if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
            let what = format!("could not install the Ctrl-C/SIGTERM handler; {lost}");
            eprintln!("{}", text::warning_line(&what, &e));
        }
    }
    cancel
}

/// The hosts to act on: a fake machine, this machine, or each remote server.
fn open_hosts(hosts: &Hosts) -> Vec<Host> {
    if let Some(fake) = hosts.doors.fake_host() {
        return vec![fake];
    }
    logoff_users::open_hosts(&hosts.native, &hosts.servers)
}

fn list(format: Format, hosts: &Hosts) -> i32 {
    let (doc, code) = logoff_users::list(open_hosts(hosts));
    for l in text::list_error_lines(&doc.hosts) {
        eprintln!("{l}");
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
pub(crate) fn finish(format: Format, report: &Report) -> i32 {
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
