//! Planning: from the targets, the exclude list and a [`Snapshot`], decide which sessions to
//! log off and whose processes to terminate. Pure: data in, a [`Plan`] out.
//!
//! Sessions and processes are grouped by the snapshot's account identities, never by
//! display names. What is refused here (a protected account named without `--force`, the
//! tool's own session) stops the run with exit code 2 before anything is done. ALL silently
//! leaves protected sessions out and says so in [`Plan::skipped`].

use serde::Serialize;

use crate::identity::{Account, AccountId};
use crate::model::Session;
use crate::protect::{Protection, account_protection, never_terminate, session_protection};
use crate::snapshot::Snapshot;
use crate::userlist::{Requested, Targets, UserName};
use crate::words::string_enum;

/// Options that shape a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Allow explicitly named protected accounts (never the services session or the tool's own).
    pub force: bool,
    /// Terminate the processes of a named user who has processes but no session.
    pub process_fallback: bool,
    /// Include the account's processes in the services session (Windows session 0).
    pub include_services: bool,
    /// Which sessions to act on (`--disconnected-only`, `--idle-over`).
    pub filter: SessionFilter,
    /// Disconnect sessions instead of logging them off (`--disconnect`): no process is
    /// terminated, since the point is to keep the user's work.
    pub disconnect: bool,
    /// Also every account that owns processes but has no live session (`--orphans`).
    pub orphans: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            force: false,
            process_fallback: true,
            include_services: false,
            filter: SessionFilter::default(),
            disconnect: false,
            orphans: false,
        }
    }
}

/// Which of a target's sessions to act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only sessions with no client attached: WTS `disconnected`, logind `closing`, a utmp
    /// record whose leader died while its session still has processes.
    pub disconnected_only: bool,
    /// Only sessions idle for longer than this many seconds.
    pub idle_over: Option<u64>,
}

impl SessionFilter {
    /// Whether any filter is set.
    pub fn is_active(&self) -> bool {
        self.disconnected_only || self.idle_over.is_some()
    }

    /// Why `s` is left out, or `None` when it is selected.
    pub fn reject_reason(&self, s: &Session) -> Option<String> {
        use crate::model::SessionState::{Closing, Disconnected};
        if self.disconnected_only && !matches!(s.state, Disconnected | Closing) {
            return Some(format!("not disconnected (state {})", s.state));
        }
        if let Some(limit) = self.idle_over {
            let fmt = |secs: u64| crate::duration::format_duration(std::time::Duration::from_secs(secs));
            match s.idle_seconds {
                Some(idle) if idle > limit => {}
                Some(idle) => return Some(format!("idle {}, not over {}", fmt(idle), fmt(limit))),
                None => return Some("idle time unknown".to_string()),
            }
        }
        None
    }
}

string_enum! {
    /// Why a user's processes are terminated.
    pub enum TerminateReason {
        /// The user has processes but no session: the process-termination fallback.
        Fallback => "fallback",
        /// After the sessions are ended, every remaining process of the user (Linux).
        Sweep => "sweep",
        /// The account owns processes but has no live session (`--orphans`).
        Orphan => "orphan",
    }
}

string_enum! {
    /// Where a target user stands before anything is done.
    pub enum UserStatus {
        /// The user has at least one session.
        LoggedOn => "logged_on",
        /// The user has processes but no session.
        ProcessesOnly => "processes_only",
        /// The user has neither: nothing to do, and that counts as done.
        NotLoggedOn => "not_logged_on",
    }
}

/// The plan for one target account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPlan {
    /// The name as requested (`CORP\jsmith`, `jsmith`), or `ALL`.
    pub requested: Requested,
    /// The account found on the machine; `None` when the user is not logged on.
    pub account: Option<Account>,
    /// Where the user stands.
    pub status: UserStatus,
    /// The sessions to log off.
    pub sessions: Vec<Session>,
    /// The user's processes in scope when the machine was listed.
    pub pids: Vec<u32>,
    /// Whether, and why, the user's processes are terminated.
    pub terminate: Option<TerminateReason>,
    /// Anything the admin should know about this user's plan.
    pub notes: Vec<String>,
}

/// A session ALL leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The session id.
    pub session_id: String,
    /// Its account, `DOMAIN\user`.
    pub user: String,
    /// Why it is left alone.
    pub reason: String,
}

/// A target that must not be acted on; any refusal stops the run (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The name as requested.
    pub requested: Requested,
    /// The account, `DOMAIN\user`.
    pub user: String,
    /// The session, when a session is the problem.
    pub session_id: Option<String>,
    /// Why, and how to proceed where there is a way.
    pub reason: String,
}

impl Refusal {
    /// `refused on HOST: USER (session S): REASON`, raw (the caller escapes it to print).
    pub fn line(&self, host: &str) -> String {
        let session = self.session_id.as_ref().map(|s| format!(" (session {s})")).unwrap_or_default();
        format!("refused on {host}: {}{session}: {}", self.user, self.reason)
    }
}

/// An account `--orphans` found with processes and no live session, and leaves alone.
/// (Root and the system accounts below `UID_MIN` are left alone without a word.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spared {
    /// The account, `DOMAIN\user`.
    pub user: String,
    /// Why it is left alone.
    pub reason: String,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One entry per target account, in the order requested (the orphans last).
    pub users: Vec<UserPlan>,
    /// Sessions left alone (ALL's protected sessions, excluded users).
    pub skipped: Vec<Skipped>,
    /// Accounts with processes and no live session that `--orphans` leaves alone.
    pub spared: Vec<Spared>,
    /// Refused targets. Non-empty means: do nothing, exit 2.
    pub refused: Vec<Refusal>,
}

impl Plan {
    /// Every planned session, with its account.
    pub fn sessions(&self) -> impl Iterator<Item = (&Account, &Session)> {
        self.users
            .iter()
            .filter_map(|u| u.account.as_ref().map(|a| (a, &u.sessions)))
            .flat_map(|(a, ss)| ss.iter().map(move |s| (a, s)))
    }
}

/// Accounts in the order first seen, each with its sessions: the one grouping of the
/// planner.
#[derive(Default)]
struct Groups {
    groups: Vec<(Account, Vec<Session>)>,
}

impl Groups {
    fn add(&mut self, account: Account, session: Option<&Session>) {
        let i = match self.groups.iter().position(|(a, _)| a.id == account.id) {
            Some(i) => i,
            None => {
                self.groups.push((account, Vec::new()));
                self.groups.len() - 1
            }
        };
        self.groups[i].1.extend(session.cloned());
    }
}

struct Ctx<'a> {
    snap: &'a Snapshot,
    opts: PlanOptions,
    exclude: &'a [UserName],
    out: Plan,
}

impl Ctx<'_> {
    fn skip(&mut self, s: &Session, account: &Account, reason: String) {
        self.out.skipped.push(Skipped { session_id: s.id.clone(), user: account.display_name(), reason });
    }

    fn refuse(&mut self, requested: &Requested, user: String, session_id: Option<&str>, reason: String) {
        let session_id = session_id.map(str::to_string);
        self.out.refused.push(Refusal { requested: requested.clone(), user, session_id, reason });
    }

    fn is_excluded(&self, account: &Account) -> bool {
        let local = self.snap.policy.local_domain.as_deref();
        self.exclude.iter().any(|x| x.matches(&account.user, account.domain.as_deref(), local))
    }

    fn pids_of(&self, id: &AccountId) -> Vec<u32> {
        let ids = self.snap.identities();
        let sparing = self.snap.sparing(self.opts.include_services);
        self.snap
            .processes
            .iter()
            .filter(|p| !p.zombie && ids.owns(id, p) && !sparing.spares(p))
            .map(|p| p.pid)
            .collect()
    }

    /// One of the tool's own processes that this account owns: sweeping it would kill
    /// the tool.
    fn runs_the_tool(&self, id: &AccountId) -> Option<u32> {
        let ids = self.snap.identities();
        let own = &self.snap.own_pids;
        self.snap.processes.iter().find(|p| own.contains(&p.pid) && ids.owns(id, p)).map(|p| p.pid)
    }

    /// `kept` counts the account's sessions that the filter or a protection leaves
    /// running: their processes must not be swept.
    fn user_plan(&self, requested: &Requested, account: Account, sessions: Vec<Session>, kept: usize) -> UserPlan {
        let pids = self.pids_of(&account.id);
        let status = if !sessions.is_empty() || kept > 0 {
            UserStatus::LoggedOn
        } else if !pids.is_empty() {
            UserStatus::ProcessesOnly
        } else {
            UserStatus::NotLoggedOn
        };
        let mut notes = Vec::new();
        let wanted = self.wanted_termination(status, kept, pids.len(), &mut notes);
        let terminate = wanted.filter(|_| {
            if never_terminate(&account) {
                notes.push("the processes of root or SYSTEM are never terminated".to_string());
                return false;
            }
            if let Some(pid) = self.runs_the_tool(&account.id) {
                notes.push(format!("processes not terminated: this account runs this tool (pid {pid})"));
                return false;
            }
            if self.snap.lingers(&account) {
                notes.push(LINGERS.to_string());
                return false;
            }
            true
        });
        UserPlan { requested: requested.clone(), account: Some(account), status, sessions, pids, terminate, notes }
    }

    fn wanted_termination(
        &self,
        status: UserStatus,
        kept: usize,
        pids: usize,
        notes: &mut Vec<String>,
    ) -> Option<TerminateReason> {
        match status {
            _ if kept > 0 => {
                notes.push(format!(
                    "{kept} session(s) stay (left out by a filter, or protected); processes are not terminated"
                ));
                None
            }
            // --disconnect keeps the user's work: nothing is terminated.
            _ if self.opts.disconnect => None,
            UserStatus::ProcessesOnly if self.opts.filter.is_active() => {
                notes.push("no session; the session filters leave process-only users alone".to_string());
                None
            }
            UserStatus::LoggedOn if self.snap.policy.sweep_after_logoff => Some(TerminateReason::Sweep),
            UserStatus::ProcessesOnly if self.opts.process_fallback => Some(TerminateReason::Fallback),
            UserStatus::ProcessesOnly => {
                notes.push(format!("{pids} process(es) but no session; left alone (--no-process-fallback)"));
                None
            }
            _ => None,
        }
    }

    /// ALL: every session's account but the protected, excluded and filtered-out ones.
    fn plan_all(&mut self) {
        let snap = self.snap;
        let current = snap.current_session.as_deref();
        let mut groups = Groups::default();
        let mut kept: Vec<AccountId> = Vec::new();
        for s in &snap.sessions {
            let account = snap.account_of(s);
            if let Some(p) = session_protection(s, &account, current, &snap.policy) {
                self.skip(s, &account, p.reason().to_string());
                // The account keeps this session (the services session, or the tool's
                // own), so its processes must not be swept.
                kept.push(account.id);
            } else if self.is_excluded(&account) {
                self.skip(s, &account, "excluded".to_string());
            } else if let Some(reason) = self.opts.filter.reject_reason(s) {
                self.skip(s, &account, reason);
                kept.push(account.id);
            } else {
                groups.add(account, Some(s));
            }
        }
        for (account, sessions) in groups.groups {
            let n = kept.iter().filter(|k| **k == account.id).count();
            let up = self.user_plan(&Requested::All, account, sessions, n);
            self.out.users.push(up);
        }
    }

    /// The accounts a requested name matches, by their sessions and processes.
    fn matches(&self, name: &UserName) -> Groups {
        let snap = self.snap;
        let local = snap.policy.local_domain.as_deref();
        let mut groups = Groups::default();
        for s in snap.sessions.iter().filter(|s| name.matches(&s.user, s.domain.as_deref(), local)) {
            groups.add(snap.account_of(s), Some(s));
        }
        for a in snap.processes.iter().filter_map(|p| snap.identities().process_account(p)) {
            if name.matches(&a.user, a.domain.as_deref(), local) {
                groups.add(a, None);
            }
        }
        groups
    }

    /// Named targets: each name's accounts, each planned once.
    fn plan_named(&mut self, names: &[UserName]) {
        // Two names can resolve to one account (`alice` and `CORP\alice`): plan it once.
        let mut planned: Vec<AccountId> = Vec::new();
        for name in names {
            let requested = Requested::Name(name.clone());
            let groups = self.matches(name);
            if groups.groups.is_empty() {
                self.plan_absent(&requested, name);
                continue;
            }
            for (account, sessions) in groups.groups {
                if planned.contains(&account.id) {
                    continue;
                }
                planned.push(account.id.clone());
                self.plan_account(&requested, account, sessions);
            }
        }
    }

    /// A named user with no session and no process.
    fn plan_absent(&mut self, requested: &Requested, name: &UserName) {
        // A protected name is refused even when it is not logged on: the admin asked for
        // something the tool never does without --force.
        let named = Account::by_name(&name.name, None);
        if let Some(p) = account_protection(&named, None).filter(|_| !self.opts.force) {
            let reason = format!("{}; name it with --force to log it off anyway", p.reason());
            self.refuse(requested, name.name.clone(), None, reason);
            return;
        }
        self.out.users.push(UserPlan {
            requested: requested.clone(),
            account: None,
            status: UserStatus::NotLoggedOn,
            sessions: Vec::new(),
            pids: Vec::new(),
            terminate: None,
            notes: Vec::new(),
        });
    }

    /// One account a name matched: excluded, refused, or planned with the sessions the
    /// filters select.
    fn plan_account(&mut self, requested: &Requested, account: Account, sessions: Vec<Session>) {
        if self.is_excluded(&account) {
            for s in &sessions {
                self.skip(s, &account, "excluded".to_string());
            }
            return;
        }
        let mut refused = false;
        if let Some(p) = account_protection(&account, self.snap.policy.uid_min).filter(|_| !self.opts.force) {
            let reason = format!("{}; name it with --force to log it off anyway", p.reason());
            self.refuse(requested, account.display_name(), None, reason);
            refused = true;
        }
        let current = self.snap.current_session.as_deref();
        for s in &sessions {
            if let Some(Protection::Always(reason)) = session_protection(s, &account, current, &self.snap.policy) {
                self.refuse(
                    requested,
                    account.display_name(),
                    Some(&s.id),
                    format!("{reason}; it is never logged off"),
                );
                refused = true;
            }
        }
        if refused {
            return;
        }
        let (selected, left): (Vec<Session>, Vec<Session>) =
            sessions.into_iter().partition(|s| self.opts.filter.reject_reason(s).is_none());
        for s in &left {
            self.skip(s, &account, self.opts.filter.reject_reason(s).unwrap_or_default());
        }
        let up = self.user_plan(requested, account, selected, left.len());
        self.out.users.push(up);
    }
}

/// The note for a lingering account, whose processes are not swept.
const LINGERS: &str = "lingers (loginctl enable-linger): only its sessions are ended; what runs under its \
     service manager (user services, systemd-run --user) is kept";

/// Whether a session is live: its user is logged on, or can come back to it. A logind
/// "closing" session is a logout whose processes remain; so is a utmp session whose leader
/// died, on a platform whose sessions cannot be disconnected and reconnected (Linux).
pub fn is_live(s: &Session, policy: &crate::backend::Policy) -> bool {
    use crate::model::SessionState::{Closing, Disconnected};
    match s.state {
        Closing => false,
        Disconnected => policy.can_disconnect,
        _ => true,
    }
}

impl Ctx<'_> {
    /// `--orphans`: every account that owns processes (zombies and spared ones aside) but
    /// has no live session and is not planned already; planned with its leftover sessions
    /// ("closing"), its processes terminated. Root and service accounts never; accounts
    /// outside `UID_MIN..=UID_MAX` (system accounts, `nobody`, dynamic service users) and
    /// protected names only with `--force`; lingering, excluded and the tool's own
    /// accounts are spared and listed.
    fn plan_orphans(&mut self) {
        let snap = self.snap;
        let planned: Vec<AccountId> =
            self.out.users.iter().filter_map(|u| u.account.as_ref()).map(|a| a.id.clone()).collect();
        let live: Vec<AccountId> =
            snap.sessions.iter().filter(|s| is_live(s, &snap.policy)).map(|s| snap.account_of(s).id).collect();
        let sparing = snap.sparing(self.opts.include_services);
        let mut candidates = Groups::default();
        for p in snap.processes.iter().filter(|p| !p.zombie && !sparing.spares(p)) {
            if let Some(a) = snap.identities().process_account(p) {
                if !planned.contains(&a.id) && !live.contains(&a.id) {
                    candidates.add(a, None);
                }
            }
        }
        for (account, _) in candidates.groups {
            if never_terminate(&account) || (self.system_account(&account) && !self.opts.force) {
                continue;
            }
            let spared = if self.is_excluded(&account) {
                Some("excluded".to_string())
            } else if self.snap.lingers(&account) {
                Some(LINGERS.to_string())
            } else {
                self.runs_the_tool(&account.id).map(|pid| format!("runs this tool (pid {pid})"))
            };
            if let Some(reason) = spared {
                self.out.spared.push(Spared { user: account.display_name(), reason });
                continue;
            }
            let sessions: Vec<Session> =
                snap.sessions.iter().filter(|s| snap.account_of(s).id == account.id).cloned().collect();
            let pids = self.pids_of(&account.id);
            let notes = if sessions.is_empty() {
                Vec::new()
            } else {
                vec![format!("{} session(s) left after a logout (closing); they are ended too", sessions.len())]
            };
            self.out.users.push(UserPlan {
                requested: Requested::Orphans,
                account: Some(account),
                status: UserStatus::ProcessesOnly,
                sessions,
                pids,
                terminate: Some(TerminateReason::Orphan),
                notes,
            });
        }
    }

    /// A system account for `--orphans`: protected by name or SID, or a uid outside
    /// `UID_MIN..=UID_MAX`.
    fn system_account(&self, account: &Account) -> bool {
        let policy = &self.snap.policy;
        let above_max = matches!((account.id.uid(), policy.uid_max), (Some(u), Some(max)) if u > max);
        above_max || account_protection(account, policy.uid_min).is_some()
    }
}

/// Plans the run.
///
/// Named targets are resolved against the sessions' and processes' accounts: a bare name
/// can resolve to several accounts (`CORP\jsmith` and `PC1\jsmith`), each planned on its
/// own. A named account that is protected is refused unless `opts.force`; a named account
/// whose session runs the tool is always refused. ALL takes every session's account but
/// the protected ones. `opts.orphans` adds the accounts with processes and no live
/// session (see `Ctx::plan_orphans`). A lingering account's processes are never swept.
pub fn plan(targets: &Targets, exclude: &[UserName], snap: &Snapshot, opts: PlanOptions) -> Plan {
    let mut ctx = Ctx { snap, opts, exclude, out: Plan::default() };
    match targets {
        Targets::All => ctx.plan_all(),
        Targets::Users(names) => ctx.plan_named(names),
    }
    if opts.orphans {
        ctx.plan_orphans();
    }
    ctx.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Policy;
    use crate::model::{Process, SessionState};
    use crate::userlist::parse_targets;

    fn s(id: &str, user: &str, domain: Option<&str>, uid: Option<u32>) -> Session {
        Session { domain: domain.map(str::to_string), uid, ..Session::new(id, user, SessionState::Active) }
    }

    fn p(pid: u32, user: &str, uid: Option<u32>, session: Option<&str>) -> Process {
        Process { user: Some(user.into()), uid, session_id: session.map(str::to_string), ..Process::new(pid, "proc") }
    }

    fn targets(s: &str) -> Targets {
        parse_targets(&[s.to_string()]).unwrap()
    }

    fn linux() -> Snapshot {
        Snapshot::new(
            vec![
                s("1", "alice", None, Some(1001)),
                s("2", "alice", None, Some(1001)),
                s("3", "bob", None, Some(1002)),
                s("4", "root", None, Some(0)),
                s("5", "admin", None, Some(1003)),
            ],
            vec![
                p(100, "alice", Some(1001), None),
                p(101, "bob", Some(1002), None),
                p(102, "carol", Some(1004), None),
                p(103, "admin", Some(1003), None),
                p(104, "daemon", Some(1), None),
            ],
            Some("5".into()),
            vec![103],
            Policy { sweep_after_logoff: true, uid_min: Some(1000), local_domain: None, ..Policy::default() },
        )
    }

    /// `snap` with `f` applied to its listings (and its identities learned anew).
    fn edited(snap: Snapshot, f: impl FnOnce(&mut Vec<Session>, &mut Vec<Process>, &mut Policy)) -> Snapshot {
        let (mut sessions, mut processes, mut policy) = (snap.sessions, snap.processes, snap.policy);
        f(&mut sessions, &mut processes, &mut policy);
        Snapshot::new(sessions, processes, snap.current_session, snap.own_pids, policy)
    }

    fn users(plan: &Plan) -> Vec<(String, Vec<String>, Option<TerminateReason>)> {
        plan.users
            .iter()
            .map(|u| {
                (
                    u.account.as_ref().map(Account::display_name).unwrap_or_else(|| format!("<{}>", u.requested)),
                    u.sessions.iter().map(|s| s.id.clone()).collect(),
                    u.terminate,
                )
            })
            .collect()
    }

    #[test]
    fn named_user_with_two_sessions_then_sweep() {
        let plan = plan(&targets("alice"), &[], &linux(), PlanOptions::default());
        assert!(plan.refused.is_empty());
        assert_eq!(
            users(&plan),
            [("alice".to_string(), vec!["1".to_string(), "2".to_string()], Some(TerminateReason::Sweep))]
        );
        assert_eq!(plan.users[0].pids, [100]);
    }

    #[test]
    fn fallback_for_processes_without_session() {
        let p1 = plan(&targets("carol"), &[], &linux(), PlanOptions::default());
        assert_eq!(p1.users[0].status, UserStatus::ProcessesOnly);
        assert_eq!(p1.users[0].terminate, Some(TerminateReason::Fallback));
        let opts = PlanOptions { process_fallback: false, ..PlanOptions::default() };
        let p2 = plan(&targets("carol"), &[], &linux(), opts);
        assert_eq!(p2.users[0].terminate, None);
        assert!(p2.users[0].notes[0].contains("--no-process-fallback"));
    }

    #[test]
    fn unknown_user_is_not_logged_on() {
        let plan = plan(&targets("nosuch"), &[], &linux(), PlanOptions::default());
        assert_eq!(users(&plan), [("<nosuch>".to_string(), vec![], None)]);
        assert_eq!(plan.users[0].status, UserStatus::NotLoggedOn);
    }

    #[test]
    fn all_skips_protected_and_own_session_and_excluded() {
        let ex = crate::userlist::parse_exclude(&["bob".to_string()]).unwrap();
        let plan = plan(&Targets::All, &ex, &linux(), PlanOptions::default());
        assert_eq!(
            users(&plan),
            [("alice".to_string(), vec!["1".to_string(), "2".to_string()], Some(TerminateReason::Sweep))]
        );
        let skipped: Vec<(&str, &str)> =
            plan.skipped.iter().map(|s| (s.session_id.as_str(), s.reason.as_str())).collect();
        assert_eq!(skipped.len(), 3);
        assert_eq!(skipped[0].0, "3");
        assert_eq!(skipped[0].1, "excluded");
        assert_eq!(skipped[1].0, "4");
        assert!(skipped[1].1.contains("root"));
        assert_eq!(skipped[2].0, "5");
        assert!(skipped[2].1.contains("running this tool"));
        assert!(plan.refused.is_empty());
    }

    #[test]
    fn all_never_includes_protected_even_with_force() {
        let opts = PlanOptions { force: true, ..PlanOptions::default() };
        let plan = plan(&Targets::All, &[], &linux(), opts);
        assert!(plan.users.iter().all(|u| u.account.as_ref().unwrap().id.uid() != Some(0)));
        assert!(plan.users.iter().all(|u| u.sessions.iter().all(|s| s.id != "5")));
    }

    #[test]
    fn all_spares_other_sessions_of_the_tools_user_from_the_sweep() {
        let snap = edited(linux(), |sessions, _, _| sessions.push(s("6", "admin", None, Some(1003))));
        let plan = plan(&Targets::All, &[], &snap, PlanOptions::default());
        let admin = plan.users.iter().find(|u| u.account.as_ref().unwrap().user == "admin").unwrap();
        assert_eq!(admin.sessions.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["6"]);
        assert_eq!(admin.terminate, None);
    }

    #[test]
    fn named_protected_is_refused_unless_forced() {
        let refused = plan(&targets("root,daemon"), &[], &linux(), PlanOptions::default());
        assert_eq!(refused.refused.len(), 2);
        assert!(refused.refused[0].reason.contains("--force"));
        let forced = plan(&targets("root"), &[], &linux(), PlanOptions { force: true, ..PlanOptions::default() });
        assert!(forced.refused.is_empty());
        assert_eq!(forced.users[0].sessions.len(), 1);
        assert_eq!(forced.users[0].terminate, None, "root's processes are never swept");
    }

    #[test]
    fn protected_names_are_refused_even_when_not_logged_on() {
        let p = plan(
            &targets("SYSTEM,NT AUTHORITY\\LOCAL SERVICE,UMFD-3"),
            &[],
            &Snapshot::default(),
            PlanOptions::default(),
        );
        assert_eq!(p.refused.len(), 3);
        assert!(p.users.is_empty());
        let opts = PlanOptions { force: true, ..PlanOptions::default() };
        let p = plan(&targets("SYSTEM"), &[], &Snapshot::default(), opts);
        assert!(p.refused.is_empty());
        assert_eq!(p.users[0].status, UserStatus::NotLoggedOn);
    }

    #[test]
    fn own_session_is_refused_even_with_force() {
        let opts = PlanOptions { force: true, ..PlanOptions::default() };
        let plan = plan(&targets("admin"), &[], &linux(), opts);
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].session_id.as_deref(), Some("5"));
        assert!(plan.users.is_empty());
    }

    #[test]
    fn overlapping_names_plan_an_account_once() {
        let plan = plan(&targets("alice,ALICE"), &[], &linux(), PlanOptions::default());
        assert_eq!(plan.users.len(), 1);
        let snap = Snapshot::new(vec![s("2", "jsmith", Some("CORP"), None)], vec![], None, vec![], Policy::default());
        let plan = super::plan(&targets("jsmith,CORP\\jsmith"), &[], &snap, PlanOptions::default());
        assert_eq!(plan.users.len(), 1);
        assert_eq!(plan.users[0].requested, "jsmith");
    }

    #[test]
    fn filters_select_sessions_and_spare_the_rest_from_the_sweep() {
        let snap = edited(linux(), |sessions, _, _| {
            sessions[0].state = SessionState::Closing;
            sessions[0].idle_seconds = Some(4000);
            sessions[1].idle_seconds = Some(10);
            sessions[2].state = SessionState::Disconnected;
        });
        let only_disc = PlanOptions {
            filter: SessionFilter { disconnected_only: true, idle_over: None },
            ..PlanOptions::default()
        };
        let p = plan(&Targets::All, &[], &snap, only_disc);
        let got: Vec<_> = users(&p);
        assert_eq!(
            got,
            [
                ("alice".to_string(), vec!["1".to_string()], None),
                ("bob".to_string(), vec!["3".to_string()], Some(TerminateReason::Sweep)),
            ]
        );
        assert!(p.users[0].notes[0].contains("1 session(s) stay (left out by a filter, or protected)"));
        assert!(p.skipped.iter().any(|s| s.session_id == "2" && s.reason == "not disconnected (state active)"));

        let idle = PlanOptions {
            filter: SessionFilter { disconnected_only: false, idle_over: Some(3600) },
            ..PlanOptions::default()
        };
        let p = plan(&targets("alice,bob,carol"), &[], &snap, idle);
        assert_eq!(p.users[0].sessions.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["1"]);
        assert_eq!(p.users[0].terminate, None);
        assert!(p.skipped.iter().any(|s| s.session_id == "2" && s.reason == "idle 10s, not over 1h"));
        assert!(p.skipped.iter().any(|s| s.session_id == "3" && s.reason == "idle time unknown"));
        assert!(p.users[1].sessions.is_empty());
        assert_eq!(p.users[2].status, UserStatus::ProcessesOnly);
        assert_eq!(p.users[2].terminate, None, "no fallback under a session filter");
    }

    #[test]
    fn disconnect_never_terminates_processes() {
        let opts = PlanOptions { disconnect: true, ..PlanOptions::default() };
        let p = plan(&targets("alice,carol"), &[], &linux(), opts);
        assert!(p.users.iter().all(|u| u.terminate.is_none()));
        assert_eq!(p.users[0].sessions.len(), 2);
    }

    #[test]
    fn exclude_removes_named_targets() {
        let ex = crate::userlist::parse_exclude(&["ALICE".to_string()]).unwrap();
        let plan = plan(&targets("alice,bob"), &ex, &linux(), PlanOptions::default());
        assert_eq!(users(&plan).iter().map(|u| u.0.as_str()).collect::<Vec<_>>(), ["bob"]);
        assert_eq!(plan.skipped.len(), 2);
    }

    #[test]
    fn domains_tell_accounts_apart() {
        let snap = Snapshot::new(
            vec![s("2", "jsmith", Some("CORP"), None), s("3", "jsmith", Some("PC1"), None)],
            vec![],
            None,
            vec![],
            Policy { sweep_after_logoff: false, uid_min: None, local_domain: Some("PC1".into()), ..Policy::default() },
        );
        let ids = |t: &str| -> Vec<Vec<String>> {
            plan(&targets(t), &[], &snap, PlanOptions::default())
                .users
                .iter()
                .map(|u| u.sessions.iter().map(|s| s.id.clone()).collect())
                .collect()
        };
        assert_eq!(ids("CORP\\jsmith"), [["2"]]);
        assert_eq!(ids(".\\jsmith"), [["3"]]);
        assert_eq!(ids("jsmith@corp.example.com"), [["2"]]);
        assert_eq!(ids("jsmith"), [["2"], ["3"]]);
    }

    /// A login node: alice logged on; carol logged out leaving a nohup job (her session
    /// "closing"); dave's tmux server outlived a session logind forgot; erin lingers with a
    /// user service; frank is excluded; nobody (65534) and daemon own daemons.
    fn login_node() -> Snapshot {
        let proc_of = |pid, user: &str, uid| p(pid, user, Some(uid), None);
        Snapshot::new(
            vec![
                s("1", "alice", None, Some(1001)),
                Session { state: SessionState::Closing, ..s("2", "carol", None, Some(1004)) },
                s("5", "admin", None, Some(1003)),
            ],
            vec![
                proc_of(100, "alice", 1001),
                proc_of(110, "carol", 1004),
                proc_of(120, "dave", 1005),
                proc_of(121, "dave", 1005),
                proc_of(130, "erin", 1006),
                proc_of(140, "frank", 1007),
                proc_of(150, "nobody", 65534),
                proc_of(160, "daemon", 1),
                proc_of(170, "root", 0),
                Process { zombie: true, ..proc_of(180, "gina", 1008) },
                proc_of(103, "admin", 1003),
            ],
            Some("5".into()),
            vec![103],
            Policy { sweep_after_logoff: true, uid_min: Some(1000), uid_max: Some(60000), ..Policy::default() },
        )
        .with_lingering(vec![1006])
    }

    #[test]
    fn orphans_are_accounts_with_processes_and_no_live_session() {
        let ex = crate::userlist::parse_exclude(&["frank".to_string()]).unwrap();
        let opts = PlanOptions { orphans: true, ..PlanOptions::default() };
        let p = plan(&Targets::Users(Vec::new()), &ex, &login_node(), opts);
        assert_eq!(
            users(&p),
            [
                ("carol".to_string(), vec!["2".to_string()], Some(TerminateReason::Orphan)),
                ("dave".to_string(), vec![], Some(TerminateReason::Orphan)),
            ]
        );
        assert!(p.users.iter().all(|u| u.requested == Requested::Orphans && u.status == UserStatus::ProcessesOnly));
        assert_eq!(p.users[1].pids, [120, 121]);
        let spared: Vec<(&str, &str)> = p.spared.iter().map(|s| (s.user.as_str(), s.reason.as_str())).collect();
        assert_eq!(spared, [("erin", LINGERS), ("frank", "excluded")]);
        // With --force, nobody and daemon too; root never.
        let forced = plan(&Targets::Users(Vec::new()), &ex, &login_node(), PlanOptions { force: true, ..opts });
        let names: Vec<String> = users(&forced).into_iter().map(|u| u.0).collect();
        assert_eq!(names, ["carol", "dave", "nobody", "daemon"]);
        // With ALL, alice and carol are ALL's (carol's closing session is a session); the
        // orphans add dave.
        let with_all = plan(&Targets::All, &ex, &login_node(), opts);
        let all: Vec<(String, String)> = with_all
            .users
            .iter()
            .map(|u| (u.account.as_ref().unwrap().user.clone(), u.requested.to_string()))
            .collect();
        assert_eq!(
            all,
            [("alice".into(), "ALL".into()), ("carol".into(), "ALL".into()), ("dave".into(), "--orphans".into())]
        );
    }

    #[test]
    fn a_lingering_user_is_logged_off_but_not_swept() {
        let snap = edited(login_node(), |sessions, _, _| sessions.push(s("9", "erin", None, Some(1006))));
        let snap = snap.with_lingering(vec![1006]);
        let p = plan(&targets("erin"), &[], &snap, PlanOptions::default());
        assert_eq!(p.users[0].sessions.len(), 1);
        assert_eq!(p.users[0].terminate, None);
        assert_eq!(p.users[0].notes, [LINGERS]);
        // Named with no session: no fallback either.
        let p = plan(&targets("erin"), &[], &login_node(), PlanOptions::default());
        assert_eq!((p.users[0].status, p.users[0].terminate), (UserStatus::ProcessesOnly, None));
    }

    #[test]
    fn a_session_is_live_unless_logged_out() {
        let windows = Policy { can_disconnect: true, ..Policy::default() };
        let linux = Policy::default();
        for (state, on_windows, on_linux) in [
            (SessionState::Active, true, true),
            (SessionState::Closing, false, false),
            // Windows: the user can reconnect; utmp: the leader died, the user is gone.
            (SessionState::Disconnected, true, false),
            (SessionState::LoggedIn, true, true),
        ] {
            let session = Session::new("1", "x", state);
            assert_eq!((is_live(&session, &windows), is_live(&session, &linux)), (on_windows, on_linux), "{state}");
        }
    }

    #[test]
    fn services_session_processes_need_include_services() {
        // Session 0 is Windows' services session.
        let snap = edited(linux(), |_, processes, policy| {
            processes.push(p(200, "erin", Some(1005), Some("0")));
            policy.services_session = Some("0".into());
        });
        let p1 = plan(&targets("erin"), &[], &snap, PlanOptions::default());
        assert_eq!(p1.users[0].status, UserStatus::NotLoggedOn);
        let p2 = plan(&targets("erin"), &[], &snap, PlanOptions { include_services: true, ..PlanOptions::default() });
        assert_eq!(p2.users[0].status, UserStatus::ProcessesOnly);
        assert_eq!(p2.users[0].pids, [200]);
    }
}
