//! The command line: parse the arguments, open the backend(s), plan, act, verify, report,
//! and turn the outcome into one documented exit code.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, ValueEnum};

use logoff_users::audit::{self, AuditRecord, AuditSink};
use logoff_users::backend::fake::Fake;
use logoff_users::backend::{self, Backend, NativeOptions, ProcessSource, SessionSource};
use logoff_users::duration;
use logoff_users::duration::parse_duration;
use logoff_users::error::{Error, ErrorKind};
use logoff_users::execute::{
    ExecOptions, MAX_MESSAGE_CHARS, execute, reminder_points, send_messages, snapshot, wait_grace,
};
use logoff_users::plan::{Plan, PlanOptions, SessionFilter, TerminateReason, plan};
use logoff_users::report::{
    self, ActionResult, Event, HostReport, HostSessions, Report, Request, SessionList, Summary, UserOutcome, UserResult,
};
use logoff_users::userlist::{Targets, parse_exclude, parse_targets};

/// Every targeted user is logged off (a user who was not logged on counts as done).
const EXIT_OK: i32 = 0;
/// Some action failed or could not be verified.
const EXIT_FAILED: i32 = 1;
/// Bad input or usage, or a refused target; nothing was done.
const EXIT_USAGE: i32 = 2;
/// Not enough privilege to act, or this OS is not supported; nothing was done.
const EXIT_PRIVILEGE: i32 = 3;
/// Cancelled (Ctrl-C, SIGTERM) during the grace period; no one was logged off.
const EXIT_CANCELLED: i32 = 4;

const AFTER_HELP: &str = "\
USERS: comma-separated names or ALL, from the arguments, --users, or LOGOFF_USERS.
Names: user, DOMAIN\\user, user@domain, .\\user; matched exactly, ignoring case.

Exit codes:
  0  every targeted user is logged off (a user not logged on counts as done)
  1  some action failed or could not be verified
  2  bad input or usage, or a protected target refused; nothing was done
  3  not enough privilege, or this OS is not supported yet; nothing was done
  4  cancelled (Ctrl-C, SIGTERM) during the --message grace period; no one was logged off";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Source {
    Auto,
    Logind,
    Utmp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProcSource {
    Auto,
    Procfs,
    Bpf,
}

/// Log users off this machine (or remote RDS hosts): named users, or ALL. Verifies that
/// their sessions and processes are gone.
#[derive(Debug, Parser)]
#[command(name = "logoff-users", version, after_help = AFTER_HELP)]
struct Args {
    /// Users to log off (names or ALL; each argument may be a comma-separated list).
    #[arg(value_name = "USERS", conflicts_with = "list")]
    users: Vec<String>,

    /// The user list as one comma-separated value, as an RMM passes it (e.g. '@Users@').
    #[arg(long = "users", value_name = "LIST", conflicts_with = "list")]
    users_list: Option<String>,

    /// Users to leave alone, in the same syntax (applies to ALL too).
    #[arg(long, value_name = "LIST")]
    exclude: Vec<String>,

    /// List the sessions on the machine and exit.
    #[arg(long)]
    list: bool,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,

    /// Print the plan, change nothing.
    #[arg(long)]
    dry_run: bool,

    /// How long to wait until the sessions and processes are gone (90s, 5m, 1h30m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,

    /// The time users get. Without --message: between SIGTERM and SIGKILL (default 5s).
    /// With --message: between the warning and the logoff (default 5m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    grace: Option<Duration>,

    /// Between SIGTERM and SIGKILL, whatever --grace says (default 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    kill_after: Option<Duration>,

    /// Show this message to every targeted session, wait --grace, then log off. At most
    /// 255 characters (the Windows limit). Ctrl-C or SIGTERM during the wait cancels.
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,

    /// Only sessions with no client attached (Windows disconnected, logind closing).
    #[arg(long)]
    disconnected_only: bool,

    /// Only sessions idle for longer than DURATION.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    idle_over: Option<Duration>,

    /// Disconnect the sessions instead of logging them off, keeping the users' work
    /// (Windows only).
    #[arg(long)]
    disconnect: bool,

    /// Allow explicitly named protected accounts (never session 0 or the tool's own session).
    #[arg(long)]
    force: bool,

    /// Do not terminate the processes of a named user who has no session.
    #[arg(long)]
    no_process_fallback: bool,

    /// Also terminate the user's processes in the services session 0 (Windows).
    #[arg(long)]
    include_services: bool,

    /// Remote RDS hosts to act on (Windows), comma-separated.
    #[arg(long, value_name = "HOST[,HOST...]", value_delimiter = ',')]
    server: Vec<String>,

    /// Where Linux sessions come from.
    #[arg(long, value_enum, default_value = "auto")]
    source: Source,

    /// The utmp file to read (Linux, without logind).
    #[arg(long, value_name = "PATH")]
    utmp: Option<PathBuf>,

    /// Where the uids of every process come from (Linux): `bpf` is a read-only BPF task
    /// iterator, several times faster than reading /proc/PID/status for each process;
    /// `auto` uses it from a thousand processes on (and /proc where BPF is not allowed);
    /// `procfs` never loads BPF.
    #[arg(long, value_enum, default_value = "auto")]
    process_source: ProcSource,

    /// Act on a fake machine described by a JSON state file (for tests).
    #[arg(long, value_name = "FILE", hide = true)]
    fake_state: Option<PathBuf>,

    /// Write the audit trail to this syslog datagram socket instead of /dev/log (for tests).
    /// With --fake-state, there is no audit trail unless this is given.
    #[arg(long, value_name = "PATH", hide = true)]
    audit_socket: Option<PathBuf>,
}

/// The audit trail of a run: every action and the outcome go to the system log.
struct Audit {
    sink: Option<Box<dyn AuditSink>>,
    invoker: String,
    warned: bool,
}

impl Audit {
    fn open(args: &Args) -> Audit {
        let wanted = !args.dry_run && (args.fake_state.is_none() || args.audit_socket.is_some());
        let sink = if wanted {
            match audit::open_system_log(args.audit_socket.as_deref()) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("warning: could not open the system log for the audit trail: {e}");
                    None
                }
            }
        } else {
            None
        };
        Audit { sink, invoker: audit::invoker(), warned: false }
    }

    /// Prints an event of `host`, and writes it to the audit trail when it is an action.
    fn log_event(&mut self, out: &Out, host: &str, event: Event) {
        if let Event::Action(a) = &event {
            self.write(audit::action_record(&self.invoker, host, a));
        }
        out.line(event);
    }

    fn write(&mut self, record: AuditRecord) {
        if let Some(sink) = &mut self.sink {
            if let Err(e) = sink.write(&record) {
                if !self.warned {
                    eprintln!("warning: could not write the audit trail to the system log: {e}");
                    self.warned = true;
                }
            }
        }
    }
}

/// Prints one line of text output, unless the format is JSON.
struct Out {
    format: Format,
}

impl Out {
    fn line(&self, line: impl std::fmt::Display) {
        if self.format == Format::Text {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe must not panic the tool mid-run; the exit code still tells.
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    }

    fn json(&self, value: &impl serde::Serialize) {
        let text = serde_json::to_string_pretty(value).expect("report serializes");
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}

/// Runs the tool; returns the exit code.
pub fn main() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let out = Out { format: args.format };
    if args.list {
        return list(&args, &out);
    }
    logoff(&args, &out)
}

/// A host name, and its backend or why it could not be opened.
type Opened = (String, Result<Box<dyn Backend>, Error>);

fn open_hosts(args: &Args) -> Vec<Opened> {
    if let Some(path) = &args.fake_state {
        let b = Fake::open(path).map(|f| Box::new(f) as Box<dyn Backend>);
        let host = b.as_ref().map(|b| b.host()).unwrap_or_else(|_| "localhost".into());
        return vec![(host, b)];
    }
    let source = match args.source {
        Source::Auto => SessionSource::Auto,
        Source::Logind => SessionSource::Logind,
        Source::Utmp => SessionSource::Utmp,
    };
    let servers: Vec<Option<String>> = if args.server.is_empty() {
        vec![None]
    } else {
        args.server.iter().map(|s| Some(s.trim().to_string())).collect()
    };
    servers
        .into_iter()
        .map(|server| {
            let opts = NativeOptions {
                source,
                utmp_path: args.utmp.clone(),
                server: server.clone(),
                processes: match args.process_source {
                    ProcSource::Auto => ProcessSource::Auto,
                    ProcSource::Procfs => ProcessSource::Procfs,
                    ProcSource::Bpf => ProcessSource::TaskIter,
                },
            };
            (server.unwrap_or_else(|| "localhost".into()), backend::open_native(&opts))
        })
        .collect()
}

fn fatal_code(e: &Error) -> i32 {
    match e.kind {
        ErrorKind::PermissionDenied | ErrorKind::Unsupported => EXIT_PRIVILEGE,
        ErrorKind::InvalidInput => EXIT_USAGE,
        _ => EXIT_FAILED,
    }
}

fn list(args: &Args, out: &Out) -> i32 {
    let mut hosts = Vec::new();
    let mut code = EXIT_OK;
    for (host, opened) in open_hosts(args) {
        let (backend_name, result) = match opened {
            Ok(mut b) => (b.name().to_string(), b.list_sessions()),
            Err(e) => ("-".to_string(), Err(e)),
        };
        let (sessions, error) = match result {
            Ok(s) => (s, None),
            Err(e) => {
                eprintln!("error: {e}");
                code = code.max(fatal_code(&e));
                (Vec::new(), Some(e.to_string()))
            }
        };
        hosts.push(HostSessions { host, backend: backend_name, error, sessions });
    }
    match out.format {
        Format::Json => out.json(&SessionList { version: report::REPORT_VERSION, hosts }),
        Format::Text => {
            if hosts.iter().any(|h| h.error.is_none()) {
                print!("{}", report::session_table(&hosts));
            }
        }
    }
    code
}

/// The user lists, from the arguments, `--users`, or `LOGOFF_USERS`.
fn user_lists(args: &Args) -> Vec<String> {
    let mut lists = args.users.clone();
    lists.extend(args.users_list.clone());
    if lists.is_empty() {
        if let Ok(env) = std::env::var("LOGOFF_USERS") {
            lists.push(env);
        }
    }
    lists
}

fn usage_error(out: &Out, request: Request, message: &str, code: i32) -> i32 {
    eprintln!("error: {message}; nothing was done");
    if out.format == Format::Json {
        let summary = Summary { exit_code: code, ..Summary::default() };
        out.json(&Report {
            version: report::REPORT_VERSION,
            tool: tool(),
            request,
            error: Some(message.to_string()),
            hosts: Vec::new(),
            summary,
        });
    }
    code
}

fn tool() -> String {
    format!("logoff-users {}", env!("CARGO_PKG_VERSION"))
}

/// One host between planning and acting.
struct Host {
    backend: Option<Box<dyn Backend>>,
    report: HostReport,
}

fn logoff(args: &Args, out: &Out) -> i32 {
    let mut request = Request {
        all: false,
        users: Vec::new(),
        exclude: Vec::new(),
        dry_run: args.dry_run,
        timeout_ms: args.timeout.as_millis() as u64,
    };
    let targets = match parse_targets(&user_lists(args)) {
        Ok(t) => t,
        Err(e) => return usage_error(out, request, &e.message, EXIT_USAGE),
    };
    let exclude = match parse_exclude(&args.exclude) {
        Ok(x) => x,
        Err(e) => return usage_error(out, request, &e.message, EXIT_USAGE),
    };
    request.all = targets == Targets::All;
    if let Targets::Users(names) = &targets {
        request.users = names.iter().map(ToString::to_string).collect();
    }
    request.exclude = exclude.iter().map(ToString::to_string).collect();

    if let Some(m) = &args.message {
        let n = m.chars().count();
        if m.trim().is_empty() {
            return usage_error(out, request, "--message must not be empty", EXIT_USAGE);
        }
        if n > MAX_MESSAGE_CHARS {
            let msg = format!(
                "--message is {n} characters; at most {MAX_MESSAGE_CHARS} can be shown (the Windows limit): shorten it"
            );
            return usage_error(out, request, &msg, EXIT_USAGE);
        }
    }
    let opts = PlanOptions {
        force: args.force,
        process_fallback: !args.no_process_fallback,
        include_services: args.include_services,
        filter: SessionFilter {
            disconnected_only: args.disconnected_only,
            idle_over: args.idle_over.map(|d| d.as_secs()),
        },
        disconnect: args.disconnect,
    };

    // Phase 1: open, check privilege, list and plan on every host, acting on none.
    let mut hosts = Vec::new();
    for (host, opened) in open_hosts(args) {
        let mut report = HostReport {
            host,
            backend: "-".into(),
            error: None,
            plan: None,
            actions: Vec::new(),
            verification: None,
            users: Vec::new(),
        };
        let mut backend = match opened {
            Ok(b) => b,
            Err(e) => {
                if matches!(fatal_code(&e), EXIT_PRIVILEGE | EXIT_USAGE) {
                    return usage_error(out, request, &e.to_string(), fatal_code(&e));
                }
                report.error = Some(e.to_string());
                hosts.push(Host { backend: None, report });
                continue;
            }
        };
        report.backend = backend.name().to_string();
        if args.disconnect && !backend.policy().can_disconnect {
            let msg = format!("--disconnect is not possible with the {} backend (Windows only)", backend.name());
            return usage_error(out, request, &msg, EXIT_USAGE);
        }
        if !args.dry_run {
            if let Err(e) = backend.check_privilege() {
                let code = fatal_code(&e);
                if code != EXIT_FAILED {
                    return usage_error(out, request, &e.to_string(), code);
                }
                report.error = Some(e.to_string());
                hosts.push(Host { backend: None, report });
                continue;
            }
        }
        match snapshot(backend.as_mut()) {
            Ok(snap) => report.plan = Some(plan(&targets, &exclude, &snap, opts)),
            Err(e) => {
                let code = fatal_code(&e);
                if code != EXIT_FAILED {
                    return usage_error(out, request, &e.to_string(), code);
                }
                report.error = Some(e.to_string());
            }
        }
        hosts.push(Host { backend: Some(backend), report });
    }

    let refusals: Vec<String> = hosts
        .iter()
        .filter_map(|h| h.report.plan.as_ref().map(|p| (h, p)))
        .flat_map(|(h, p)| {
            p.refused.iter().map(move |r| {
                let session = r.session_id.as_ref().map(|s| format!(" (session {s})")).unwrap_or_default();
                format!("refused on {}: {}{session}: {}", h.report.host, r.user, r.reason)
            })
        })
        .collect();
    if !refusals.is_empty() {
        for r in &refusals {
            eprintln!("error: {r}");
        }
        let msg = format!("{} target(s) refused: {}", refusals.len(), refusals.join("; "));
        return finish(out, request, Some(msg), hosts.into_iter().map(|h| h.report).collect(), Some(EXIT_USAGE))
            .exit_code;
    }

    // Phase 2: warn every host's sessions and wait out the grace period (cancellable).
    let kill_after = args.kill_after.or(if args.message.is_none() { args.grace } else { None });
    let exec_opts = ExecOptions {
        timeout: args.timeout,
        grace: kill_after.unwrap_or(Duration::from_secs(5)),
        include_services: args.include_services,
        disconnect: args.disconnect,
        ..ExecOptions::default()
    };
    let mut audit = Audit::open(args);
    let targets = if request.all { "ALL".to_string() } else { request.users.join(",") };
    if let (Some(text), false) = (&args.message, args.dry_run) {
        let grace = args.grace.unwrap_or(Duration::from_secs(300));
        if !warn_and_wait(&mut hosts, text, grace, out, &mut audit) {
            let reports: Vec<HostReport> = hosts.into_iter().map(|h| h.report).collect();
            let summary = finish(out, request, None, reports, Some(EXIT_CANCELLED));
            audit.write(audit::summary_record(&audit.invoker, &targets, &summary));
            return summary.exit_code;
        }
    }

    // Phase 3: act and verify, host by host.
    let mut reports = Vec::new();
    for mut h in hosts {
        out.line(Event::Host { host: h.report.host.clone(), backend: h.report.backend.clone() });
        if let Some(e) = &h.report.error {
            out.line(format!("FAILED: host {}: {e}", h.report.host));
        }
        if let (Some(b), Some(p)) = (h.backend.as_mut(), h.report.plan.as_ref()) {
            if args.dry_run {
                if let Some(text) = &args.message {
                    let grace = duration::format_duration(args.grace.unwrap_or(Duration::from_secs(300)));
                    out.line(format!("would warn every planned session ({text:?}) and wait {grace}"));
                }
                for line in dry_run_lines(p, if args.disconnect { "disconnect" } else { "log off" }) {
                    out.line(line);
                }
                h.report.users = p
                    .users
                    .iter()
                    .map(|u| UserResult {
                        requested: u.requested.clone(),
                        user: u.account.as_ref().map(|a| a.display_name()),
                        outcome: if u.account.is_none() { UserOutcome::NotLoggedOn } else { UserOutcome::Planned },
                    })
                    .collect();
            } else {
                let host = h.report.host.clone();
                let exec = execute(b.as_mut(), p, &exec_opts, &mut |e| audit.log_event(out, &host, e));
                h.report.actions.extend(exec.actions);
                h.report.verification = Some(exec.verification);
                h.report.users = exec.users;
            }
        }
        reports.push(h.report);
    }
    let summary = finish(out, request, None, reports, None);
    if !args.dry_run {
        audit.write(audit::summary_record(&audit.invoker, &targets, &summary));
    }
    summary.exit_code
}

/// Sends the warning to every planned session on every host, then waits out the grace
/// period with a countdown and reminders. Returns `false` when cancelled.
fn warn_and_wait(hosts: &mut [Host], text: &str, grace: Duration, out: &Out, audit: &mut Audit) -> bool {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        eprintln!("warning: could not install the Ctrl-C/SIGTERM handler; the grace period cannot be cancelled: {e}");
    }
    let title = "logoff-users";
    let left = duration::format_duration(grace);
    let first = format!("{text} (You will be logged off in {left}.)");
    let first = if first.chars().count() <= MAX_MESSAGE_CHARS { first } else { text.to_string() };
    out.line(Event::Notice(format!("warning {} session(s): {text:?}", planned_sessions(hosts))));
    for h in hosts.iter_mut() {
        if let (Some(b), Some(p)) = (h.backend.as_mut(), h.report.plan.as_ref()) {
            let host = h.report.host.clone();
            let sent = send_messages(b.as_mut(), p, title, &first, &mut |e| audit.log_event(out, &host, e));
            h.report.actions.extend(sent);
        }
    }
    let mut remind = |left: Duration| {
        let reminder = format!("Reminder: you will be logged off in {}. {text}", duration::format_duration(left));
        let reminder: String = reminder.chars().take(MAX_MESSAGE_CHARS).collect();
        for h in hosts.iter_mut() {
            if let (Some(b), Some(p)) = (h.backend.as_mut(), h.report.plan.as_ref()) {
                let host = h.report.host.clone();
                let sent = send_messages(b.as_mut(), p, title, &reminder, &mut |e| audit.log_event(out, &host, e));
                h.report.actions.extend(sent);
            }
        }
    };
    wait_grace(grace, &reminder_points(grace), &cancel, &mut remind, &mut |e| out.line(e))
}

fn planned_sessions(hosts: &[Host]) -> usize {
    hosts.iter().filter_map(|h| h.report.plan.as_ref()).flat_map(|p| &p.users).map(|u| u.sessions.len()).sum()
}

fn dry_run_lines(p: &Plan, verb: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for s in &p.skipped {
        lines.push(format!("would skip session {} of {}: {}", s.session_id, s.user, s.reason));
    }
    for u in &p.users {
        let Some(a) = &u.account else {
            lines.push(format!("user {}: not logged on, nothing to do", u.requested));
            continue;
        };
        let who = a.display_name();
        lines.push(format!("user {who}: {} session(s), {} process(es)", u.sessions.len(), u.pids.len()));
        for n in &u.notes {
            lines.push(format!("user {who}: {n}"));
        }
        for s in &u.sessions {
            let station = s.station.as_ref().map(|st| format!(" ({st})")).unwrap_or_default();
            lines.push(format!("would {verb} session {}{station} of {who}", s.id));
        }
        match u.terminate {
            Some(TerminateReason::Fallback) => {
                lines.push(format!("would terminate the {} process(es) of {who} (no session: fallback)", u.pids.len()))
            }
            Some(TerminateReason::Sweep) => {
                lines.push(format!("would then terminate every remaining process of {who}"))
            }
            None => {}
        }
    }
    lines
}

/// Counts the outcome, prints the summary line or the JSON document, and returns the
/// summary with the exit code.
fn finish(out: &Out, request: Request, error: Option<String>, hosts: Vec<HostReport>, forced: Option<i32>) -> Summary {
    let mut s = Summary::default();
    for h in &hosts {
        if h.error.is_some() {
            s.hosts_failed += 1;
        }
        for u in &h.users {
            s.users_targeted += 1;
            match u.outcome {
                UserOutcome::LoggedOff => s.users_logged_off += 1,
                UserOutcome::NotLoggedOn => s.users_not_logged_on += 1,
                UserOutcome::Failed => s.users_failed += 1,
                UserOutcome::Disconnected => s.users_disconnected += 1,
                UserOutcome::LeftAlone => s.users_left_alone += 1,
                UserOutcome::Planned => {}
            }
        }
        for a in &h.actions {
            match (a.action.as_str(), a.result) {
                ("send_message", ActionResult::Failed) => s.messages_failed += 1,
                ("send_message", _) => s.messages_delivered += 1,
                (_, ActionResult::Failed) => s.actions_failed += 1,
                ("logoff_session", ActionResult::Requested) => s.sessions_logged_off += 1,
                ("logoff_session", ActionResult::AlreadyGone) => s.sessions_already_gone += 1,
                _ => {}
            }
            s.processes_terminated += a.signalled.unwrap_or(0);
        }
    }
    let unverified = hosts.iter().any(|h| h.verification.as_ref().is_some_and(|v| !v.verified));
    s.cancelled = forced == Some(EXIT_CANCELLED);
    s.exit_code = forced.unwrap_or(if s.hosts_failed > 0 || s.users_failed > 0 || s.actions_failed > 0 || unverified {
        EXIT_FAILED
    } else {
        EXIT_OK
    });
    out.line(s.line(request.dry_run || error.is_some()));
    if out.format == Format::Json {
        out.json(&Report { version: report::REPORT_VERSION, tool: tool(), request, error, hosts, summary: s.clone() });
    }
    s
}
