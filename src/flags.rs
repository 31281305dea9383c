//! The flags layer: clap's [`Args`] become one validated, plain [`Command`], or a
//! [`UsageError`] (exit 2, nothing done). Pure: the environment's `LOGOFF_USERS` comes in
//! as a parameter, and nothing here looks at the machine.
//!
//! Not here: whether a backend can do what the flags ask (`--disconnect` on Linux); the run
//! finds that out when it opens the hosts.
//!
//! The test build's hidden flags (`--fake-state`, `--audit-socket`) are in `doors`, which
//! only the `test-doors` feature compiles; a release build compiles `no_doors` instead.

#[cfg(feature = "test-doors")]
mod doors;
#[cfg(not(feature = "test-doors"))]
#[path = "flags/no_doors.rs"]
mod doors;

pub use doors::Doors;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use logoff_users::backend::{NativeOptions, ProcessSource, SessionSource};
use logoff_users::drain::DrainStep;
use logoff_users::duration::parse_duration;
use logoff_users::report::Request;
use logoff_users::schedule::{CancelTarget, JobId, Via};
use logoff_users::userlist::{Targets, parse_exclude, parse_targets};
use logoff_users::{MAX_MESSAGE_CHARS, PlanOptions, RunOptions, SessionFilter, Warning};

const AFTER_HELP: &str = "\
USERS: comma-separated names or ALL, from the arguments, --users, or LOGOFF_USERS (one of
them: a list from both the arguments and LOGOFF_USERS is refused).
Names: user, DOMAIN\\user, user@domain, .\\user; matched exactly, ignoring case.

What a logoff ends: every process of the user, on Linux also those outside the session
(nohup jobs, tmux and screen servers: a user's tmux or screen dies with the logoff).
--exclude keeps a user, and a lingering user (loginctl enable-linger) keeps what runs under
its service manager (user services, systemd-run --user); only its sessions end.

Clearing a host for maintenance: --drain ALL --message TEXT --grace 10m, then reboot
(Windows: check that profile_unloaded is true for every user first). --undrain reopens.

Exit codes:
  0  every targeted user is logged off (a user not logged on counts as done)
  1  some action failed or could not be verified (a profile still loaded, a failed drain)
  2  bad input or usage, or a protected target refused; nothing was done
  3  not enough privilege, or this OS is not supported yet; nothing was done
  4  cancelled (Ctrl-C, SIGTERM) during the --message grace period; no one was logged off
  5  --cancel: the job had already started logging off; it was not cancelled
  6  --cancel ID: there is no job with that id

Scheduled logoffs: --detach returns at once and leaves the grace period, the reminders and
the logoff to a job that outlives the caller; --pending lists the jobs; --cancel ID|all
stops them before they log anyone off (with --message, the users are told).";

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
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
pub struct Args {
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

    /// Send the warning now, then leave the grace period, the reminders and the logoff to
    /// a scheduled job that outlives this run; print its id and due time and return.
    #[arg(long, conflicts_with_all = ["list", "dry_run", "undrain"])]
    detach: bool,

    /// List the scheduled logoffs: pending, running, and those finished lately.
    #[arg(long, conflicts_with_all = ["list", "detach", "cancel", "users", "users_list"])]
    pending: bool,

    /// Cancel a scheduled logoff (its id, or all) before it logs anyone off. With
    /// --message, tell its users.
    #[arg(long, value_name = "ID|all", conflicts_with_all = ["list", "detach", "users", "users_list"])]
    cancel: Option<String>,

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

    /// Remote RDS hosts to act on (Windows), comma-separated; a machine named twice is acted on once.
    #[arg(long, value_name = "HOST[,HOST...]", value_delimiter = ',')]
    server: Vec<String>,

    /// Where Linux sessions come from.
    #[arg(long, value_enum, default_value = "auto")]
    source: Source,

    /// The utmp file to read (Linux, without logind).
    #[arg(long, value_name = "PATH")]
    utmp: Option<PathBuf>,

    /// Where the uids of every process come from (Linux): `procfs` (the default) reads
    /// /proc/PID/status and never loads BPF; `bpf` loads a read-only BPF task iterator,
    /// several times faster with many thousands of processes, which security tools may
    /// alert on; `auto` uses it from a thousand processes on.
    #[arg(long, value_enum, default_value = "procfs")]
    process_source: ProcSource,

    /// Stop new logons first (Linux: /run/nologin with the --message text; Windows: drain
    /// until restart, as `change logon /drainuntilrestart`), then warn, wait and log off.
    /// Alone: only stop new logons. Stays in force after the run, until --undrain or a
    /// restart; this machine only.
    #[arg(long, conflicts_with_all = ["list", "undrain"])]
    drain: bool,

    /// Restore what --drain changed (and nothing else: a drain this tool did not set stays),
    /// then exit. Takes no users.
    #[arg(long, conflicts_with_all = ["list", "dry_run", "message", "orphans", "disconnect"])]
    undrain: bool,

    /// Also end every account at or above UID_MIN that owns processes but has no live
    /// session (nohup jobs, tmux servers, editors' remote servers left behind). With ALL or
    /// alone. Spares root, lingering users, --exclude, and accounts outside
    /// UID_MIN..UID_MAX unless --force.
    #[arg(long, conflicts_with = "list")]
    orphans: bool,

    /// After the sessions are gone, wait up to DURATION for each user's profile to unload
    /// (Windows: HKEY_USERS\<SID>, and FSLogix's state); by default what is left of --timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    wait_profile: Option<Duration>,

    /// Run the scheduled logoff ID (what --detach starts).
    #[arg(long, value_name = "ID", hide = true, conflicts_with_all = ["list", "detach", "pending", "cancel", "users", "users_list"])]
    run_job: Option<String>,

    /// With --run-job: run as a Windows service.
    #[arg(long, hide = true, requires = "run_job")]
    service: bool,

    /// The test build's hidden flags; none in a release build.
    #[command(flatten)]
    doors: Doors,
}

/// Which hosts to open, and how.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// The test build's doors (a fake machine instead of the real one); none in a release.
    pub doors: Doors,
    /// Remote servers; empty for this machine.
    pub servers: Vec<String>,
    /// How to open the native backend (`server` is filled per host).
    pub native: NativeOptions,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// `--list`: show the sessions.
    List { format: Format, hosts: Hosts },
    /// Log users off.
    /// `audit`: write an audit trail (never for a dry run).
    Logoff { run: Box<RunOptions>, format: Format, hosts: Hosts, audit: bool },
    /// `--detach`: warn now, schedule the rest.
    Detach { run: Box<RunOptions>, format: Format, hosts: Hosts, audit: bool, jobs: Jobs },
    /// `--pending`: list the scheduled logoffs.
    Pending { format: Format, dir: PathBuf },
    /// `--cancel ID|all`, with the message to its users.
    Cancel { target: CancelTarget, message: Option<String>, format: Format, dir: PathBuf, doors: Doors },
    /// `--run-job ID`: a scheduled logoff's runner.
    RunJob { id: JobId, dir: PathBuf, service: bool },
}

/// Where scheduled logoffs live, and what starts their runners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jobs {
    /// The job directory.
    pub dir: PathBuf,
    /// What starts a runner.
    pub via: Via,
}

/// The scheduled-logoff commands (`--pending`, `--cancel`, `--run-job`), or `None` for
/// the others.
fn job_command(args: &Args, format: Format, request: &Request) -> Option<Result<Command, UsageError>> {
    let dir = args.doors.job_dir();
    let fail = |message: String| UsageError { message, request: request.clone(), format };
    if args.pending {
        return Some(Ok(Command::Pending { format, dir }));
    }
    if let Some(id) = &args.run_job {
        return Some(JobId::parse(id).map(|id| Command::RunJob { id, dir, service: args.service }).map_err(fail));
    }
    let target = args.cancel.as_ref()?;
    let target = match CancelTarget::parse(target) {
        Ok(t) => t,
        Err(e) => return Some(Err(fail(e))),
    };
    let message = match warning(args) {
        Ok(w) => w.map(|w| w.text),
        Err(e) => return Some(Err(fail(e))),
    };
    Some(Ok(Command::Cancel { target, message, format, dir, doors: args.doors.clone() }))
}

/// Bad input: exit 2, nothing done. `request` is what was understood of it, for the JSON
/// document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// What is wrong, and how to fix it.
    pub message: String,
    /// What was asked for, as far as it could be read.
    pub request: Request,
    /// The format to report it in.
    pub format: Format,
}

fn hosts(args: &Args) -> Hosts {
    let native = NativeOptions {
        source: match args.source {
            Source::Auto => SessionSource::Auto,
            Source::Logind => SessionSource::Logind,
            Source::Utmp => SessionSource::Utmp,
        },
        utmp_path: args.utmp.clone(),
        server: None,
        processes: match args.process_source {
            ProcSource::Auto => ProcessSource::Auto,
            ProcSource::Procfs => ProcessSource::Procfs,
            ProcSource::Bpf => ProcessSource::TaskIter,
        },
    };
    let servers = args.server.iter().map(|s| s.trim().to_string()).collect();
    Hosts { doors: args.doors.clone(), servers, native }
}

/// The user lists: the arguments and `--users`, or `LOGOFF_USERS`, never both.
fn user_lists(args: &Args, env_users: Option<String>) -> Result<Vec<String>, String> {
    let mut lists = args.users.clone();
    lists.extend(args.users_list.clone());
    match env_users {
        Some(env) if !lists.is_empty() => Err(format!(
            "two user lists were given: {:?} in the arguments and {env:?} in LOGOFF_USERS; \
             give the list one way only (unset LOGOFF_USERS, or drop the names from the arguments)",
            lists.join(",")
        )),
        Some(env) => Ok(vec![env]),
        None => Ok(lists),
    }
}

/// What `--drain`, `--undrain` and `--orphans` do not go with: `lists` are the user lists.
fn maintenance_rules(args: &Args, lists: &[String]) -> Result<(), String> {
    if args.undrain && !lists.is_empty() {
        return Err("--undrain takes no users: it only restores logons (run the logoff separately)".to_string());
    }
    if (args.drain || args.undrain) && !args.server.is_empty() {
        return Err(format!(
            "--{} acts on this machine only (a remote server's registry is out of reach): run the tool on each server",
            if args.drain { "drain" } else { "undrain" }
        ));
    }
    if args.orphans && (args.disconnected_only || args.idle_over.is_some() || args.disconnect) {
        return Err("--orphans does not go with --disconnected-only, --idle-over or --disconnect".to_string());
    }
    Ok(())
}

/// The warning and its grace period, when `--message` is given.
fn warning(args: &Args) -> Result<Option<Warning>, String> {
    let Some(text) = &args.message else { return Ok(None) };
    if text.trim().is_empty() {
        return Err("--message must not be empty".to_string());
    }
    let n = text.chars().count();
    if n > MAX_MESSAGE_CHARS {
        return Err(format!(
            "--message is {n} characters; at most {MAX_MESSAGE_CHARS} can be shown (the Windows limit): shorten it"
        ));
    }
    let grace = args.grace.unwrap_or(Duration::from_secs(300));
    Ok(Some(Warning { text: text.clone(), grace }))
}

/// Turns the parsed arguments into what to do. `env_users` is `LOGOFF_USERS`.
///
/// # Errors
///
/// A [`UsageError`] for two user lists, a list or exclude list that does not parse, and an
/// empty or too long `--message`.
pub fn command(args: Args, env_users: Option<String>) -> Result<Command, UsageError> {
    let hosts = hosts(&args);
    if args.list {
        return Ok(Command::List { format: args.format, hosts });
    }
    let drain = if args.drain {
        Some(DrainStep::Drain)
    } else if args.undrain {
        Some(DrainStep::Undrain)
    } else {
        None
    };
    let empty = Request::default();
    if let Some(command) = job_command(&args, args.format, &empty) {
        return command;
    }
    let mut request = Request {
        all: false,
        users: Vec::new(),
        exclude: Vec::new(),
        dry_run: args.dry_run,
        timeout_ms: args.timeout.as_millis() as u64,
        orphans: args.orphans,
        drain,
    };
    let format = args.format;
    let fail = |message: String, request: &Request| UsageError { message, request: request.clone(), format };
    let lists = user_lists(&args, env_users).map_err(|m| fail(m, &request))?;
    maintenance_rules(&args, &lists).map_err(|m| fail(m, &request))?;
    // --drain, --undrain and --orphans may come without a user list.
    let alone = lists.is_empty() && (args.drain || args.undrain || args.orphans);
    let targets = if alone {
        Targets::Users(Vec::new())
    } else {
        parse_targets(&lists).map_err(|e| fail(e.message, &request))?
    };
    if args.orphans && matches!(&targets, Targets::Users(names) if !names.is_empty()) {
        return Err(fail("--orphans goes with ALL or alone, not with names".to_string(), &request));
    }
    let exclude = parse_exclude(&args.exclude).map_err(|e| fail(e.message, &request))?;
    request.all = targets == Targets::All;
    if let Targets::Users(names) = &targets {
        request.users = names.iter().map(ToString::to_string).collect();
    }
    request.exclude = exclude.iter().map(ToString::to_string).collect();
    let warning = warning(&args).map_err(|m| fail(m, &request))?;
    let kill_after = args.kill_after.or(if args.message.is_none() { args.grace } else { None });
    let run = RunOptions {
        targets,
        exclude,
        plan: PlanOptions {
            force: args.force,
            process_fallback: !args.no_process_fallback,
            include_services: args.include_services,
            filter: SessionFilter {
                disconnected_only: args.disconnected_only,
                idle_over: args.idle_over.map(|d| d.as_secs()),
            },
            disconnect: args.disconnect,
            orphans: args.orphans,
        },
        dry_run: args.dry_run,
        timeout: args.timeout,
        kill_after: kill_after.unwrap_or(Duration::from_secs(5)),
        warning,
        drain,
        wait_profile: args.wait_profile,
    };
    if args.detach {
        let jobs = Jobs { dir: hosts.doors.job_dir(), via: hosts.doors.detach_via() };
        return Ok(Command::Detach { run: Box::new(run), format, hosts, audit: !args.dry_run, jobs });
    }
    Ok(Command::Logoff { run: Box::new(run), format, hosts, audit: !args.dry_run })
}

#[cfg(test)]
mod tests {
    use super::*;
    use logoff_users::userlist::{DomainSpec, UserName};

    fn parse(argv: &[&str], env: Option<&str>) -> Result<Command, UsageError> {
        let args = Args::try_parse_from(std::iter::once("logoff-users").chain(argv.iter().copied())).unwrap();
        command(args, env.map(str::to_string))
    }

    fn run_of(argv: &[&str], env: Option<&str>) -> RunOptions {
        match parse(argv, env) {
            Ok(Command::Logoff { run, .. }) => *run,
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    fn error_of(argv: &[&str], env: Option<&str>) -> String {
        match parse(argv, env) {
            Err(e) => e.message,
            Ok(c) => panic!("{argv:?} was accepted: {c:?}"),
        }
    }

    fn names(list: &[&str]) -> Targets {
        Targets::Users(list.iter().map(|n| UserName { name: n.to_string(), domain: DomainSpec::Any }).collect())
    }

    #[test]
    fn where_the_user_list_comes_from() {
        let table: &[(&[&str], Option<&str>, Targets)] = &[
            (&["alice"], None, names(&["alice"])),
            (&["alice,bob"], None, names(&["alice", "bob"])),
            (&["alice", "bob"], None, names(&["alice", "bob"])),
            (&["--users", "alice, bob"], None, names(&["alice", "bob"])),
            (&["alice", "--users", "bob"], None, names(&["alice", "bob"])),
            (&[], Some("alice"), names(&["alice"])),
            (&[], Some("ALL"), Targets::All),
            (&["all"], None, Targets::All),
        ];
        for (argv, env, want) in table {
            assert_eq!(run_of(argv, *env).targets, *want, "{argv:?} {env:?}");
        }
    }

    #[test]
    fn two_user_lists_are_refused() {
        for (argv, env) in
            [(&["bob"][..], "alice"), (&["--users", "bob"][..], "ALL"), (&["tonight"][..], ""), (&["ALL"][..], "ALL")]
        {
            let e = error_of(argv, Some(env));
            assert!(e.starts_with("two user lists were given"), "{argv:?} {env:?}: {e}");
            assert!(e.contains("LOGOFF_USERS"), "{e}");
        }
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        let table: &[(&[&str], Option<&str>, &str)] = &[
            (&[], None, "no users given"),
            (&[], Some(""), "no users given"),
            (&[" , ,"], None, "nothing but blanks"),
            (&["@Users@"], None, "RMM did not fill in the parameter"),
            (&[], Some("@Users@"), "RMM did not fill in the parameter"),
            (&["ALL,bob"], None, "ALL cannot be mixed"),
            (&["a\\b\\c"], None, "malformed user name"),
            (&["ALL", "--exclude", "ALL"], None, "--exclude cannot be ALL"),
            (&["ALL", "--exclude", "x@"], None, "malformed user name"),
            (&["bob", "--message", "  "], None, "--message must not be empty"),
        ];
        for (argv, env, want) in table {
            let e = error_of(argv, *env);
            assert!(e.contains(want), "{argv:?} {env:?}: {e}");
        }
        let long = "x".repeat(256);
        assert!(error_of(&["bob", "--message", &long], None).contains("--message is 256 characters; at most 255"));
        assert!(parse(&["bob", "--message", &"x".repeat(255)], None).is_ok());
    }

    #[test]
    fn a_usage_error_keeps_what_was_understood() {
        let e = parse(&["bob", "--exclude", "carol", "--message", "", "--format", "json"], None).unwrap_err();
        assert_eq!(e.request.users, ["bob"]);
        assert_eq!(e.request.exclude, ["carol"]);
        assert_eq!(e.format, Format::Json);
    }

    #[test]
    fn defaults() {
        let r = run_of(&["bob"], None);
        assert_eq!(r.timeout, Duration::from_secs(30));
        assert_eq!(r.kill_after, Duration::from_secs(5));
        assert_eq!(r.warning, None);
        assert!(!r.dry_run);
        assert_eq!(r.plan, PlanOptions::default());
        assert!(r.exclude.is_empty());
    }

    #[test]
    fn grace_means_kill_after_without_a_message_and_the_warning_wait_with_one() {
        let table: &[(&[&str], u64, Option<u64>)] = &[
            (&["bob", "--grace", "9s"], 9, None),
            (&["bob", "--grace", "9s", "--kill-after", "2s"], 2, None),
            (&["bob", "--message", "hi"], 5, Some(300)),
            (&["bob", "--message", "hi", "--grace", "1m"], 5, Some(60)),
            (&["bob", "--message", "hi", "--grace", "1m", "--kill-after", "1s"], 1, Some(60)),
        ];
        for (argv, kill_after, grace) in table {
            let r = run_of(argv, None);
            assert_eq!(r.kill_after, Duration::from_secs(*kill_after), "{argv:?}");
            assert_eq!(r.warning.map(|w| w.grace.as_secs()), *grace, "{argv:?}");
        }
    }

    #[test]
    fn plan_flags() {
        let r = run_of(
            &[
                "bob",
                "--force",
                "--no-process-fallback",
                "--include-services",
                "--disconnected-only",
                "--idle-over",
                "1h",
                "--disconnect",
            ],
            None,
        );
        let want = PlanOptions {
            force: true,
            process_fallback: false,
            include_services: true,
            filter: SessionFilter { disconnected_only: true, idle_over: Some(3600) },
            disconnect: true,
            orphans: false,
        };
        assert_eq!(r.plan, want);
    }

    #[test]
    fn the_audit_trail_is_off_for_dry_runs() {
        let audit = |argv: &[&str]| match parse(argv, None) {
            Ok(Command::Logoff { audit, .. }) => audit,
            other => panic!("{other:?}"),
        };
        assert!(audit(&["bob"]));
        assert!(!audit(&["bob", "--dry-run"]));
    }

    #[test]
    fn proc_is_the_default_process_source_and_bpf_an_opt_in() {
        let source = |argv: &[&str]| match parse(argv, None) {
            Ok(Command::Logoff { hosts, .. }) => hosts.native.processes,
            other => panic!("{other:?}"),
        };
        assert_eq!(source(&["bob"]), ProcessSource::Procfs);
        assert_eq!(source(&["bob", "--process-source", "bpf"]), ProcessSource::TaskIter);
        assert_eq!(source(&["bob", "--process-source", "auto"]), ProcessSource::Auto);
    }

    #[test]
    fn drain_undrain_and_orphans_come_alone_or_with_all() {
        let none = Targets::Users(Vec::new());
        let table: &[(&[&str], Targets, Option<DrainStep>, bool)] = &[
            (&["--drain"], none.clone(), Some(DrainStep::Drain), false),
            (&["--drain", "ALL", "--message", "patching"], Targets::All, Some(DrainStep::Drain), false),
            (&["--drain", "bob"], names(&["bob"]), Some(DrainStep::Drain), false),
            (&["--undrain"], none.clone(), Some(DrainStep::Undrain), false),
            (&["--orphans"], none.clone(), None, true),
            (&["ALL", "--orphans", "--drain"], Targets::All, Some(DrainStep::Drain), true),
        ];
        for (argv, targets, drain, orphans) in table {
            let r = run_of(argv, None);
            assert_eq!((&r.targets, r.drain, r.plan.orphans), (targets, *drain, *orphans), "{argv:?}");
        }
        let refused: &[(&[&str], Option<&str>, &str)] = &[
            (&["--undrain", "bob"], None, "--undrain takes no users"),
            (&["--undrain"], Some("ALL"), "--undrain takes no users"),
            (&["--drain", "ALL", "--server", "rds1"], None, "--drain acts on this machine only"),
            (&["--undrain", "--server", "rds1"], None, "--undrain acts on this machine only"),
            (&["--orphans", "bob"], None, "--orphans goes with ALL or alone"),
            (&["ALL", "--orphans", "--idle-over", "1h"], None, "--orphans does not go with"),
            (&[], None, "no users given"),
        ];
        for (argv, env, want) in refused {
            let e = error_of(argv, *env);
            assert!(e.contains(want), "{argv:?}: {e}");
        }
        for argv in [&["--drain", "--undrain"][..], &["--undrain", "--dry-run"], &["--list", "--drain"]] {
            let e = Args::try_parse_from(std::iter::once("logoff-users").chain(argv.iter().copied())).unwrap_err();
            assert!(e.use_stderr(), "{argv:?} was accepted");
        }
        assert_eq!(run_of(&["bob", "--wait-profile", "2m"], None).wait_profile, Some(Duration::from_secs(120)));
        assert_eq!(run_of(&["bob"], None).wait_profile, None);
    }

    #[test]
    fn list_and_hosts() {
        match parse(&["--list", "--format", "json", "--server", "rds1, rds2", "--source", "utmp"], Some("ignored")) {
            Ok(Command::List { format, hosts }) => {
                assert_eq!(format, Format::Json);
                assert_eq!(hosts.servers, ["rds1", "rds2"]);
                assert_eq!(hosts.native.source, SessionSource::Utmp);
            }
            other => panic!("{other:?}"),
        }
        // --list and names conflict (clap says so, exit 2).
        let e = Args::try_parse_from(["logoff-users", "--list", "bob"]).unwrap_err();
        assert!(e.use_stderr());
    }

    #[test]
    fn scheduled_logoff_commands() {
        let default = logoff_users::schedule::default_dir();
        match parse(&["bob", "--detach", "--message", "hi", "--grace", "15m"], None) {
            Ok(Command::Detach { run, jobs, audit, .. }) => {
                assert_eq!(run.warning.map(|w| w.grace.as_secs()), Some(900));
                assert_eq!(jobs, Jobs { dir: default.clone(), via: Via::Auto });
                assert!(audit);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["--pending", "--format", "json", "--job-dir", "/tmp/j"], Some("ignored")) {
            Ok(Command::Pending { format, dir }) => assert_eq!((format, dir), (Format::Json, PathBuf::from("/tmp/j"))),
            other => panic!("{other:?}"),
        }
        match parse(&["--cancel", " ALL ", "--message", "called off"], Some("ignored")) {
            Ok(Command::Cancel { target, message, dir, .. }) => {
                assert_eq!((target, message.as_deref(), dir), (CancelTarget::All, Some("called off"), default.clone()));
            }
            other => panic!("{other:?}"),
        }
        match parse(&["--cancel", "0A1B2C3D"], None) {
            Ok(Command::Cancel { target, message: None, .. }) => {
                assert_eq!(target, CancelTarget::Id(JobId::parse("0a1b2c3d").unwrap()));
            }
            other => panic!("{other:?}"),
        }
        match parse(&["--run-job", "0a1b2c3d", "--service", "--job-dir", "/x"], None) {
            Ok(Command::RunJob { id, dir, service }) => {
                assert_eq!((id.as_str(), dir, service), ("0a1b2c3d", PathBuf::from("/x"), true));
            }
            other => panic!("{other:?}"),
        }
        assert!(error_of(&["--cancel", "x/../y"], None).contains("is not a job id"));
        assert!(error_of(&["--cancel", "all", "--message", &"x".repeat(256)], None).contains("at most 255"));
        assert!(error_of(&["--run-job", "nope"], None).contains("is not a job id"));
        // Conflicts clap refuses (exit 2).
        for argv in [
            &["logoff-users", "bob", "--detach", "--dry-run"][..],
            &["logoff-users", "bob", "--pending"],
            &["logoff-users", "bob", "--cancel", "all"],
            &["logoff-users", "--pending", "--cancel", "all"],
            &["logoff-users", "--list", "--detach"],
            &["logoff-users", "--service"],
            &["logoff-users", "bob", "--detach", "--detach-via", "cron"],
        ] {
            let e = Args::try_parse_from(argv).unwrap_err();
            assert!(e.use_stderr(), "{argv:?}");
        }
    }
}
