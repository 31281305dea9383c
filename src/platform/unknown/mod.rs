//! The platform of every OS without a backend yet (macOS, the BSDs, ...): it builds, and
//! says "not supported" on every call, so the tool exits 3 having done nothing. It never
//! pretends there are no sessions.

pub(crate) mod jobs;

use std::path::Path;

use crate::audit::AuditSink;
use crate::backend::{Backend, Done, NativeOptions, Policy, TerminateOptions, Terminated};
use crate::error::{Error, Result};
use crate::identity::Account;
use crate::model::{Process, Session};

/// Opens the backend that says "not supported yet" on every call.
///
/// # Errors
///
/// Never fails to open; every operation then returns `Unsupported`.
pub(super) fn open_backend(_opts: &NativeOptions) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Unsupported))
}

/// There is no system log to write to here.
pub(super) fn open_audit_sink(_socket: Option<&Path>) -> std::io::Result<Box<dyn AuditSink>> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no audit trail on this OS yet"))
}

/// The user name the environment gives; nothing better is known here.
pub(super) fn invoker() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".to_string())
}

/// The "not supported yet" backend.
#[derive(Debug, Default)]
struct Unsupported;

/// `what` cannot be done: this OS is not supported yet.
pub(super) fn unsupported<T>(what: &str) -> Result<T> {
    Err(Error::unsupported(what, format!("{} is not supported yet by logoff-users", std::env::consts::OS)))
}

impl Unsupported {
    fn err<T>(what: &str) -> Result<T> {
        unsupported(what)
    }
}

impl Backend for Unsupported {
    fn name(&self) -> &str {
        "unsupported"
    }
    fn policy(&self) -> Policy {
        Policy::default()
    }
    fn check_privilege(&mut self) -> Result<()> {
        Self::err("check privilege")
    }
    fn list_sessions(&mut self) -> Result<Vec<Session>> {
        Self::err("list sessions")
    }
    fn list_processes(&mut self) -> Result<Vec<Process>> {
        Self::err("list processes")
    }
    fn current_session(&mut self) -> Result<Option<String>> {
        Self::err("find the current session")
    }
    fn logoff_session(&mut self, _: &Session) -> Result<Done> {
        Self::err("log off a session")
    }
    fn terminate_processes(&mut self, _: &Account, _: &TerminateOptions) -> Result<Terminated> {
        Self::err("terminate processes")
    }
    fn send_message(&mut self, _: &Session, _: &str, _: &str) -> Result<()> {
        Self::err("send a message")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::error::ErrorKind;
    use crate::event::Event;
    use crate::run::{Host, Observer, RunOptions};
    use crate::userlist::Targets;

    struct Quiet;
    impl Observer for Quiet {
        fn event(&mut self, _: &str, _: Event) {}
    }

    #[test]
    fn every_call_says_unsupported_and_a_run_exits_3_having_done_nothing() {
        let mut b = open_backend(&NativeOptions::default()).unwrap();
        let s = Session::new("1", "alice", crate::model::SessionState::Active);
        let errors = [
            b.check_privilege().unwrap_err(),
            b.list_sessions().unwrap_err(),
            b.list_processes().unwrap_err(),
            b.logoff_session(&s).unwrap_err(),
            b.send_message(&s, "t", "x").unwrap_err(),
        ];
        for e in errors {
            assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
            assert!(e.to_string().contains("is not supported yet"), "{e}");
        }
        let opts = RunOptions {
            targets: Targets::All,
            exclude: vec![],
            plan: Default::default(),
            dry_run: false,
            timeout: std::time::Duration::from_secs(1),
            kill_after: std::time::Duration::ZERO,
            warning: None,
            drain: None,
            wait_profile: None,
        };
        let host =
            Host { name: "localhost".into(), backend: open_backend(&NativeOptions::default()), own_session: None };
        let report = crate::run::run(&opts, vec![host], &mut Quiet, &AtomicBool::new(false));
        assert_eq!(report.summary.exit_code, 3);
        assert!(report.error.unwrap().contains("not supported yet"));
        let (list, code) = crate::run::list(vec![Host {
            name: "x".into(),
            backend: open_backend(&NativeOptions::default()),
            own_session: None,
        }]);
        assert_eq!(code, 3);
        assert!(list.hosts[0].error.is_some());
        assert!(open_audit_sink(None).is_err());
        assert!(!invoker().is_empty());
    }
}
