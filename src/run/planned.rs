//! A run planned on every host and not acted on: what a scheduled logoff (`crate::schedule`)
//! needs when it warns now and acts later. Phases 1 and 2 as in [`super::run`] (the same
//! refusals, the same privilege check), then a message to every planned session, and
//! nothing else.

use crate::event::Event;
use crate::model::Session;
use crate::report::Report;

use super::{
    Host, Observer, Prepared, RunOptions, planned_sessions, prepare, request_of, restore_own_drains, send_to_all,
};
use crate::drain::DrainAction;

/// The hosts of a run, snapshotted and planned.
pub(crate) struct Planned {
    request: crate::report::Request,
    hosts: Vec<Prepared>,
}

/// Plans `opts` on `hosts`, acting on none but for `--drain` (`opts.drain`), which stops
/// new logons first, as a run does; `observer` hears of it.
///
/// # Errors
///
/// The report of a run that stopped before it acted (a refused target: exit 2; no
/// privilege: exit 3), as [`super::run`] returns it; a drain it made is undone then.
pub(crate) fn plan_hosts(
    opts: &RunOptions,
    hosts: Vec<Host>,
    observer: &mut dyn Observer,
) -> Result<Planned, Box<Report>> {
    let request = request_of(opts);
    match prepare(opts, hosts, observer) {
        Ok(hosts) => Ok(Planned { request, hosts }),
        Err(s) => Err(Box::new(Report::new(request, s.hosts, Some(s.stop), Some(s.message)))),
    }
}

impl Planned {
    /// The session the tool runs in on each host, as the snapshot listed it.
    pub(crate) fn own_sessions(&self) -> Vec<(String, Session)> {
        self.hosts
            .iter()
            .filter_map(|p| {
                let snap = p.snapshot.as_ref()?;
                let id = snap.current_session.as_deref()?;
                let s = snap.sessions.iter().find(|s| s.id == id)?;
                Some((p.report.host.clone(), s.clone()))
            })
            .collect()
    }

    /// Whether this run drained a host (new logons refused by it, not by an earlier drain).
    pub(crate) fn drained(&self) -> bool {
        self.hosts.iter().any(|p| p.report.drain.as_ref().is_some_and(|d| d.action == DrainAction::Drained))
    }

    /// Undoes the drains this run made, after `why` stopped it.
    pub(crate) fn undo_drains(&mut self, why: &str, observer: &mut dyn Observer) {
        restore_own_drains(&mut self.hosts, why, observer);
    }

    /// How many sessions are planned, over every host.
    pub(crate) fn sessions(&self) -> usize {
        planned_sessions(&self.hosts)
    }

    /// Sends `text` to every planned session (one `send_message` action each, as the
    /// warning of a run), and returns the report: plans and messages, no other action.
    pub(crate) fn notify(mut self, text: &str, observer: &mut dyn Observer) -> Report {
        observer.event("", Event::Warning { sessions: self.sessions(), text: text.to_string() });
        send_to_all(&mut self.hosts, text, observer);
        self.into_report()
    }

    /// The report of the plans alone.
    pub(crate) fn into_report(self) -> Report {
        Report::new(self.request, self.hosts.into_iter().map(|p| p.report).collect(), None, None)
    }
}
