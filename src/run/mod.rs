//! One run, one way through: the library's [`run`] takes validated [`RunOptions`] and the
//! opened hosts, and goes through the phases in order, each a function that hands the next
//! a value:
//!
//! 1. **open** every host and check privilege; with `--drain`, **drain** every host: new
//!    logons stop before anything is counted ([`prepare`], [`crate::drain`]);
//! 2. **snapshot** and **plan**, on every host, acting on none ([`prepare`]);
//! 3. **warn**: the warning and the grace period, when asked for ([`grace`]);
//! 4. **execute** every action, host by host ([`act`]);
//! 5. **verify** what was planned until it is gone ([`verify`]), then wait for the
//!    profiles to unload ([`profile`], Windows);
//!
//! A run stopped before it acts (a refused target, a cancel) restores what its own drain
//! changed; a run that acted leaves the drain in force. `--undrain` alone is [`undrain`].
//!
//! and returns a [`Report`], which owns the summary and the exit code. Events go to an
//! [`Observer`] as they happen (the binary prints them and writes the audit trail).
//!
//! Not here: flags, printing, exit (the binary), or anything that talks to the OS (the
//! backends).

pub(crate) mod act;
pub(crate) mod grace;
pub(crate) mod planned;
pub(crate) mod profile;
pub(crate) mod verify;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::backend::{Backend, NativeOptions};
use crate::drain::{DrainAction, DrainReport, DrainStep, drain_host, undrain_host};
use crate::error::{Error, ErrorKind};
use crate::event::{Event, Would};
use crate::model::Session;
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
    /// `--drain` (stop new logons first) or `--undrain` (only restore them).
    pub drain: Option<DrainStep>,
    /// How long to wait for the profiles to unload once the sessions are gone
    /// (`--wait-profile`); `None`: what is left of `timeout`.
    pub wait_profile: Option<Duration>,
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
    /// A session to count as the tool's own here while its account still holds it: a
    /// scheduled job's runner runs in none, and spares its caller's session as the
    /// scheduling run did ([`Snapshot::with_own_session`]).
    pub own_session: Option<Session>,
}

/// Opens this machine (no `servers`) or each server, with the native backend.
pub fn open_hosts(native: &NativeOptions, servers: &[String]) -> Vec<Host> {
    if servers.is_empty() {
        return vec![Host {
            name: "localhost".into(),
            backend: crate::platform::open_backend(native),
            own_session: None,
        }];
    }
    servers
        .iter()
        .map(|server| {
            let opts = NativeOptions { server: Some(server.clone()), ..native.clone() };
            Host { name: server.clone(), backend: crate::platform::open_backend(&opts), own_session: None }
        })
        .collect()
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
    own_session: Option<Session>,
}

impl Prepared {
    fn plan(&self) -> Option<&Plan> {
        self.report.plan.as_ref()
    }
}

/// How many sessions are planned, over every host.
fn planned_sessions(hosts: &[Prepared]) -> usize {
    hosts.iter().filter_map(Prepared::plan).map(|p| p.sessions().count()).sum()
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
        orphans: opts.plan.orphans,
        drain: opts.drain,
    }
}

/// Runs a logoff on `hosts`: open, drain (`--drain`), snapshot, plan, warn, execute,
/// verify. `cancel` is set by the caller's Ctrl-C/SIGTERM handler; it cancels the grace
/// period (and restores what this run's drain changed). `--undrain` runs `undrain`.
pub fn run(opts: &RunOptions, hosts: Vec<Host>, observer: &mut dyn Observer, cancel: &AtomicBool) -> Report {
    let request = request_of(opts);
    if opts.drain == Some(DrainStep::Undrain) {
        return undrain(opts, hosts, observer);
    }
    let mut prepared = match prepare(opts, hosts, observer) {
        Ok(p) => p,
        Err(s) => return Report::new(request, s.hosts, Some(s.stop), Some(s.message)),
    };
    if let Some(warning) = opts.warning.as_ref().filter(|_| !opts.dry_run) {
        if !warn(&mut prepared, warning, observer, cancel) {
            restore_own_drains(&mut prepared, "the cancel", observer);
            let hosts = prepared.into_iter().map(|p| p.report).collect();
            return Report::new(request, hosts, Some(Stop::Cancelled), None);
        }
    }
    let hosts = prepared.into_iter().map(|p| act_on_host(opts, p, observer)).collect();
    Report::new(request, hosts, None, None)
}

/// `--undrain`: on every host, open, check privilege, and restore what this tool's drain
/// changed. Nothing else is listed or done.
pub fn undrain(opts: &RunOptions, hosts: Vec<Host>, observer: &mut dyn Observer) -> Report {
    let request = request_of(opts);
    let mut reports = Vec::new();
    for host in hosts {
        let mut p = match open_host(opts, host) {
            Ok(p) => p,
            Err((stop, message)) => return Report::new(request, reports, Some(stop), Some(message)),
        };
        let name = p.report.host.clone();
        observer.event(&name, Event::Host { host: name.clone(), backend: p.report.backend.clone() });
        if let Some(error) = &p.report.error {
            observer.event(&name, Event::HostFailed { host: name.clone(), error: error.clone() });
        }
        if let Some(backend) = p.backend.as_mut() {
            match undrain_host(backend.as_mut()) {
                Ok(report) => {
                    observer.event(&name, Event::Drain { step: DrainStep::Undrain, report: report.clone() });
                    p.report.drain = Some(report);
                }
                Err(e) => {
                    let stop = stop_of(&e).unwrap_or(Stop::Privilege);
                    return Report::new(request, reports, Some(stop), Some(e.to_string()));
                }
            }
        }
        reports.push(p.report);
    }
    Report::new(request, reports, None, None)
}

/// The hosts, each machine once: a host whose backend names the same machine as one
/// before it (`--server localhost,.` on Windows, `rds1,RDS1`) is left out, and the
/// observer told. A host that could not be opened is compared by the name it was given.
fn distinct_hosts(hosts: Vec<Host>, observer: &mut dyn Observer) -> Vec<Host> {
    let machine = |h: &Host| match &h.backend {
        Ok(b) => b.host().to_lowercase(),
        Err(_) => h.name.to_lowercase(),
    };
    let mut kept: Vec<(String, Host)> = Vec::new();
    for host in hosts {
        let m = machine(&host);
        match kept.iter().find(|(k, _)| *k == m) {
            Some((_, first)) => {
                observer.event(&host.name, Event::SameMachine { host: host.name.clone(), kept: first.name.clone() });
            }
            None => kept.push((m, host)),
        }
    }
    kept.into_iter().map(|(_, h)| h).collect()
}

/// Phases 1 and 2 on every host: open and check privilege, drain (`--drain`), then
/// snapshot and plan, acting on none. Stops the run on bad input, missing privilege, or
/// any refused target, restoring what its own drain changed.
fn prepare(opts: &RunOptions, hosts: Vec<Host>, observer: &mut dyn Observer) -> Result<Vec<Prepared>, Stopped> {
    let mut prepared = Vec::new();
    for host in distinct_hosts(hosts, observer) {
        let p = open_host(opts, host).map_err(|(stop, e)| Stopped { stop, message: e, hosts: Vec::new() })?;
        prepared.push(p);
    }
    if opts.drain == Some(DrainStep::Drain) {
        drain_all(&mut prepared, opts, observer)?;
    }
    for i in 0..prepared.len() {
        if let Err((stop, message)) = plan_host(opts, &mut prepared[i]) {
            restore_own_drains(&mut prepared, "the stop", observer);
            return Err(Stopped { stop, message, hosts: Vec::new() });
        }
    }
    let refusals: Vec<String> = prepared
        .iter()
        .filter_map(|p| p.plan().map(|plan| (p, plan)))
        .flat_map(|(p, plan)| plan.refused.iter().map(|r| r.line(&p.report.host)))
        .collect();
    if refusals.is_empty() {
        return Ok(prepared);
    }
    restore_own_drains(&mut prepared, "the refusal", observer);
    let message = format!("{} target(s) refused: {}", refusals.len(), refusals.join("; "));
    Err(Stopped { stop: Stop::Usage, message, hosts: prepared.into_iter().map(|p| p.report).collect() })
}

/// `--drain` on every opened host, before anything is listed, so that nobody logs on
/// between the count and the logoff. A dry run only says what it would do. A host that
/// cannot drain for lack of privilege or support stops the run (exit 3, nothing done, and
/// the drains of the hosts before it restored); another failure is that host's, which is
/// then not acted on.
fn drain_all(prepared: &mut [Prepared], opts: &RunOptions, observer: &mut dyn Observer) -> Result<(), Stopped> {
    let request = crate::drain::request(opts.warning.as_ref().map(|w| w.text.as_str()));
    let mut stop = None;
    for p in prepared.iter_mut() {
        let Some(backend) = p.backend.as_mut() else { continue };
        let result = if opts.dry_run {
            backend.drain_status().map(|status| DrainReport::new(DrainAction::Planned, status, ""))
        } else {
            drain_host(backend.as_mut(), &request)
        };
        match result {
            Ok(report) => {
                let host = p.report.host.clone();
                observer.event(&host, Event::Drain { step: DrainStep::Drain, report: report.clone() });
                if report.action == DrainAction::Failed {
                    p.report.error = Some(format!("not acted on: {}", report.error.clone().unwrap_or_default()));
                    p.backend = None;
                }
                p.report.drain = Some(report);
            }
            Err(e) => {
                let s = stop_of(&e).unwrap_or(Stop::Privilege);
                stop = Some((s, e.to_string()));
                break;
            }
        }
    }
    match stop {
        None => Ok(()),
        Some((stop, message)) => {
            restore_own_drains(prepared, "the stop", observer);
            Err(Stopped { stop, message, hosts: Vec::new() })
        }
    }
}

/// Undoes the drains this run put in force (and only those), when it stops before acting.
fn restore_own_drains(prepared: &mut [Prepared], why: &str, observer: &mut dyn Observer) {
    for p in prepared.iter_mut() {
        let ours = p.report.drain.as_ref().is_some_and(|d| d.action == DrainAction::Drained);
        let Some(backend) = p.backend.as_mut().filter(|_| ours) else { continue };
        let report = match undrain_host(backend.as_mut()) {
            Ok(mut r) => {
                r.detail = format!("after {why}, this run's drain is undone: {}", r.detail);
                r
            }
            Err(e) => DrainReport::failed(&e),
        };
        let host = p.report.host.clone();
        observer.event(&host, Event::Drain { step: DrainStep::Undrain, report: report.clone() });
        p.report.drain = Some(report);
    }
}

/// Opens one host and checks privilege (not for a dry run).
fn open_host(opts: &RunOptions, host: Host) -> Result<Prepared, (Stop, String)> {
    let mut report = HostReport::new(&host.name);
    let own_session = host.own_session;
    let fatal = |e: &Error| stop_of(e).map(|s| (s, e.to_string()));
    let mut backend = match host.backend {
        Ok(b) => b,
        Err(e) => {
            if let Some(stop) = fatal(&e) {
                return Err(stop);
            }
            report.error = Some(e.to_string());
            return Ok(Prepared { backend: None, snapshot: None, report, own_session });
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
            return Ok(Prepared { backend: None, snapshot: None, report, own_session });
        }
    }
    Ok(Prepared { backend: Some(backend), snapshot: None, report, own_session })
}

/// Snapshots and plans one opened host.
fn plan_host(opts: &RunOptions, p: &mut Prepared) -> Result<(), (Stop, String)> {
    let Some(backend) = p.backend.as_mut() else { return Ok(()) };
    match Snapshot::take(backend.as_mut()) {
        Ok(snap) => {
            let snap = snap.with_own_session(p.own_session.as_ref());
            p.report.plan = Some(plan(&opts.targets, &opts.exclude, &snap, opts.plan));
            p.snapshot = Some(snap);
            Ok(())
        }
        Err(e) => match stop_of(&e) {
            Some(stop) => Err((stop, e.to_string())),
            None => {
                p.report.error = Some(e.to_string());
                Ok(())
            }
        },
    }
}

/// Phase 3: warns every host's planned sessions and waits out the grace period, with
/// reminders. Returns `false` when cancelled.
fn warn(hosts: &mut [Prepared], warning: &Warning, observer: &mut dyn Observer, cancel: &AtomicBool) -> bool {
    let sessions = planned_sessions(hosts);
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
        wait_profile: opts.wait_profile,
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
    for s in &p.spared {
        log(Event::Spared { user: s.user.clone(), reason: s.reason.clone() });
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
            profile_unloaded: None,
        })
        .collect()
}

/// Lists the sessions of every host, for `--list`; returns the document and its exit
/// code (the worst of the hosts' errors).
pub fn list(hosts: Vec<Host>) -> (SessionList, i32) {
    let mut out = Vec::new();
    let mut code = crate::report::EXIT_OK;
    for h in hosts {
        let (backend, result, drain) = match h.backend {
            Ok(mut b) => {
                let sessions = b.list_sessions();
                let drain = b.drain_status();
                (b.name().to_string(), sessions, Some(drain))
            }
            Err(e) => ("-".to_string(), Err(e), None),
        };
        let exit_of = |e: &Error| match stop_of(e) {
            Some(Stop::Privilege) => crate::report::EXIT_PRIVILEGE,
            Some(_) => crate::report::EXIT_USAGE,
            None => crate::report::EXIT_FAILED,
        };
        let (sessions, mut error) = match result {
            Ok(s) => (s, None),
            Err(e) => {
                code = code.max(exit_of(&e));
                (Vec::new(), Some(e.to_string()))
            }
        };
        // A backend without a drain (a remote server) says nothing about it; one that
        // cannot read its drain state fails the listing of that host.
        let drain = match drain {
            Some(Ok(status)) => Some(status),
            Some(Err(e)) if e.kind != ErrorKind::Unsupported && error.is_none() => {
                code = code.max(exit_of(&e));
                error = Some(e.to_string());
                None
            }
            _ => None,
        };
        out.push(HostSessions { host: h.name, backend, error, drain, sessions });
    }
    (SessionList { version: REPORT_VERSION, hosts: out }, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::{Fake, FakeState};
    use crate::model::{Session, SessionState};
    use crate::userlist::parse_targets;

    #[derive(Default)]
    struct Seen(Vec<(String, Event)>);

    impl Observer for Seen {
        fn event(&mut self, host: &str, event: Event) {
            self.0.push((host.to_string(), event));
        }
    }

    /// A fake machine that calls itself `machine`, with bob logged on; opened under `name`.
    fn host(name: &str, machine: Option<&str>) -> Host {
        let bob = Session { uid: Some(1001), ..Session::new("2", "bob", SessionState::Active) };
        let state = FakeState { host: machine.map(str::to_string), sessions: vec![bob], ..FakeState::default() };
        Host { name: name.into(), backend: Ok(Box::new(Fake::in_memory(state))), own_session: None }
    }

    fn unreachable(name: &str) -> Host {
        Host {
            name: name.into(),
            backend: Err(Error::new(ErrorKind::Unreachable, "open server", "down")),
            own_session: None,
        }
    }

    /// `--server localhost,.,rds1,RDS1,rds2,RDS2`: each machine is acted on once, under the
    /// first name it was given; the others are said to be left out.
    #[test]
    fn a_machine_named_twice_is_acted_on_once() {
        let opts = RunOptions {
            targets: parse_targets(&["bob".to_string()]).unwrap(),
            exclude: vec![],
            plan: PlanOptions::default(),
            dry_run: false,
            timeout: Duration::from_secs(2),
            kill_after: Duration::ZERO,
            warning: None,
            drain: None,
            wait_profile: None,
        };
        let hosts = vec![
            host("localhost", None),
            host(".", None),
            host("rds1", Some("rds1")),
            host("RDS1", Some("rds1")),
            unreachable("rds2"),
            unreachable("RDS2"),
        ];
        let mut seen = Seen::default();
        let report = run(&opts, hosts, &mut seen, &AtomicBool::new(false));
        let names: Vec<&str> = report.hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(names, ["localhost", "rds1", "rds2"]);
        let acted: Vec<&str> = seen
            .0
            .iter()
            .filter(|(_, e)| matches!(e, Event::Action(a) if a.action == ActionKind::LogoffSession))
            .map(|(h, _)| h.as_str())
            .collect();
        assert_eq!(acted, ["localhost", "rds1"]);
        let left_out: Vec<(&str, &str)> = seen
            .0
            .iter()
            .filter_map(|(_, e)| match e {
                Event::SameMachine { host, kept } => Some((host.as_str(), kept.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(left_out, [(".", "localhost"), ("RDS1", "rds1"), ("RDS2", "rds2")]);
    }
}
