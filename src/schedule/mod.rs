//! Scheduled logoffs that outlive the caller: `--detach`, `--pending`, `--cancel`, and the
//! runner that a detached job's platform mechanism starts (`--run-job`).
//!
//! # One job, one file, one lock
//!
//! A job is one JSON file in a root-only directory ([`JobDir`], `store.rs`), and that file
//! is the single source of truth. Every change of its state is made holding the
//! directory's exclusive lock, after reading the file again, and written atomically:
//!
//! ```text
//! pending ──start (its runner, at the due time)──> running ──> done | failed
//!    │ └──cancel (--cancel)──> cancelled
//!    └──abandon (its runner could not start, was stopped, or the machine restarted)──> failed
//! ```
//!
//! Only the runner's `start` leads to a logoff, and it happens only from `pending`; a
//! cancel happens only from `pending` too. Whichever takes the lock first wins: a cancel
//! that arrives in the job's last second either finds `pending` (and the job, when it takes
//! the lock next, finds `cancelled` and logs no one off) or finds `running` and says it is
//! too late ([`EXIT_TOO_LATE`]). `tests`' race test checks it thousands of times.
//!
//! # What a job does
//!
//! The scheduling run ([`detach`]) plans as a run does (bad input: exit 2, nothing
//! scheduled), writes the job, starts its runner (`crate::platform`'s jobs module: a
//! transient systemd service, a daemon, a Windows service), sends the warning, and returns.
//! The runner ([`run_job`]) waits for the due time, sending the reminders to whoever is
//! planned then, and at the due time calls the library's [`crate::run`] with the job's
//! options (the warning already sent): it re-reads the machine, so a user who left counts
//! as done. Overlapping jobs log off one after the other (the run lock), each acting on
//! what the other left. The outcome goes to the audit trail and into the job's file, which
//! `--pending` shows for [`KEEP_RESULTS`].

pub mod job;
mod store;

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use job::{CallerSession, JOB_VERSION, Job, JobAudit, JobHosts, JobId, JobSpec, JobState};
pub use store::{JobDir, Refused};

use crate::audit::Severity;
use crate::audit_trail::AuditTrail;
use crate::drain::{DrainReport, DrainStep};
use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::platform::jobs as os;
use crate::report::{HostReport, Report, tool_version};
use crate::run::grace::{first_warning, reminder, reminder_points};
use crate::run::planned::plan_hosts;
use crate::run::{Host, Observer, RunOptions};
use crate::words::string_enum;

/// The version of the JSON documents of `--detach`, `--pending` and `--cancel`.
pub const DOC_VERSION: u32 = 1;

/// `--cancel`: a job had already started logging off (or finished): too late.
pub const EXIT_TOO_LATE: i32 = 5;
/// `--cancel ID`: there is no job with that id.
pub const EXIT_UNKNOWN_JOB: i32 = 6;

/// How long the files of finished jobs stay for `--pending` to show.
pub const KEEP_RESULTS: Duration = Duration::from_secs(24 * 3600);

/// How often a waiting runner looks at its job's file, to notice a cancel.
const POLL: Duration = Duration::from_millis(250);

string_enum! {
    /// What starts a job's runner.
    #[derive(Default)]
    pub enum Via {
        /// The platform's choice: systemd where it runs, else a daemon (Linux); a service (Windows).
        #[default]
        Auto => "auto",
        /// A transient systemd service (Linux).
        Systemd => "systemd",
        /// A daemon out of the caller's session (Unix).
        Daemon => "daemon",
        /// A service of the same program (Windows).
        Service => "service",
    }
}

/// What the platform starts to run a job: this program with these arguments.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The job.
    pub id: &'a JobId,
    /// This program.
    pub exe: PathBuf,
    /// Its arguments (without the program itself).
    pub args: Vec<OsString>,
    /// What to start it as.
    pub via: Via,
}

/// The default directory of job files: `/run/logoff-users/jobs` on Linux,
/// `%ProgramData%\logoff-users\jobs` on Windows.
pub fn default_dir() -> PathBuf {
    os::default_dir()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

fn secs(ms: u64) -> i64 {
    (ms / 1000) as i64
}

/// Opens the hosts a job acts on: its fake machine, this machine, or each server; each
/// with the caller's session as its own ([`Host::own_session`]).
pub fn open_hosts(spec: &JobSpec) -> Vec<Host> {
    open_job_hosts(&spec.hosts, &spec.caller_sessions)
}

fn open_job_hosts(h: &JobHosts, callers: &[CallerSession]) -> Vec<Host> {
    let hosts = if let Some(path) = &h.fake_state {
        // Only a test build opens a fake machine; a release build refuses the job's host.
        let refused = || Host {
            name: "localhost".into(),
            backend: Err(Error::new(ErrorKind::Unsupported, "open a fake machine", "this build has no fake machine")),
            own_session: None,
        };
        vec![crate::doors::job_fake_host(path).unwrap_or_else(refused)]
    } else {
        crate::run::open_hosts(&h.native(), &h.servers)
    };
    hosts
        .into_iter()
        .map(|host| Host {
            own_session: callers.iter().find(|c| c.host == host.name).map(CallerSession::session),
            ..host
        })
        .collect()
}

// ---- the JSON documents ------------------------------------------------------------------

/// Whom a job targets, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobTargets {
    /// ALL.
    pub all: bool,
    /// The names, when not ALL.
    pub users: Vec<String>,
    /// The names left alone.
    pub exclude: Vec<String>,
    /// `--disconnected-only`.
    pub disconnected_only: bool,
    /// `--idle-over`, in seconds.
    pub idle_over_s: Option<u64>,
    /// `--disconnect` instead of a logoff.
    pub disconnect: bool,
    /// `--orphans`: also the accounts with processes but no live session.
    pub orphans: bool,
}

/// A job as `--detach`, `--pending` and `--cancel` show it. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    /// The id.
    pub id: String,
    /// pending, running, done, failed or cancelled.
    pub state: JobState,
    /// Who scheduled it.
    pub scheduled_by: String,
    /// When.
    pub scheduled_at: i64,
    /// When it logs off.
    pub due: i64,
    /// Whom it targets.
    pub targets: JobTargets,
    /// The warning's text.
    pub message: Option<String>,
    /// The grace period, in milliseconds.
    pub grace_ms: u64,
    /// What runs it.
    pub mechanism: Option<String>,
    /// When it started logging off.
    pub started_at: Option<i64>,
    /// When it finished, failed or was cancelled.
    pub finished_at: Option<i64>,
    /// The run's exit code, once done or failed.
    pub exit_code: Option<i32>,
    /// Why it failed, when it could not run.
    pub error: Option<String>,
    /// Who cancelled it.
    pub cancelled_by: Option<String>,
    /// The run's summary (as in the report's JSON document), once it ran.
    pub summary: Option<serde_json::Value>,
    /// The scheduling run drained the host (`--drain`); a cancel undoes that drain.
    pub drained: bool,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> JobView {
        JobView {
            id: j.id.to_string(),
            state: j.state,
            scheduled_by: j.scheduled_by.clone(),
            scheduled_at: secs(j.scheduled_at_ms),
            due: secs(j.due_ms),
            targets: JobTargets {
                all: j.spec.all,
                users: j.spec.user_names(),
                exclude: j.spec.exclude_names(),
                disconnected_only: j.spec.disconnected_only,
                idle_over_s: j.spec.idle_over_s,
                disconnect: j.spec.disconnect,
                orphans: j.spec.orphans,
            },
            message: j.spec.message.clone(),
            grace_ms: j.spec.grace_ms,
            mechanism: j.mechanism.clone(),
            started_at: j.started_at_ms.map(secs),
            finished_at: j.finished_at_ms.map(secs),
            exit_code: j.exit_code,
            error: j.error.clone(),
            cancelled_by: j.cancelled_by.clone(),
            summary: j.summary.clone(),
            drained: j.spec.drained,
        }
    }
}

/// The JSON document of `--detach`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleDoc {
    /// [`DOC_VERSION`].
    pub version: u32,
    /// `logoff-users x.y.z`.
    pub tool: String,
    /// The job scheduled; `None` when nothing was.
    pub job: Option<JobView>,
    /// Why nothing was scheduled.
    pub error: Option<String>,
    /// Each host's plan and the warning's `send_message` actions.
    pub hosts: Vec<HostReport>,
    /// 0 when the job was scheduled.
    pub exit_code: i32,
}

/// The JSON document of `--pending`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingDoc {
    /// [`DOC_VERSION`].
    pub version: u32,
    /// `logoff-users x.y.z`.
    pub tool: String,
    /// The job directory.
    pub dir: String,
    /// Pending and running jobs, and those finished in the last [`KEEP_RESULTS`], by due time.
    pub jobs: Vec<JobView>,
    /// Files of the directory that were not trusted, and why.
    pub refused: Vec<Refused>,
    /// Why the directory could not be read.
    pub error: Option<String>,
    /// 0, or 1 when a file was refused or the directory could not be read (3 without the
    /// privilege to read it).
    pub exit_code: i32,
}

/// The JSON document of `--cancel`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CancelDoc {
    /// [`DOC_VERSION`].
    pub version: u32,
    /// `logoff-users x.y.z`.
    pub tool: String,
    /// What was asked: a job id, or `all`.
    pub request: String,
    /// The jobs this cancelled (or found cancelled already): no one is logged off by them.
    pub cancelled: Vec<JobView>,
    /// The jobs that had already started logging off, or finished: not cancelled.
    pub too_late: Vec<JobView>,
    /// The id asked for, when there is no such job.
    pub unknown: Option<String>,
    /// Files of the directory that were not trusted, and why.
    pub refused: Vec<Refused>,
    /// The "logoff cancelled" message (`--message`), per host: plans and `send_message` actions.
    pub messages: Vec<HostReport>,
    /// Why the directory could not be used.
    pub error: Option<String>,
    /// 0 (cancelled, or nothing pending), 5 (too late), 6 (unknown id), 1 (a file refused,
    /// the directory unusable), 3 (no privilege).
    pub exit_code: i32,
}

/// One line of a job's life, for the text output and the runner's log (rendered by
/// `crate::text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// `--detach`: the job is scheduled.
    Scheduled { id: String, targets: String, due_ms: u64, now_ms: u64, mechanism: String },
    /// The runner waits.
    Waiting { id: String, due_ms: u64, mechanism: Option<String> },
    /// A reminder goes out with this much left.
    Reminder { id: String, left_ms: u64 },
    /// The runner found its job cancelled, or otherwise no longer pending.
    NotPending { id: String, state: JobState, by: Option<String> },
    /// The runner logs off now.
    Starting { id: String },
    /// The job is over.
    Finished { id: String, state: JobState, exit_code: i32 },
    /// The job will never run, and why.
    Abandoned { id: String, why: String },
    /// `--cancel`: cancelled.
    Cancelled { id: String, targets: String, due_ms: u64, already: bool },
    /// `--cancel`: too late.
    TooLate { id: String, state: JobState, started_ms: Option<u64> },
    /// `--cancel ID`: no such job.
    Unknown { id: String, dir: String },
    /// `--cancel all`: nothing was pending.
    NothingPending,
    /// A file of the directory that was not trusted.
    Refused { file: String, reason: String },
}

// ---- output and audit --------------------------------------------------------------------

/// Where lines go, and the audit trail: the run's observer for the library's phases.
struct Lines<'a> {
    audit: &'a mut AuditTrail,
    out: &'a mut dyn FnMut(&str),
}

impl Lines<'_> {
    fn job(&mut self, e: JobEvent) {
        (self.out)(&e.to_string());
    }

    fn audit_job(&mut self, severity: Severity, fields: &[(&str, String)]) {
        self.audit.job(severity, fields);
    }
}

impl Observer for Lines<'_> {
    fn event(&mut self, host: &str, event: Event) {
        self.audit.event(host, &event);
        (self.out)(&event.to_string());
    }
}

/// Undoes the drain a cancelled job made when it was scheduled (`--drain --detach`): only
/// that drain, and only while it is still the one in force (see `crate::drain`). Returns
/// whether new logons stay refused on a host (the undrain failed, or a drain that is not
/// the job's is in force), which makes the cancel exit 1, as `--undrain` would.
fn undo_job_drain(spec: &JobSpec, lines: &mut Lines) -> bool {
    let mut still_refused = false;
    for mut host in open_hosts(spec) {
        let mut report = match host.backend.as_mut() {
            Ok(backend) => crate::drain::undrain_host(backend.as_mut()).unwrap_or_else(|e| DrainReport::failed(&e)),
            Err(e) => DrainReport::failed(e),
        };
        still_refused |= report.error.is_some() || report.status.draining;
        report.detail = format!("the job is cancelled, so its drain is undone: {}", report.detail);
        lines.event(&host.name, Event::Drain { step: DrainStep::Undrain, report });
    }
    still_refused
}

fn dir_error(doc_error: &mut Option<String>, e: &Error) -> i32 {
    *doc_error = Some(e.to_string());
    if e.kind == ErrorKind::PermissionDenied || e.kind == ErrorKind::Unsupported { 3 } else { 1 }
}

// ---- --detach ------------------------------------------------------------------------------

/// What `--detach` asks for.
pub struct DetachRequest<'a> {
    /// The run's options, validated, with the warning and its grace period.
    pub opts: &'a RunOptions,
    /// The hosts.
    pub hosts: JobHosts,
    /// The job's audit trail.
    pub audit: JobAudit,
    /// The job directory.
    pub dir: PathBuf,
    /// What to start the runner as.
    pub via: Via,
    /// This program, which the platform starts as the runner.
    pub exe: PathBuf,
    /// The runner's arguments, for a job id.
    pub runner_args: &'a dyn Fn(&JobId) -> Vec<OsString>,
}

/// The end of `--detach`.
pub enum Detached {
    /// Stopped while planning, as a run stops (bad input: exit 2; no privilege: exit 3):
    /// the run's report; nothing was scheduled.
    Stopped(Box<Report>),
    /// Scheduled (exit 0), or could not be (exit 1 or 3, the warning not sent).
    Done(Box<ScheduleDoc>),
}

impl ScheduleDoc {
    /// Nothing scheduled yet, exit 0.
    fn empty() -> Self {
        Self { version: DOC_VERSION, tool: tool_version(), job: None, error: None, hosts: Vec::new(), exit_code: 0 }
    }
}

/// `--detach`: plans as a run does, writes the job, starts its runner, sends the warning.
/// Text lines go to `out`; actions and the scheduling itself to `audit`.
pub fn detach(req: &DetachRequest, audit: &mut AuditTrail, out: &mut dyn FnMut(&str)) -> Detached {
    let mut lines = Lines { audit, out };
    // `--drain` stops new logons now, before the warning: the whole grace period is covered.
    let planned = match plan_hosts(req.opts, open_job_hosts(&req.hosts, &[]), &mut lines) {
        Ok(p) => p,
        Err(report) => return Detached::Stopped(report),
    };
    let mut spec = JobSpec::new(req.opts, req.hosts.clone(), req.audit.clone());
    spec.caller_sessions = planned.own_sessions().iter().map(|(h, s)| CallerSession::of(h, s)).collect();
    spec.drained = planned.drained();
    let mut doc = ScheduleDoc::empty();
    // A job that could not be scheduled leaves no drain of its own behind.
    let stop = |doc: &mut ScheduleDoc, e: &Error, mut planned: crate::run::planned::Planned, lines: &mut Lines| {
        planned.undo_drains("the failed scheduling", lines);
        doc.exit_code = dir_error(&mut doc.error, e);
        doc.hosts = planned.into_report().hosts;
    };
    let by = lines.audit.invoker().to_string();
    let (dir, job) = match create_job(&req.dir, spec, by) {
        Ok(created) => created,
        Err(e) => {
            stop(&mut doc, &e, planned, &mut lines);
            return Detached::Done(Box::new(doc));
        }
    };
    let launch = Launch { id: &job.id, exe: req.exe.clone(), args: (req.runner_args)(&job.id), via: req.via };
    let launched = os::launch(&launch);
    let job = match record_launch(&dir, &job, &launched) {
        Ok(j) => j,
        Err(why) => {
            // The job is scheduled and its runner started (or not: said below); only
            // `--pending` will not name what runs it.
            (lines.out)(&crate::text::warning_line(&format!("job {}: what runs it is not recorded", job.id), &why));
            job
        }
    };
    let targets = job.spec.targets_text();
    let mechanism = match launched {
        Ok(m) => m,
        Err(e) => {
            lines.audit_job(
                Severity::Warning,
                &[
                    ("action", "schedule_job".into()),
                    ("job", job.id.to_string()),
                    ("targets", targets),
                    ("result", "failed".into()),
                    ("error", e.to_string()),
                ],
            );
            doc.job = Some(JobView::from(&job));
            stop(&mut doc, &e, planned, &mut lines);
            return Detached::Done(Box::new(doc));
        }
    };
    lines.audit_job(
        Severity::Notice,
        &[
            ("action", "schedule_job".into()),
            ("job", job.id.to_string()),
            ("targets", targets.clone()),
            ("due", secs(job.due_ms).to_string()),
            ("mechanism", mechanism.clone()),
        ],
    );
    let report = match &req.opts.warning {
        Some(w) => planned.notify(&first_warning(&w.text, w.grace), &mut lines),
        None => planned.into_report(),
    };
    lines.job(JobEvent::Scheduled { id: job.id.to_string(), targets, due_ms: job.due_ms, now_ms: now_ms(), mechanism });
    doc.job = Some(JobView::from(&job));
    doc.hosts = report.hosts;
    Detached::Done(Box::new(doc))
}

/// Opens (creating) the job directory and writes a new pending job for `spec` into it.
fn create_job(dir: &Path, spec: JobSpec, by: String) -> Result<(JobDir, Job), Error> {
    let d = JobDir::open(dir, true)?
        .ok_or_else(|| Error::new(ErrorKind::Os, format!("create {}", dir.display()), "it vanished at once"))?;
    let locked = d.lock()?;
    let now = now_ms();
    let _ = locked.prune(now.saturating_sub(KEEP_RESULTS.as_millis() as u64));
    let job = Job::new(locked.new_id(), spec, by, now, os::boot_id());
    locked.write(&job)?;
    drop(locked);
    Ok((d, job))
}

/// Records what runs the job (or abandons it, when nothing could be started) in its
/// file, under the lock: the runner may have written it meanwhile. The job as written,
/// or why it could not be (the file is then left as the runner wrote it).
fn record_launch(dir: &JobDir, job: &Job, launched: &Result<String, Error>) -> Result<Job, String> {
    let locked = dir.lock().map_err(|e| e.to_string())?;
    let mut now = match locked.read(&job.id) {
        Ok(Some(j)) => j,
        Ok(None) => return Err("the job file is gone".into()),
        Err(r) => return Err(format!("job file {}: {}", r.file, r.reason)),
    };
    match launched {
        Ok(m) => now.mechanism = Some(m.clone()),
        Err(e) => {
            let _ = now.abandon(&format!("its runner could not be started: {e}"), now_ms());
        }
    }
    locked.write(&now).map_err(|e| e.to_string())?;
    Ok(now)
}

// ---- --pending -----------------------------------------------------------------------------

/// `--pending`: the jobs of `dir`, pending first by due time, then the finished ones.
/// A job that nothing can run any more (from an earlier boot, or its runner gone) is
/// marked failed on the way.
pub fn pending(dir: &Path) -> PendingDoc {
    let mut doc = PendingDoc {
        version: DOC_VERSION,
        tool: tool_version(),
        dir: dir.display().to_string(),
        jobs: Vec::new(),
        refused: Vec::new(),
        error: None,
        exit_code: 0,
    };
    let listed = (|| {
        let Some(d) = JobDir::open(dir, false)? else { return Ok((Vec::new(), Vec::new())) };
        let locked = d.lock()?;
        let (mut jobs, refused) = locked.list()?;
        locked.prune_listed(&mut jobs, now_ms().saturating_sub(KEEP_RESULTS.as_millis() as u64));
        mark_lost(&locked, &mut jobs);
        Ok::<_, Error>((jobs, refused))
    })();
    match listed {
        Ok((mut jobs, refused)) => {
            jobs.sort_by_key(|j| (j.state.is_finished(), j.due_ms, j.id.clone()));
            doc.jobs = jobs.iter().map(JobView::from).collect();
            doc.exit_code = i32::from(!refused.is_empty());
            doc.refused = refused;
        }
        Err(e) => doc.exit_code = dir_error(&mut doc.error, &e),
    }
    doc
}

/// Marks failed the jobs nothing can run any more: pending jobs from an earlier boot of the
/// machine, and pending or running jobs whose runner process is gone (killed with the
/// caller's cgroup, say). A runner that is merely slow is never taken for gone: only a pid
/// that no process has any more counts.
fn mark_lost(locked: &store::Locked, jobs: &mut [Job]) {
    let boot = os::boot_id();
    let now = now_ms();
    for j in jobs.iter_mut() {
        let gone = j.runner_pid.filter(|pid| !j.from_another_boot(boot.as_deref()) && os::process_gone(*pid));
        let changed = match (j.state, gone) {
            (JobState::Pending, _) if j.from_another_boot(boot.as_deref()) => {
                j.abandon("the machine restarted before its due time: no one was logged off", now).is_ok()
            }
            (JobState::Pending, Some(pid)) => j
                .abandon(
                    &format!("its runner (pid {pid}) is gone, killed before the due time: no one was logged off"),
                    now,
                )
                .is_ok(),
            (JobState::Running, Some(pid)) => j
                .runner_died(
                    &format!("its runner (pid {pid}) died while logging off: the audit trail says who was"),
                    now,
                )
                .is_ok(),
            _ => false,
        };
        if changed {
            let _ = locked.write(j);
        }
    }
}

// ---- --cancel ------------------------------------------------------------------------------

/// What `--cancel` cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelTarget {
    /// Every pending job.
    All,
    /// This job.
    Id(JobId),
}

impl CancelTarget {
    /// Parses `--cancel`'s value: `all` (any case) or a job id.
    ///
    /// # Errors
    ///
    /// A message for anything else.
    pub fn parse(text: &str) -> Result<CancelTarget, String> {
        if text.trim().eq_ignore_ascii_case("all") {
            return Ok(CancelTarget::All);
        }
        JobId::parse(text).map(CancelTarget::Id).map_err(|e| format!("--cancel: {e}, or all"))
    }
}

/// What `--cancel` found, sorted under the lock.
#[derive(Default)]
struct Sorted {
    /// Cancelled now (`false`), or cancelled already (`true`).
    cancelled: Vec<(Job, bool)>,
    /// Started (or finished) before the cancel: too late.
    too_late: Vec<Job>,
    /// Failed before they started: nothing to cancel.
    not_pending: Vec<Job>,
}

/// `--cancel`: cancels the job (or every pending job) before it logs anyone off, then,
/// with `message`, tells each cancelled job's users. Text lines go to `out`.
pub fn cancel(
    dir: &Path,
    target: &CancelTarget,
    message: Option<&str>,
    audit: &mut AuditTrail,
    out: &mut dyn FnMut(&str),
) -> CancelDoc {
    let mut doc = CancelDoc {
        version: DOC_VERSION,
        tool: tool_version(),
        request: match target {
            CancelTarget::All => "all".into(),
            CancelTarget::Id(id) => id.to_string(),
        },
        cancelled: Vec::new(),
        too_late: Vec::new(),
        unknown: None,
        refused: Vec::new(),
        messages: Vec::new(),
        error: None,
        exit_code: 0,
    };
    let mut lines = Lines { audit, out };
    let by = lines.audit.invoker().to_string();
    let mut sorted = Sorted::default();
    if let Err(e) = cancel_under_lock(dir, target, &by, &mut doc, &mut sorted) {
        doc.exit_code = dir_error(&mut doc.error, &e);
    }
    report_not_cancelled(dir, &doc, &sorted, &mut lines);
    let mut logons_refused = false;
    for (j, already) in &sorted.cancelled {
        logons_refused |= after_cancel(j, *already, message, &mut doc, &mut lines);
    }
    if doc.error.is_none()
        && sorted.cancelled.is_empty()
        && sorted.too_late.is_empty()
        && sorted.not_pending.is_empty()
        && doc.unknown.is_none()
        && doc.refused.is_empty()
    {
        lines.job(JobEvent::NothingPending);
    }
    doc.cancelled = sorted.cancelled.iter().map(|(j, _)| JobView::from(j)).collect();
    doc.too_late = sorted.too_late.iter().map(JobView::from).collect();
    if doc.error.is_none() {
        doc.exit_code = if !doc.too_late.is_empty() {
            EXIT_TOO_LATE
        } else if doc.unknown.is_some() {
            EXIT_UNKNOWN_JOB
        } else {
            i32::from(!doc.refused.is_empty() || logons_refused)
        };
    }
    doc
}

/// Under the job directory's lock: reads the jobs `target` names and cancels those still
/// pending, sorting every one into `sorted` (unknown and refused files into `doc`).
fn cancel_under_lock(
    dir: &Path,
    target: &CancelTarget,
    by: &str,
    doc: &mut CancelDoc,
    sorted: &mut Sorted,
) -> Result<(), Error> {
    let Some(d) = JobDir::open(dir, false)? else {
        if let CancelTarget::Id(id) = target {
            doc.unknown = Some(id.to_string());
        }
        return Ok(());
    };
    let locked = d.lock()?;
    let mut jobs = match target {
        CancelTarget::All => {
            let (jobs, refused) = locked.list()?;
            doc.refused = refused;
            jobs
        }
        CancelTarget::Id(id) => match locked.read(id) {
            Ok(Some(j)) => vec![j],
            Ok(None) => {
                doc.unknown = Some(id.to_string());
                Vec::new()
            }
            Err(r) => {
                doc.refused.push(r);
                Vec::new()
            }
        },
    };
    mark_lost(&locked, &mut jobs);
    for mut j in jobs {
        match j.cancel(by, now_ms()) {
            Ok(true) => {
                locked.write(&j)?;
                sorted.cancelled.push((j, false));
            }
            // Cancelled already: nothing to do, and nothing pending.
            Ok(false) if *target != CancelTarget::All => sorted.cancelled.push((j, true)),
            Ok(false) => {}
            // `all` leaves history alone; a job that is running is too late for it too.
            Err(_) if *target == CancelTarget::All && j.state != JobState::Running => {}
            // Failed before it started (never ran): nothing to cancel, no one logged off.
            Err(_) if j.state == JobState::Failed && j.started_at_ms.is_none() => sorted.not_pending.push(j),
            Err(_) => sorted.too_late.push(j),
        }
    }
    Ok(())
}

/// The lines and audit records of what `--cancel` could not cancel: refused files, jobs
/// that never ran, jobs too late to cancel, an unknown id.
fn report_not_cancelled(dir: &Path, doc: &CancelDoc, sorted: &Sorted, lines: &mut Lines) {
    for r in &doc.refused {
        lines.job(JobEvent::Refused { file: r.file.clone(), reason: r.reason.clone() });
        lines.audit_job(
            Severity::Warning,
            &[("action", "job_refused".into()), ("file", r.file.clone()), ("reason", r.reason.clone())],
        );
    }
    for j in &sorted.not_pending {
        lines.job(JobEvent::NotPending { id: j.id.to_string(), state: j.state, by: None });
    }
    for j in &sorted.too_late {
        lines.job(JobEvent::TooLate { id: j.id.to_string(), state: j.state, started_ms: j.started_at_ms });
        lines.audit_job(
            Severity::Warning,
            &[
                ("action", "cancel_job".into()),
                ("job", j.id.to_string()),
                ("targets", j.spec.targets_text()),
                ("result", "too_late".into()),
                ("state", j.state.to_string()),
            ],
        );
    }
    if let Some(id) = &doc.unknown {
        lines.job(JobEvent::Unknown { id: id.clone(), dir: dir.display().to_string() });
        lines.audit_job(
            Severity::Warning,
            &[("action", "cancel_job".into()), ("job", id.clone()), ("result", "unknown".into())],
        );
    }
}

/// After job `j` is cancelled (`already`: by an earlier `--cancel`, nothing left to do):
/// its line and audit record, its runner withdrawn, its drain undone, its users told
/// `message`. Returns whether new logons stay refused (see [`undo_job_drain`]).
fn after_cancel(j: &Job, already: bool, message: Option<&str>, doc: &mut CancelDoc, lines: &mut Lines) -> bool {
    lines.job(JobEvent::Cancelled { id: j.id.to_string(), targets: j.spec.targets_text(), due_ms: j.due_ms, already });
    if already {
        return false;
    }
    lines.audit_job(
        Severity::Notice,
        &[
            ("action", "cancel_job".into()),
            ("job", j.id.to_string()),
            ("targets", j.spec.targets_text()),
            ("result", "cancelled".into()),
            ("scheduled_by", j.scheduled_by.clone()),
        ],
    );
    os::withdraw(j.id.as_str());
    let logons_refused = j.spec.drained && undo_job_drain(&j.spec, lines);
    if let (Some(text), Ok(mut opts)) = (message, j.spec.run_options()) {
        opts.warning = None;
        match plan_hosts(&opts, open_hosts(&j.spec), lines) {
            Ok(planned) => doc.messages.extend(planned.notify(text, lines).hosts),
            Err(report) => doc.messages.extend(report.hosts),
        }
    }
    logons_refused
}

// ---- the runner ----------------------------------------------------------------------------

/// The runner's lines: its log file next to the job, and standard output (the journal
/// under systemd).
struct RunnerOut {
    log: Option<File>,
}

impl RunnerOut {
    fn line(&mut self, line: &str) {
        let stamped = format!("{} {line}", crate::text::format_time_secs(secs(now_ms())));
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{stamped}");
        }
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

/// `--run-job ID`: what the platform's mechanism runs. Waits for the job's due time with
/// its reminders, then, if it is still pending, logs off as a run of its options would.
/// `stop` is set when the runner is asked to stop (SIGTERM, a service stop): a job not
/// started yet is then abandoned. Returns the exit code: the run's, 0 for a job cancelled
/// meanwhile, 6 for an unknown job, 1 when it cannot run.
pub fn run_job(dir: &Path, id: &JobId, stop: &AtomicBool) -> i32 {
    let code = run_job_in(dir, id, stop);
    // Whatever came of it, what started this runner is not needed any more (Windows: its
    // service goes).
    os::withdraw(id.as_str());
    code
}

fn run_job_in(dir: &Path, id: &JobId, stop: &AtomicBool) -> i32 {
    let d = match JobDir::open(dir, false) {
        Ok(Some(d)) => d,
        Ok(None) => {
            eprintln!("{}", JobEvent::Unknown { id: id.to_string(), dir: dir.display().to_string() });
            return EXIT_UNKNOWN_JOB;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    // The log file only for a job of ours: not for a refused or unknown file.
    let mut out = RunnerOut { log: None };
    // Claim the job: still pending, of this boot; the runner's pid goes into its file.
    let claimed = (|| {
        let locked = d.lock()?;
        let job = match locked.read(id) {
            Ok(Some(j)) => j,
            Ok(None) => return Ok(Err(EXIT_UNKNOWN_JOB)),
            Err(r) => return Ok(Err(refused_file(&r, &mut out))),
        };
        let mut job = job;
        if job.state != JobState::Pending {
            out.line(
                &JobEvent::NotPending { id: id.to_string(), state: job.state, by: job.cancelled_by.clone() }
                    .to_string(),
            );
            return Ok(Err(0));
        }
        if job.from_another_boot(os::boot_id().as_deref()) {
            let why = "the machine restarted before its due time: no one was logged off";
            let _ = job.abandon(why, now_ms());
            locked.write(&job)?;
            out.line(&JobEvent::Abandoned { id: id.to_string(), why: why.into() }.to_string());
            return Ok(Err(1));
        }
        job.runner_pid = Some(std::process::id());
        locked.write(&job)?;
        out.log = os::open_append(&d.log_path(id)).ok();
        Ok::<_, Error>(Ok(job))
    })();
    let job = match claimed {
        Ok(Ok(j)) => j,
        Ok(Err(code)) => return code,
        Err(e) => {
            out.line(&format!("error: {e}"));
            return 1;
        }
    };
    let mut audit = crate::doors::job_audit_trail(job.spec.audit.enabled, job.spec.audit.socket.as_deref());
    run_claimed(&d, job, stop, &mut audit, &mut out)
}

fn refused_file(r: &Refused, out: &mut RunnerOut) -> i32 {
    out.line(&JobEvent::Refused { file: r.file.clone(), reason: r.reason.clone() }.to_string());
    // The file's own audit settings cannot be trusted: the system log.
    AuditTrail::open(true).job(
        Severity::Warning,
        &[("action", "job_refused".into()), ("file", r.file.clone()), ("reason", r.reason.clone())],
    );
    1
}

fn run_claimed(d: &JobDir, job: Job, stop: &AtomicBool, audit: &mut AuditTrail, out: &mut RunnerOut) -> i32 {
    let id = job.id.clone();
    let opts = match job.spec.run_options() {
        Ok(o) => o,
        Err(e) => {
            out.line(&format!("error: job {id}: {e}"));
            return 1;
        }
    };
    out.line(
        &JobEvent::Waiting { id: id.to_string(), due_ms: job.due_ms, mechanism: job.mechanism.clone() }.to_string(),
    );
    match wait_for_due(d, &job, &opts, stop, audit, out) {
        Wait::Due => {}
        Wait::NotPending(code) => return code,
    }
    // Due: one job logs off at a time; this one only if it is still pending.
    let run_lock = match d.run_lock() {
        Ok(l) => l,
        Err(e) => {
            out.line(&format!("error: {e}"));
            return 1;
        }
    };
    let job = match start_job(d, &id, out) {
        Ok(j) => j,
        Err(code) => return code,
    };
    out.line(&JobEvent::Starting { id: id.to_string() }.to_string());
    audit.job(
        Severity::Notice,
        &[
            ("action", "job_start".into()),
            ("job", id.to_string()),
            ("targets", job.spec.targets_text()),
            ("scheduled_by", job.scheduled_by.clone()),
        ],
    );
    let run_opts = RunOptions { warning: None, ..opts };
    let never = AtomicBool::new(false);
    let mut echo = |l: &str| out.line(l);
    let mut lines = Lines { audit, out: &mut echo };
    let report = crate::run::run(&run_opts, open_hosts(&job.spec), &mut lines, &never);
    lines.audit.outcome(&report);
    for l in crate::text::error_lines(&report) {
        (lines.out)(&l);
    }
    if let Some(s) = crate::text::summary_line(&report) {
        (lines.out)(&s);
    }
    let code = report.summary.exit_code;
    let summary = serde_json::to_value(&report.summary).ok();
    let finished = (|| {
        let locked = d.lock()?;
        let mut now = locked.read(&id).ok().flatten().unwrap_or(job.clone());
        if now.finish(code, summary.clone(), now_ms()).is_ok() {
            locked.write(&now)?;
        }
        Ok::<_, Error>(now)
    })();
    drop(run_lock);
    let state = finished.as_ref().map_or(JobState::Failed, |j| j.state);
    if let Err(e) = &finished {
        (lines.out)(&format!("error: {e}"));
    }
    (lines.out)(&JobEvent::Finished { id: id.to_string(), state, exit_code: code }.to_string());
    lines.audit_job(
        if code == 0 { Severity::Notice } else { Severity::Warning },
        &[
            ("action", "job_end".into()),
            ("job", id.to_string()),
            ("state", state.to_string()),
            ("exit_code", code.to_string()),
            ("scheduled_by", job.scheduled_by.clone()),
        ],
    );
    code
}

/// Moves job `id` from pending to running, under the lock. `Err(exit code)` when it may
/// not run: 0 when it is no longer pending (cancelled: said so), 1 when it cannot be read
/// or written.
fn start_job(d: &JobDir, id: &JobId, out: &mut RunnerOut) -> Result<Job, i32> {
    let started = (|| {
        let locked = d.lock()?;
        let Ok(Some(mut now)) = locked.read(id) else { return Ok(None) };
        if now.start(now_ms()).is_err() {
            return Ok(Some(Err(now)));
        }
        locked.write(&now)?;
        Ok::<_, Error>(Some(Ok(now)))
    })();
    match started {
        Ok(Some(Ok(j))) => Ok(j),
        Ok(Some(Err(now))) => {
            out.line(
                &JobEvent::NotPending { id: id.to_string(), state: now.state, by: now.cancelled_by.clone() }
                    .to_string(),
            );
            Err(0)
        }
        Ok(None) => Err(1),
        Err(e) => {
            out.line(&format!("error: {e}"));
            Err(1)
        }
    }
}

enum Wait {
    Due,
    NotPending(i32),
}

/// Waits until the job is due, reminding its targets at the reminder points still ahead;
/// returns early when it is no longer pending, or `stop` is set (it is then abandoned).
fn wait_for_due(
    d: &JobDir,
    job: &Job,
    opts: &RunOptions,
    stop: &AtomicBool,
    audit: &mut AuditTrail,
    out: &mut RunnerOut,
) -> Wait {
    let id = &job.id;
    let grace = Duration::from_millis(job.spec.grace_ms);
    let left_at_start = Duration::from_millis(job.due_ms.saturating_sub(now_ms()));
    let mut points = reminder_points(grace).into_iter().filter(|p| *p < left_at_start).peekable();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Wait::NotPending(abandon(d, id, audit, out));
        }
        // Under the lock, as every reader: on Windows a reader's open handle can make a
        // writer's rename fail. A lock that cannot be taken skips this look.
        let seen = d.lock().map_or_else(|_| Ok(Some(job.clone())), |locked| locked.read(id));
        match seen {
            Ok(Some(j)) if j.state == JobState::Pending => {}
            Ok(Some(j)) => {
                out.line(
                    &JobEvent::NotPending { id: id.to_string(), state: j.state, by: j.cancelled_by.clone() }
                        .to_string(),
                );
                return Wait::NotPending(0);
            }
            Ok(None) => return Wait::NotPending(EXIT_UNKNOWN_JOB),
            Err(r) => return Wait::NotPending(refused_file(&r, out)),
        }
        let left = Duration::from_millis(job.due_ms.saturating_sub(now_ms()));
        if left.is_zero() {
            return Wait::Due;
        }
        if let Some(p) = points.peek().copied() {
            if left <= p {
                points.next();
                out.line(&JobEvent::Reminder { id: id.to_string(), left_ms: p.as_millis() as u64 }.to_string());
                remind(job, opts, p, audit, out);
                continue;
            }
        }
        let until_point = points.peek().map_or(left, |p| left.saturating_sub(*p));
        std::thread::sleep(until_point.min(left).clamp(Duration::from_millis(1), POLL));
    }
}

/// Marks the job failed because its runner was stopped before the due time; returns the
/// runner's exit code (0 when it was no longer pending to be abandoned, 1 otherwise).
fn abandon(d: &JobDir, id: &JobId, audit: &mut AuditTrail, out: &mut RunnerOut) -> i32 {
    let abandoned = (|| {
        let locked = d.lock()?;
        let Ok(Some(mut now)) = locked.read(id) else { return Ok(false) };
        let why = "its runner was stopped before the due time: no one was logged off";
        let ok = now.abandon(why, now_ms()).is_ok();
        if ok {
            locked.write(&now)?;
            out.line(&JobEvent::Abandoned { id: id.to_string(), why: why.into() }.to_string());
            audit.job(
                Severity::Warning,
                &[
                    ("action", "job_end".into()),
                    ("job", id.to_string()),
                    ("state", "failed".into()),
                    ("error", why.into()),
                ],
            );
        }
        Ok::<_, Error>(ok)
    })();
    i32::from(abandoned.unwrap_or(true))
}

/// Sends the reminder for `left` (the time still to the due time) to whoever is planned now.
fn remind(job: &Job, opts: &RunOptions, left: Duration, audit: &mut AuditTrail, out: &mut RunnerOut) {
    let Some(w) = &opts.warning else { return };
    let text = reminder(&w.text, left);
    let remind = RunOptions { warning: None, ..opts.clone() };
    let mut echo = |l: &str| out.line(l);
    let mut lines = Lines { audit, out: &mut echo };
    match plan_hosts(&remind, open_hosts(&job.spec), &mut lines) {
        Ok(planned) => {
            planned.notify(&text, &mut lines);
        }
        Err(report) => {
            for l in crate::text::error_lines(&report) {
                (lines.out)(&l);
            }
        }
    }
}

/// Runs `run` as a Windows service (the SCM's dispatcher, stop requests set its flag);
/// returns its exit code.
///
/// # Errors
///
/// `Unsupported` elsewhere than on Windows; the dispatcher's error.
pub fn serve(run: Box<dyn FnOnce(&AtomicBool) -> i32 + Send>) -> crate::error::Result<i32> {
    os::serve(run)
}

#[cfg(test)]
mod tests;
