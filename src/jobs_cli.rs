//! The wiring of the scheduled-logoff commands: `--detach`, `--pending`, `--cancel` and
//! `--run-job`. The work, the documents and the lines are the library's
//! (`logoff_users::schedule`, `logoff_users::text`); this prints them and returns the exit
//! code.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::cli::{cancel_flag, finish, json, line};
use crate::flags::{Doors, Format, Hosts, Jobs};
use logoff_users::schedule::{self, CancelTarget, Detached, JobAudit, JobHosts, JobId};
use logoff_users::{RunOptions, text};

/// Where the lines of a text run go: printed, or nowhere for JSON.
fn printer(format: Format) -> impl FnMut(&str) {
    move |l: &str| {
        if format == Format::Text {
            line(l);
        }
    }
}

/// `--detach`.
pub fn detach(run: &RunOptions, format: Format, hosts: &Hosts, audit: bool, jobs: &Jobs) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", text::schedule_error_line(&format!("could not find this program's path: {e}")));
            return 1;
        }
    };
    // The runner starts in another directory (/ or system32): every path it is given must
    // stand on its own.
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut native = hosts.native.clone();
    native.utmp_path = native.utmp_path.as_deref().map(absolute);
    let fake_state = hosts.doors.fake_state().map(absolute);
    let socket = hosts.doors.audit_socket().map(absolute);
    let dir = absolute(&jobs.dir);
    let job_dir = dir.clone();
    // The runner is this same program; a test build's runner is told the test's job
    // directory (a release build has the system's only, and no flag to name another).
    let extra = hosts.doors.runner_args(&dir);
    let runner_args = move |id: &JobId| -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--run-job".into(), id.to_string().into()];
        args.extend(extra.iter().cloned());
        args
    };
    let req = schedule::DetachRequest {
        opts: run,
        hosts: JobHosts::new(fake_state, hosts.servers.clone(), &native),
        audit: JobAudit { enabled: hosts.doors.audit_on(audit), socket },
        dir: job_dir,
        via: jobs.via,
        exe,
        runner_args: &runner_args,
    };
    let mut trail = hosts.doors.audit_trail(audit);
    match schedule::detach(&req, &mut trail, &mut printer(format)) {
        Detached::Stopped(report) => {
            // A run stopped before it acted: its error lines, its summary or its document.
            trail.outcome(&report);
            finish(format, &report)
        }
        Detached::Done(doc) => {
            if let Some(e) = &doc.error {
                eprintln!("{}", text::schedule_error_line(e));
            }
            if format == Format::Json {
                json(&doc);
            }
            doc.exit_code
        }
    }
}

/// `--pending`.
pub fn pending(format: Format, dir: &Path) -> i32 {
    let doc = schedule::pending(dir);
    match format {
        Format::Text => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text::pending_table(&doc).as_bytes());
        }
        Format::Json => json(&doc),
    }
    doc.exit_code
}

/// `--cancel`.
pub fn cancel(target: &CancelTarget, message: Option<&str>, format: Format, dir: &Path, doors: &Doors) -> i32 {
    let mut trail = doors.audit_trail(true);
    let doc = schedule::cancel(dir, target, message, &mut trail, &mut printer(format));
    match format {
        Format::Text => line(text::cancel_summary_line(&doc)),
        Format::Json => json(&doc),
    }
    doc.exit_code
}

/// `--run-job`: a scheduled logoff's runner, as a process (Linux) or a Windows service.
pub fn run_job(id: JobId, dir: PathBuf, service: bool) -> i32 {
    if service {
        let run = Box::new(move |stop: &AtomicBool| schedule::run_job(&dir, &id, stop));
        return match schedule::serve(run) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        };
    }
    // SIGTERM (systemd stopping the unit) or Ctrl-C: a job not started yet is abandoned.
    let stop = cancel_flag(true, "a stop will not abandon the job");
    schedule::run_job(&dir, &id, &stop)
}
