//! One run, one way through: the library's [`run`] takes validated [`RunOptions`] and the
//! opened hosts, and goes through the phases in order, each a function that hands the next
//! a value:
//!
//! 1. **snapshot** and **plan**, on every host, acting on none ([`prepare`]);
//! 2. **warn**: the warning and the grace period, when asked for ([`grace`]);
//! 3. **execute** every action, host by host ([`act`]);
//! 4. **verify** what was planned until it is gone ([`verify`]);
//!
//! and returns a [`Report`], which owns the summary and the exit code. Events go to an
//! [`Observer`] as they happen (the binary prints them and writes the audit trail).
//!
//! Not here: flags, printing, exit (the binary), or anything that talks to the OS (the
//! backends).

pub(crate) mod act;
pub(crate) mod grace;
pub(crate) mod planned;
pub(crate) mod verify;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::backend::Backend;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, Would};
use crate::plan::{Plan, PlanOptions, plan};
use crate::report::{
    ActionKind, HostReport, HostSessions, REPORT_VERSION, Report, Request, SessionList, Stop, UserOutcome, UserResult,
};
use crate::snapshot::Snapshot;
use crate::userlist::{Targets, UserName};
use act::{ExecOptions, execute};

pub use grace::{MAX_MESSAGE_CHARS, reminder_points, wait_grace};

/// Everything a logoff run needs to know, validated: what the flags layer produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Who to log off.
    pub targets: Targets,
    /// Who to leave alone.
    pub exclude: Vec<UserName>,
    /// How the plan is shaped.
    pub plan: PlanOptions,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// How long actions and verification may take, per host.
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL.
    pub kill_after: Duration,
    /// A warning to show, and the grace period after it, before logging off.
    pub warning: Option<Warning>,
}

/// A warning shown to every planned session before the logoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The text, at most [`MAX_MESSAGE_CHARS`] characters.
    pub text: String,
    /// How long users get after it.
    pub grace: Duration,
}

/// One host to act on: its name, and its backend or why it could not be opened.
pub struct Host {
    /// The host name (`localhost`, or a remote server).
    pub name: String,
    /// The opened backend.
    pub backend: Result<Box<dyn Backend>, Error>,
}

/// Where the events of a run go, as they happen.
pub trait Observer {
    /// One event on `host`.
    fn event(&mut self, host: &str, event: Event);
}

/// The exit code an error gives when it stops a run or a listing: 3 for no privilege or
/// an unsupported OS, 2 for bad input, 1 otherwise.
pub fn stop_of(e: &Error) -> Option<Stop> {
    match e.kind {
        ErrorKind::PermissionDenied | ErrorKind::Unsupported => Some(Stop::Privilege),
        ErrorKind::InvalidInput => Some(Stop::Usage),
        _ => None,
    }
}

/// A host between planning and acting.
struct Prepared {
    backend: Option<Box<dyn Backend>>,
    snapshot: Option<Snapshot>,
    report: HostReport,
}

impl Prepared {
    fn plan(&self) -> Option<&Plan> {
        self.report.plan.as_ref()
    }
}

/// A run that stops before it acts.
struct Stopped {
    stop: Stop,
    message: String,
    hosts: Vec<HostReport>,
}

fn request_of(opts: &RunOptions) -> Request {
    Request {
        all: opts.targets == Targets::All,
        users: match &opts.targets {
            Targets::Users(names) => names.iter().map(ToString::to_string).collect(),
            Targets::All => Vec::new(),
        },
        exclude: opts.exclude.iter().map(ToString::to_string).collect(),
        dry_run: opts.dry_run,
        timeout_ms: opts.timeout.as_millis() as u64,
    }
}

/// The report of a run refused before any host was looked at: bad input found by the
/// caller (exit 2, nothing done).
pub fn refused(opts: Option<&RunOptions>, message: &str, stop: Stop) -> Report {
    let request = opts.map(request_of).unwrap_or(Request {
        all: false,
        users: Vec::new(),
        exclude: Vec::new(),
        dry_run: false,
        timeout_ms: 0,
    });
    Report::new(request, Vec::new(), Some(stop), Some(message.to_string()))
}

/// Runs a logoff on `hosts`: snapshot, plan, warn, execute, verify. `cancel` is set by
/// the caller's Ctrl-C/SIGTERM handler; it cancels the grace period.
pub fn run(opts: &RunOptions, hosts: Vec<Host>, observer: &mut dyn Observer, cancel: &AtomicBool) -> Report {
    let request = request_of(opts);
    let mut prepared = match prepare(opts, hosts) {
        Ok(p) => p,
        Err(s) => return Report::new(request, s.hosts, Some(s.stop), Some(s.message)),
    };
    if let Some(warning) = opts.warning.as_ref().filter(|_| !opts.dry_run) {
        if !warn(&mut prepared, warning, observer, cancel) {
            let hosts = prepared.into_iter().map(|p| p.report).collect();
            return Report::new(request, hosts, Some(Stop::Cancelled), None);
        }
    }
    let hosts = prepared.into_iter().map(|p| act_on_host(opts, p, observer)).collect();
    Report::new(request, hosts, None, None)
}

/// Phases 1 and 2 on every host: open, check privilege, snapshot and plan, acting on none.
/// Stops the run on bad input, missing privilege, or any refused target.
fn prepare(opts: &RunOptions, hosts: Vec<Host>) -> Result<Vec<Prepared>, Stopped> {
    let mut prepared = Vec::new();
    for host in hosts {
        let p = prepare_host(opts, host).map_err(|(stop, e)| Stopped { stop, message: e, hosts: Vec::new() })?;
        prepared.push(p);
    }
    let refusals: Vec<String> = prepared
        .iter()
        .filter_map(|p| p.plan().map(|plan| (p, plan)))
        .flat_map(|(p, plan)| {
            plan.refused.iter().map(move |r| {
                let session = r.session_id.as_ref().map(|s| format!(" (session {s})")).unwrap_or_default();
                format!("refused on {}: {}{session}: {}", p.report.host, r.user, r.reason)
            })
        })
        .collect();
    if refusals.is_empty() {
        return Ok(prepared);
    }
    let message = format!("{} target(s) refused: {}", refusals.len(), refusals.join("; "));
    Err(Stopped { stop: Stop::Usage, message, hosts: prepared.into_iter().map(|p| p.report).collect() })
}

fn prepare_host(opts: &RunOptions, host: Host) -> Result<Prepared, (Stop, String)> {
    let mut report = HostReport::new(&host.name);
    let fatal = |e: &Error| stop_of(e).map(|s| (s, e.to_string()));
    let mut backend = match host.backend {
        Ok(b) => b,
        Err(e) => {
            if let Some(stop) = fatal(&e) {
                return Err(stop);
            }
            report.error = Some(e.to_string());
            return Ok(Prepared { backend: None, snapshot: None, report });
        }
    };
    report.backend = backend.name().to_string();
    if opts.plan.disconnect && !backend.policy().can_disconnect {
        let msg = format!("--disconnect is not possible with the {} backend (Windows only)", backend.name());
        return Err((Stop::Usage, msg));
    }
    if !opts.dry_run {
        if let Err(e) = backend.check_privilege() {
            if let Some(stop) = fatal(&e) {
                return Err(stop);
            }
            report.error = Some(e.to_string());
            return Ok(Prepared { backend: None, snapshot: None, report });
        }
    }
    match Snapshot::take(backend.as_mut()) {
        Ok(snap) => {
            report.plan = Some(plan(&opts.targets, &opts.exclude, &snap, opts.plan));
            Ok(Prepared { backend: Some(backend), snapshot: Some(snap), report })
        }
        Err(e) => {
            if let Some(stop) = fatal(&e) {
                return Err(stop);
            }
            report.error = Some(e.to_string());
            Ok(Prepared { backend: Some(backend), snapshot: None, report })
        }
    }
}

/// Phase 3: warns every host's planned sessions and waits out the grace period, with
/// reminders. Returns `false` when cancelled.
fn warn(hosts: &mut [Prepared], warning: &Warning, observer: &mut dyn Observer, cancel: &AtomicBool) -> bool {
    let sessions = hosts.iter().filter_map(Prepared::plan).map(|p| p.sessions().count()).sum();
    observer.event("", Event::Warning { sessions, text: warning.text.clone() });
    send_to_all(hosts, &grace::first_warning(&warning.text, warning.grace), observer);
    // The reminders and the countdown lines both go to the observer, one after the other.
    let observer = std::cell::RefCell::new(observer);
    let mut remind = |left: Duration| send_to_all(hosts, &grace::reminder(&warning.text, left), *observer.borrow_mut());
    let points = reminder_points(warning.grace);
    wait_grace(warning.grace, &points, cancel, &mut remind, &mut |e| observer.borrow_mut().event("", e))
}

fn send_to_all(hosts: &mut [Prepared], text: &str, observer: &mut dyn Observer) {
    for h in hosts.iter_mut() {
        if let (Some(b), Some(p)) = (h.backend.as_mut(), h.report.plan.as_ref()) {
            let host = h.report.host.clone();
            let sent = grace::send_messages(b.as_mut(), p, text, &mut |e| observer.event(&host, e));
            h.report.actions.extend(sent);
        }
    }
}

/// Phases 4 and 5 on one host: every action, then verification; or, on a dry run, the
/// plan as lines.
fn act_on_host(opts: &RunOptions, mut p: Prepared, observer: &mut dyn Observer) -> HostReport {
    let host = p.report.host.clone();
    observer.event(&host, Event::Host { host: host.clone(), backend: p.report.backend.clone() });
    if let Some(error) = &p.report.error {
        observer.event(&host, Event::HostFailed { host: host.clone(), error: error.clone() });
    }
    let (Some(backend), Some(snap), Some(plan)) = (p.backend.as_mut(), p.snapshot.as_ref(), p.report.plan.as_ref())
    else {
        return p.report;
    };
    if opts.dry_run {
        dry_run(opts, plan, &mut |e| observer.event(&host, e));
        p.report.users = planned_outcomes(plan);
        return p.report;
    }
    let exec_opts = ExecOptions {
        timeout: opts.timeout,
        grace: opts.kill_after,
        include_services: opts.plan.include_services,
        disconnect: opts.plan.disconnect,
        ..ExecOptions::default()
    };
    let exec = execute(backend.as_mut(), snap, plan, &exec_opts, &mut |e| observer.event(&host, e));
    p.report.actions.extend(exec.actions);
    p.report.verification = Some(exec.verification);
    p.report.users = exec.users;
    p.report
}

/// What a dry run says of a plan, line by line.
fn dry_run(opts: &RunOptions, p: &Plan, log: &mut dyn FnMut(Event)) {
    if let Some(w) = &opts.warning {
        log(Event::Would(Would::Warn { text: w.text.clone(), grace_ms: w.grace.as_millis() as u64 }));
    }
    for s in &p.skipped {
        log(Event::Would(Would::Skip {
            session_id: s.session_id.clone(),
            user: s.user.clone(),
            reason: s.reason.clone(),
        }));
    }
    let action = if opts.plan.disconnect { ActionKind::DisconnectSession } else { ActionKind::LogoffSession };
    for u in &p.users {
        let Some(a) = &u.account else {
            log(Event::NotLoggedOn { requested: u.requested.to_string() });
            continue;
        };
        let user = a.display_name();
        log(Event::Would(Would::User { user: user.clone(), sessions: u.sessions.len(), processes: u.pids.len() }));
        for n in &u.notes {
            log(Event::Note { user: user.clone(), note: n.clone() });
        }
        for s in &u.sessions {
            let (session_id, station) = (s.id.clone(), s.station.clone());
            log(Event::Would(Would::Act { action, session_id, station, user: user.clone() }));
        }
        if let Some(reason) = u.terminate {
            log(Event::Would(Would::Terminate { user: user.clone(), reason, processes: u.pids.len() }));
        }
    }
}

fn planned_outcomes(p: &Plan) -> Vec<UserResult> {
    p.users
        .iter()
        .map(|u| UserResult {
            requested: u.requested.to_string(),
            user: u.account.as_ref().map(|a| a.display_name()),
            outcome: if u.account.is_none() { UserOutcome::NotLoggedOn } else { UserOutcome::Planned },
        })
        .collect()
}

/// Lists the sessions of every host, for `--list`; returns the document and its exit
/// code (the worst of the hosts' errors).
pub fn list(hosts: Vec<Host>) -> (SessionList, i32) {
    let mut out = Vec::new();
    let mut code = crate::report::EXIT_OK;
    for h in hosts {
        let (backend, result) = match h.backend {
            Ok(mut b) => (b.name().to_string(), b.list_sessions()),
            Err(e) => ("-".to_string(), Err(e)),
        };
        let (sessions, error) = match result {
            Ok(s) => (s, None),
            Err(e) => {
                code = code.max(match stop_of(&e) {
                    Some(Stop::Privilege) => crate::report::EXIT_PRIVILEGE,
                    Some(_) => crate::report::EXIT_USAGE,
                    None => crate::report::EXIT_FAILED,
                });
                (Vec::new(), Some(e.to_string()))
            }
        };
        out.push(HostSessions { host: h.name, backend, error, sessions });
    }
    (SessionList { version: REPORT_VERSION, hosts: out }, code)
}
