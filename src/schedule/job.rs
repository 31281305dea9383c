//! The job model: one scheduled logoff as it is kept in its file (versioned JSON), its
//! state machine, and the conversion of the run's options to and from what the file holds.
//!
//! Pure: no file, clock or OS here. The file's format is its own ([`JOB_VERSION`]), not
//! the library's internal types: a job written by this version is read back field by field.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{NativeOptions, ProcessSource, SessionSource};
use crate::model::{Session, SessionState};
use crate::plan::{PlanOptions, SessionFilter};
use crate::run::{RunOptions, Warning};
use crate::userlist::{DomainSpec, Targets, UserName};
use crate::words::string_enum;

/// The version of the job file's format. A file of another version is refused, never
/// guessed at.
pub const JOB_VERSION: u32 = 1;

string_enum! {
    /// Where a job is in its life.
    pub enum JobState {
        /// Scheduled: waiting for its due time (warnings and reminders go out meanwhile).
        Pending => "pending",
        /// Past the point of no return: it is logging users off.
        Running => "running",
        /// Finished; `exit_code` says how (0: every target logged off).
        Done => "done",
        /// It could not run, or its run failed (`exit_code` not 0, or `error`).
        Failed => "failed",
        /// Cancelled before it logged anyone off.
        Cancelled => "cancelled",
    }
}

impl JobState {
    /// Whether the job is over (its file is only history now).
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

/// A job's id: eight lowercase hex digits, safe as a file name, a systemd unit name and a
/// Windows service name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// The id of these 32 bits.
    pub fn from_bits(bits: u32) -> JobId {
        JobId(format!("{bits:08x}"))
    }

    /// Parses an id as a user typed it (surrounding blanks and case ignored).
    ///
    /// # Errors
    ///
    /// A message when it is not eight hex digits.
    pub fn parse(text: &str) -> Result<JobId, String> {
        let t = text.trim().to_ascii_lowercase();
        if t.len() == 8 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(JobId(t))
        } else {
            Err(format!("{text:?} is not a job id (eight hex digits, as --detach and --pending print them)"))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for JobId {
    type Error = String;
    fn try_from(s: String) -> Result<JobId, String> {
        // Exactly as written: a file whose id is not in canonical form is not ours.
        match JobId::parse(&s) {
            Ok(id) if id.0 == s => Ok(id),
            _ => Err(format!("{s:?} is not a job id")),
        }
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

string_enum! {
    /// How a requested name is bound to a domain (the file's form of `DomainSpec`).
    pub enum NameForm {
        /// `user`: that account in any domain.
        Bare => "bare",
        /// `.\user`: the local machine only.
        Local => "local",
        /// `DOMAIN\user`.
        Domain => "domain",
        /// `user@domain`.
        Upn => "upn",
    }
}

/// One requested account, as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobName {
    /// The account name.
    pub name: String,
    /// How it is bound to a domain.
    pub form: NameForm,
    /// The domain, for `domain` and `upn`.
    #[serde(default)]
    pub domain: Option<String>,
}

impl From<&UserName> for JobName {
    fn from(n: &UserName) -> JobName {
        let (form, domain) = match &n.domain {
            DomainSpec::Any => (NameForm::Bare, None),
            DomainSpec::Local => (NameForm::Local, None),
            DomainSpec::Named(d) => (NameForm::Domain, Some(d.clone())),
            DomainSpec::Upn(d) => (NameForm::Upn, Some(d.clone())),
        };
        JobName { name: n.name.clone(), form, domain }
    }
}

/// The names of `list` as people read them (one the file holds malformed is left out).
fn names(list: &[JobName]) -> Vec<String> {
    list.iter().filter_map(|n| n.to_user_name().ok()).map(|n| n.to_string()).collect()
}

impl JobName {
    fn to_user_name(&self) -> Result<UserName, String> {
        let domain = match (self.form, &self.domain) {
            (NameForm::Bare, None) => DomainSpec::Any,
            (NameForm::Local, None) => DomainSpec::Local,
            (NameForm::Domain, Some(d)) => DomainSpec::Named(d.clone()),
            (NameForm::Upn, Some(d)) => DomainSpec::Upn(d.clone()),
            _ => return Err(format!("the name {:?} has form {} and domain {:?}", self.name, self.form, self.domain)),
        };
        if self.name.is_empty() || self.name.chars().any(char::is_control) {
            return Err(format!("the name {:?} is not a user name", self.name));
        }
        Ok(UserName { name: self.name.clone(), domain })
    }
}

string_enum! {
    /// Where Linux sessions come from (the file's form of `SessionSource`).
    pub enum JobSource {
        /// logind when it answers, utmp otherwise.
        Auto => "auto",
        /// logind only.
        Logind => "logind",
        /// utmp only.
        Utmp => "utmp",
    }
}

string_enum! {
    /// Where process uids come from (the file's form of `ProcessSource`).
    pub enum JobProcesses {
        /// The task iterator from many processes on.
        Auto => "auto",
        /// /proc only.
        Procfs => "procfs",
        /// The task iterator.
        Bpf => "bpf",
    }
}

/// Which hosts the job acts on, and how they are opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobHosts {
    /// A fake machine's state file (tests).
    #[serde(default)]
    pub fake_state: Option<PathBuf>,
    /// Remote servers; empty for this machine.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Linux: the session source.
    pub source: JobSource,
    /// Linux: the utmp file.
    #[serde(default)]
    pub utmp: Option<PathBuf>,
    /// Linux: the process source.
    pub processes: JobProcesses,
}

impl JobHosts {
    /// The file's form of how the binary opens its hosts.
    pub fn new(fake_state: Option<PathBuf>, servers: Vec<String>, native: &NativeOptions) -> JobHosts {
        JobHosts {
            fake_state,
            servers,
            source: match native.source {
                SessionSource::Auto => JobSource::Auto,
                SessionSource::Logind => JobSource::Logind,
                SessionSource::Utmp => JobSource::Utmp,
            },
            utmp: native.utmp_path.clone(),
            processes: match native.processes {
                ProcessSource::Auto => JobProcesses::Auto,
                ProcessSource::Procfs => JobProcesses::Procfs,
                ProcessSource::TaskIter => JobProcesses::Bpf,
            },
        }
    }

    /// How to open the native backend (`server` is filled per host).
    pub fn native(&self) -> NativeOptions {
        NativeOptions {
            source: match self.source {
                JobSource::Auto => SessionSource::Auto,
                JobSource::Logind => SessionSource::Logind,
                JobSource::Utmp => SessionSource::Utmp,
            },
            utmp_path: self.utmp.clone(),
            server: None,
            processes: match self.processes {
                JobProcesses::Auto => ProcessSource::Auto,
                JobProcesses::Procfs => ProcessSource::Procfs,
                JobProcesses::Bpf => ProcessSource::TaskIter,
            },
        }
    }
}

/// Where the job's audit records go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobAudit {
    /// Write an audit trail at all (not for a fake machine without a test socket).
    pub enabled: bool,
    /// A test's syslog socket instead of the system log.
    #[serde(default)]
    pub socket: Option<PathBuf>,
}

/// The session the scheduling run ran in, on one host: the job spares it as the scheduling
/// run would have (the runner itself runs in no session), as long as it is still that
/// account's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerSession {
    /// The host's name.
    pub host: String,
    /// The session id.
    pub id: String,
    /// Its account name.
    pub user: String,
    /// Its domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Its uid.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Its SID.
    #[serde(default)]
    pub sid: Option<String>,
}

impl CallerSession {
    /// The file's form of `session` on `host`.
    pub fn of(host: &str, s: &Session) -> CallerSession {
        CallerSession {
            host: host.to_string(),
            id: s.id.clone(),
            user: s.user.clone(),
            domain: s.domain.clone(),
            uid: s.uid,
            sid: s.sid.clone(),
        }
    }

    /// A session with this id and account, for `identity::same_account`.
    pub fn session(&self) -> Session {
        let mut s = Session::new(self.id.clone(), self.user.clone(), SessionState::Unknown);
        s.domain = self.domain.clone();
        s.uid = self.uid;
        s.sid = self.sid.clone();
        s
    }
}

/// What the job is to do: the run's options, the hosts and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// ALL.
    pub all: bool,
    /// The names, when not ALL.
    #[serde(default)]
    pub users: Vec<JobName>,
    /// Who to leave alone.
    #[serde(default)]
    pub exclude: Vec<JobName>,
    /// `--force`.
    pub force: bool,
    /// Not `--no-process-fallback`.
    pub process_fallback: bool,
    /// `--include-services`.
    pub include_services: bool,
    /// `--disconnected-only`.
    pub disconnected_only: bool,
    /// `--idle-over`, in seconds.
    #[serde(default)]
    pub idle_over_s: Option<u64>,
    /// `--disconnect`.
    pub disconnect: bool,
    /// `--timeout`, in milliseconds.
    pub timeout_ms: u64,
    /// `--kill-after`, in milliseconds.
    pub kill_after_ms: u64,
    /// The warning's text (`--message`); sent when the job was scheduled, and repeated in
    /// the reminders.
    #[serde(default)]
    pub message: Option<String>,
    /// The grace period, in milliseconds: from scheduling to the due time.
    pub grace_ms: u64,
    /// The hosts.
    pub hosts: JobHosts,
    /// The audit trail.
    pub audit: JobAudit,
    /// The sessions the scheduling run ran in, to be spared as it would have spared them.
    #[serde(default)]
    pub caller_sessions: Vec<CallerSession>,
    /// `--orphans`.
    #[serde(default)]
    pub orphans: bool,
    /// `--wait-profile`, in milliseconds.
    #[serde(default)]
    pub wait_profile_ms: Option<u64>,
    /// The scheduling run drained the host (`--drain`): new logons are refused from then
    /// on, the job does not drain again, and a cancel undoes that drain.
    #[serde(default)]
    pub drained: bool,
}

impl JobSpec {
    /// The file's form of a run's options.
    pub fn new(opts: &RunOptions, hosts: JobHosts, audit: JobAudit) -> JobSpec {
        let (all, users) = match &opts.targets {
            Targets::All => (true, Vec::new()),
            Targets::Users(names) => (false, names.iter().map(JobName::from).collect()),
        };
        JobSpec {
            all,
            users,
            exclude: opts.exclude.iter().map(JobName::from).collect(),
            force: opts.plan.force,
            process_fallback: opts.plan.process_fallback,
            include_services: opts.plan.include_services,
            disconnected_only: opts.plan.filter.disconnected_only,
            idle_over_s: opts.plan.filter.idle_over,
            disconnect: opts.plan.disconnect,
            timeout_ms: opts.timeout.as_millis() as u64,
            kill_after_ms: opts.kill_after.as_millis() as u64,
            message: opts.warning.as_ref().map(|w| w.text.clone()),
            grace_ms: opts.warning.as_ref().map_or(0, |w| w.grace.as_millis() as u64),
            hosts,
            audit,
            caller_sessions: Vec::new(),
            orphans: opts.plan.orphans,
            wait_profile_ms: opts.wait_profile.map(|d| d.as_millis() as u64),
            drained: false,
        }
    }

    /// The run's options back, with the warning (and its grace period) as scheduled.
    ///
    /// # Errors
    ///
    /// What does not make a valid request: no user and not ALL, a malformed name.
    pub fn run_options(&self) -> Result<RunOptions, String> {
        let targets = if self.all {
            if !self.users.is_empty() {
                return Err("the job names users and ALL".into());
            }
            Targets::All
        } else {
            if self.users.is_empty() && !self.orphans {
                return Err("the job names no user".into());
            }
            Targets::Users(self.users.iter().map(JobName::to_user_name).collect::<Result<_, _>>()?)
        };
        let exclude = self.exclude.iter().map(JobName::to_user_name).collect::<Result<_, _>>()?;
        Ok(RunOptions {
            targets,
            exclude,
            plan: PlanOptions {
                force: self.force,
                process_fallback: self.process_fallback,
                include_services: self.include_services,
                filter: SessionFilter { disconnected_only: self.disconnected_only, idle_over: self.idle_over_s },
                disconnect: self.disconnect,
                orphans: self.orphans,
            },
            // A drain was made (or not) when the job was scheduled, never at its due time.
            drain: None,
            wait_profile: self.wait_profile_ms.map(Duration::from_millis),
            dry_run: false,
            timeout: Duration::from_millis(self.timeout_ms),
            kill_after: Duration::from_millis(self.kill_after_ms),
            warning: self
                .message
                .as_ref()
                .map(|text| Warning { text: text.clone(), grace: Duration::from_millis(self.grace_ms) }),
        })
    }

    /// The names targeted, as people read them: `ALL`, or the names joined by commas.
    pub fn targets_text(&self) -> String {
        if self.all { "ALL".into() } else { names(&self.users).join(",") }
    }

    /// The names targeted (none for ALL), as people read them.
    pub fn user_names(&self) -> Vec<String> {
        if self.all { Vec::new() } else { names(&self.users) }
    }

    /// The names excluded, as people read them.
    pub fn exclude_names(&self) -> Vec<String> {
        names(&self.exclude)
    }
}

/// One scheduled logoff: the whole job file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// [`JOB_VERSION`].
    pub version: u32,
    /// The id (also the file's name).
    pub id: JobId,
    /// Where it is in its life.
    pub state: JobState,
    /// Who scheduled it, as the OS says (the audit trail's `invoked_by`).
    pub scheduled_by: String,
    /// When it was scheduled, in milliseconds since the Unix epoch.
    pub scheduled_at_ms: u64,
    /// When it logs off, in milliseconds since the Unix epoch.
    pub due_ms: u64,
    /// The machine's boot it was scheduled in: a job from an earlier boot never runs.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// What to do.
    pub spec: JobSpec,
    /// What runs it: the systemd unit, the daemon's pid, the Windows service.
    #[serde(default)]
    pub mechanism: Option<String>,
    /// The pid of the process that waits for the due time.
    #[serde(default)]
    pub runner_pid: Option<u32>,
    /// When it started logging off.
    #[serde(default)]
    pub started_at_ms: Option<u64>,
    /// When it finished, failed or was cancelled.
    #[serde(default)]
    pub finished_at_ms: Option<u64>,
    /// The run's exit code (0 to 4), once done or failed.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it failed, when it could not run at all.
    #[serde(default)]
    pub error: Option<String>,
    /// The run's summary, as in the report's JSON document.
    #[serde(default)]
    pub summary: Option<serde_json::Value>,
    /// Who cancelled it.
    #[serde(default)]
    pub cancelled_by: Option<String>,
}

/// A state change a job's file does not allow, with the state it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAllowed(pub JobState);

impl Job {
    /// A new pending job.
    pub fn new(id: JobId, spec: JobSpec, scheduled_by: String, now_ms: u64, boot_id: Option<String>) -> Job {
        let due_ms = now_ms.saturating_add(spec.grace_ms);
        Job {
            version: JOB_VERSION,
            id,
            state: JobState::Pending,
            scheduled_by,
            scheduled_at_ms: now_ms,
            due_ms,
            boot_id,
            spec,
            mechanism: None,
            runner_pid: None,
            started_at_ms: None,
            finished_at_ms: None,
            exit_code: None,
            error: None,
            summary: None,
            cancelled_by: None,
        }
    }

    /// Due time reached: `pending → running`. Only a pending job may start, and only a job
    /// that has started logs anyone off.
    ///
    /// # Errors
    ///
    /// The state it is in, when it is not pending (cancelled, already started).
    pub fn start(&mut self, now_ms: u64) -> Result<(), NotAllowed> {
        if self.state != JobState::Pending {
            return Err(NotAllowed(self.state));
        }
        self.state = JobState::Running;
        self.started_at_ms = Some(now_ms);
        Ok(())
    }

    /// `pending → cancelled`. Returns whether it changed anything: a job cancelled already
    /// stays cancelled.
    ///
    /// # Errors
    ///
    /// The state it is in, when it has started (running, done, failed): too late.
    pub fn cancel(&mut self, by: &str, now_ms: u64) -> Result<bool, NotAllowed> {
        match self.state {
            JobState::Pending => {
                self.state = JobState::Cancelled;
                self.cancelled_by = Some(by.to_string());
                self.finished_at_ms = Some(now_ms);
                Ok(true)
            }
            JobState::Cancelled => Ok(false),
            s => Err(NotAllowed(s)),
        }
    }

    /// The run is over: `running → done` (exit 0) or `failed`.
    ///
    /// # Errors
    ///
    /// The state it is in, when it is not running.
    pub fn finish(
        &mut self,
        exit_code: i32,
        summary: Option<serde_json::Value>,
        now_ms: u64,
    ) -> Result<(), NotAllowed> {
        if self.state != JobState::Running {
            return Err(NotAllowed(self.state));
        }
        self.state = if exit_code == 0 { JobState::Done } else { JobState::Failed };
        self.exit_code = Some(exit_code);
        self.summary = summary;
        self.finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// A pending job that will never run (its runner could not start, was stopped, or the
    /// machine restarted): `pending → failed`, with why. No one was logged off.
    ///
    /// # Errors
    ///
    /// The state it is in, when it is not pending.
    pub fn abandon(&mut self, why: &str, now_ms: u64) -> Result<(), NotAllowed> {
        if self.state != JobState::Pending {
            return Err(NotAllowed(self.state));
        }
        self.state = JobState::Failed;
        self.error = Some(why.to_string());
        self.finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// Its runner died while it was logging off (killed, a crash): `running → failed`,
    /// with why. Some users may have been logged off: the audit trail says which.
    ///
    /// # Errors
    ///
    /// The state it is in, when it is not running.
    pub fn runner_died(&mut self, why: &str, now_ms: u64) -> Result<(), NotAllowed> {
        if self.state != JobState::Running {
            return Err(NotAllowed(self.state));
        }
        self.state = JobState::Failed;
        self.error = Some(why.to_string());
        self.finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// Whether the job was scheduled in another boot of the machine than `boot_id`.
    pub fn from_another_boot(&self, boot_id: Option<&str>) -> bool {
        matches!((self.boot_id.as_deref(), boot_id), (Some(a), Some(b)) if a != b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userlist::{parse_exclude, parse_targets};

    fn opts(list: &str, exclude: &[&str]) -> RunOptions {
        RunOptions {
            targets: parse_targets(&[list.to_string()]).unwrap(),
            exclude: parse_exclude(&exclude.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap(),
            plan: PlanOptions {
                force: true,
                process_fallback: false,
                include_services: true,
                filter: SessionFilter { disconnected_only: true, idle_over: Some(3600) },
                disconnect: false,
                orphans: false,
            },
            dry_run: false,
            timeout: Duration::from_secs(45),
            kill_after: Duration::from_millis(2500),
            warning: Some(Warning { text: "Save your work".into(), grace: Duration::from_secs(900) }),
            drain: None,
            wait_profile: Some(Duration::from_secs(120)),
        }
    }

    fn hosts() -> JobHosts {
        JobHosts::new(Some("/tmp/state.json".into()), vec!["rds1".into()], &NativeOptions::default())
    }

    #[test]
    fn string_tables_round_trip() {
        crate::words::assert_round_trips(JobState::ALL);
        crate::words::assert_round_trips(NameForm::ALL);
        crate::words::assert_round_trips(JobSource::ALL);
        crate::words::assert_round_trips(JobProcesses::ALL);
    }

    #[test]
    fn run_options_survive_the_file() {
        for (list, exclude) in [
            ("alice, CORP\\bob, carol@corp.example.com, .\\dave, 'John Smith'", &["CORP\\eve"][..]),
            ("ALL", &["bob", "x@y"][..]),
            ("\"'quoted'\"", &[][..]),
        ] {
            let o = opts(list, exclude);
            let spec = JobSpec::new(&o, hosts(), JobAudit::default());
            let text = serde_json::to_string(&spec).unwrap();
            let back: JobSpec = serde_json::from_str(&text).unwrap();
            assert_eq!(back, spec);
            assert_eq!(back.run_options().unwrap(), o, "{list}");
        }
        let spec = JobSpec::new(&opts("alice,CORP\\bob", &[]), hosts(), JobAudit::default());
        assert_eq!(spec.targets_text(), "alice,CORP\\bob");
        assert_eq!(spec.grace_ms, 900_000);
    }

    #[test]
    fn a_spec_that_makes_no_valid_request_is_refused() {
        let mut spec = JobSpec::new(&opts("alice", &[]), hosts(), JobAudit::default());
        spec.users.clear();
        assert!(spec.run_options().unwrap_err().contains("no user"));
        spec.all = true;
        assert!(spec.run_options().is_ok());
        spec.users.push(JobName { name: "x".into(), form: NameForm::Bare, domain: None });
        assert!(spec.run_options().unwrap_err().contains("users and ALL"));
        spec.all = false;
        spec.users = vec![JobName { name: "x".into(), form: NameForm::Domain, domain: None }];
        assert!(spec.run_options().is_err());
        spec.users = vec![JobName { name: "a\nb".into(), form: NameForm::Bare, domain: None }];
        assert!(spec.run_options().is_err());
    }

    #[test]
    fn ids_are_eight_hex_digits() {
        assert_eq!(JobId::parse(" 0A1b2C3d ").unwrap().as_str(), "0a1b2c3d");
        for bad in ["", "1234567", "123456789", "../../x", "g1234567", "all"] {
            assert!(JobId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(JobId::from_bits(0xbeef).as_str(), "0000beef");
        // In a file, only the canonical form.
        assert!(serde_json::from_str::<JobId>("\"0000beef\"").is_ok());
        assert!(serde_json::from_str::<JobId>("\"0000BEEF\"").is_err());
    }

    fn job() -> Job {
        let spec = JobSpec::new(&opts("alice", &[]), hosts(), JobAudit::default());
        Job::new(JobId::from_bits(1), spec, "root".into(), 1_000, Some("boot-a".into()))
    }

    #[test]
    fn every_state_transition() {
        use JobState::*;
        let mut j = job();
        assert_eq!((j.state, j.due_ms), (Pending, 901_000));
        // pending -> running -> done
        j.start(2_000).unwrap();
        assert_eq!((j.state, j.started_at_ms), (Running, Some(2_000)));
        assert_eq!(j.cancel("admin", 2_001), Err(NotAllowed(Running)), "too late once running");
        assert_eq!(j.start(2_002), Err(NotAllowed(Running)), "never started twice");
        assert_eq!(j.abandon("x", 2_003), Err(NotAllowed(Running)));
        j.finish(0, None, 3_000).unwrap();
        assert_eq!((j.state, j.exit_code), (Done, Some(0)));
        assert_eq!(j.finish(0, None, 3_001), Err(NotAllowed(Done)));
        assert_eq!(j.cancel("admin", 3_002), Err(NotAllowed(Done)));
        // running -> failed
        let mut j = job();
        j.start(2_000).unwrap();
        j.finish(1, Some(serde_json::json!({"exit_code": 1})), 3_000).unwrap();
        assert_eq!((j.state, j.exit_code), (Failed, Some(1)));
        assert_eq!(j.cancel("admin", 3_002), Err(NotAllowed(Failed)));
        // pending -> cancelled, and it stays so
        let mut j = job();
        assert_eq!(j.cancel("admin", 1_500), Ok(true));
        assert_eq!((j.state, j.cancelled_by.as_deref()), (Cancelled, Some("admin")));
        assert_eq!(j.cancel("other", 1_600), Ok(false));
        assert_eq!(j.cancelled_by.as_deref(), Some("admin"));
        assert_eq!(j.start(2_000), Err(NotAllowed(Cancelled)), "a cancelled job never starts");
        assert_eq!(j.finish(0, None, 2_000), Err(NotAllowed(Cancelled)));
        // pending -> failed (abandoned): never starts either
        let mut j = job();
        j.abandon("the machine restarted", 1_500).unwrap();
        assert_eq!((j.state, j.error.as_deref()), (Failed, Some("the machine restarted")));
        assert_eq!(j.start(2_000), Err(NotAllowed(Failed)));
        assert_eq!(j.runner_died("x", 2_000), Err(NotAllowed(Failed)));
        // running -> failed: the runner died mid-way; never from pending.
        let mut j = job();
        assert_eq!(j.runner_died("x", 1_500), Err(NotAllowed(Pending)));
        j.start(2_000).unwrap();
        j.runner_died("its runner is gone", 2_500).unwrap();
        assert_eq!((j.state, j.exit_code, j.error.as_deref()), (Failed, None, Some("its runner is gone")));
        assert!(JobState::ALL.iter().all(|s| s.is_finished() != matches!(s, Pending | Running)));
    }

    #[test]
    fn a_job_from_another_boot_is_known() {
        let j = job();
        assert!(!j.from_another_boot(Some("boot-a")));
        assert!(j.from_another_boot(Some("boot-b")));
        assert!(!j.from_another_boot(None), "an unknown boot proves nothing");
    }

    #[test]
    fn the_file_refuses_unknown_fields_and_bad_ids() {
        let text = serde_json::to_string(&job()).unwrap();
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job());
        let extra = text.replacen('{', "{\"shell\":\"rm -rf /\",", 1);
        assert!(serde_json::from_str::<Job>(&extra).is_err());
        let bad_id = text.replace("\"00000001\"", "\"../etc/x\"");
        assert!(serde_json::from_str::<Job>(&bad_id).is_err());
    }
}
