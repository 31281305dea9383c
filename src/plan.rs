//! Planning: from the targets, the exclude list and what a backend listed, decide which
//! sessions to log off and whose processes to terminate. Pure: data in, a [`Plan`] out.
//!
//! What is refused here (a protected account named without `--force`, the tool's own
//! session) stops the run with exit code 2 before anything is done. ALL silently leaves
//! protected sessions out and says so in [`Plan::skipped`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::Policy;
use crate::model::{Account, Process, Session};
use crate::protect::{Protection, account_protection, session_protection};
use crate::userlist::{Targets, UserName};

/// Options that shape a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Allow explicitly named protected accounts (never session 0 or the tool's own).
    pub force: bool,
    /// Terminate the processes of a named user who has processes but no session.
    pub process_fallback: bool,
    /// Include the account's processes in the services session 0 (Windows).
    pub include_services: bool,
    /// Which sessions to act on (`--disconnected-only`, `--idle-over`).
    pub filter: SessionFilter,
    /// Disconnect sessions instead of logging them off (`--disconnect`): no process is
    /// terminated, since the point is to keep the user's work.
    pub disconnect: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            force: false,
            process_fallback: true,
            include_services: false,
            filter: SessionFilter::default(),
            disconnect: false,
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

/// What a backend listed: the input of the planner.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The user sessions.
    pub sessions: Vec<Session>,
    /// The processes.
    pub processes: Vec<Process>,
    /// The session the tool runs in.
    pub current_session: Option<String>,
    /// The tool's pid and its ancestors.
    pub own_pids: Vec<u32>,
    /// The platform's rules.
    pub policy: Policy,
}

/// Why a user's processes are terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminateReason {
    /// The user has processes but no session: the process-termination fallback.
    Fallback,
    /// After the sessions are ended, every remaining process of the user (Linux).
    Sweep,
}

/// Where a target user stands before anything is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// The user has at least one session.
    LoggedOn,
    /// The user has processes but no session.
    ProcessesOnly,
    /// The user has neither: nothing to do, and that counts as done.
    NotLoggedOn,
}

/// The plan for one target account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPlan {
    /// The name as requested (`CORP\jsmith`, `jsmith`), or `ALL`.
    pub requested: String,
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
    pub requested: String,
    /// The account, `DOMAIN\user`.
    pub user: String,
    /// The session, when a session is the problem.
    pub session_id: Option<String>,
    /// Why, and how to proceed where there is a way.
    pub reason: String,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One entry per target account, in the order requested.
    pub users: Vec<UserPlan>,
    /// Sessions left alone (ALL's protected sessions, excluded users).
    pub skipped: Vec<Skipped>,
    /// Refused targets. Non-empty means: do nothing, exit 2.
    pub refused: Vec<Refusal>,
}

/// A stable identity for grouping sessions and processes by account.
fn account_key(a: &Account) -> String {
    if let Some(uid) = a.uid {
        return format!("uid:{uid}");
    }
    if let Some(sid) = &a.sid {
        return format!("sid:{}", sid.to_ascii_uppercase());
    }
    let fold = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<String>();
    format!("name:{}\\{}", fold(a.domain.as_deref().unwrap_or("")), fold(&a.user))
}

fn process_account(p: &Process) -> Option<Account> {
    Some(Account { user: p.user.clone()?, domain: p.domain.clone(), uid: p.uid, sid: p.sid.clone() })
}

fn is_excluded(account: &Account, exclude: &[UserName], policy: &Policy) -> bool {
    exclude.iter().any(|x| x.matches(&account.user, account.domain.as_deref(), policy.local_domain.as_deref()))
}

/// Accounts that must never have their processes swept, even with `--force`: a sweep of
/// root or SYSTEM would take the machine down.
fn never_sweep(account: &Account) -> bool {
    account.uid == Some(0)
        || account
            .sid
            .as_deref()
            .is_some_and(|s| ["S-1-5-18", "S-1-5-19", "S-1-5-20"].iter().any(|w| w.eq_ignore_ascii_case(s)))
}

struct Ctx<'a> {
    snap: &'a Snapshot,
    opts: PlanOptions,
}

impl Ctx<'_> {
    fn pids_of(&self, account: &Account) -> Vec<u32> {
        self.snap
            .processes
            .iter()
            .filter(|p| {
                !p.zombie
                    && p.is_owned_by(account)
                    && !self.snap.own_pids.contains(&p.pid)
                    && (self.opts.include_services || p.session_id.as_deref() != Some("0"))
            })
            .map(|p| p.pid)
            .collect()
    }

    /// The tool's own processes that this account owns: sweeping it would kill the tool.
    fn runs_the_tool(&self, account: &Account) -> Option<u32> {
        self.snap
            .processes
            .iter()
            .find(|p| self.snap.own_pids.contains(&p.pid) && p.is_owned_by(account))
            .map(|p| p.pid)
    }

    /// `kept` counts the account's sessions that the filter leaves running: their
    /// processes must not be swept.
    fn user_plan(&self, requested: &str, account: Account, sessions: Vec<Session>, kept: usize) -> UserPlan {
        let pids = self.pids_of(&account);
        // A user whose sessions the filter all left running still has a session.
        let status = if !sessions.is_empty() || kept > 0 {
            UserStatus::LoggedOn
        } else if !pids.is_empty() {
            UserStatus::ProcessesOnly
        } else {
            UserStatus::NotLoggedOn
        };
        let mut notes = Vec::new();
        let wanted = match status {
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
                notes.push(format!("{} process(es) but no session; left alone (--no-process-fallback)", pids.len()));
                None
            }
            _ => None,
        };
        let terminate = wanted.filter(|_| {
            if never_sweep(&account) {
                notes.push("the processes of root or SYSTEM are never terminated".to_string());
                return false;
            }
            if let Some(pid) = self.runs_the_tool(&account) {
                notes.push(format!("processes not terminated: this account runs this tool (pid {pid})"));
                return false;
            }
            true
        });
        UserPlan { requested: requested.to_string(), account: Some(account), status, sessions, pids, terminate, notes }
    }
}

/// Plans the run.
///
/// Named targets are resolved against the sessions' and processes' accounts: a bare name
/// can resolve to several accounts (`CORP\jsmith` and `PC1\jsmith`), each planned on its
/// own. A named account that is protected is refused unless `opts.force`; a named account
/// whose session runs the tool is always refused. ALL takes every session's account but
/// the protected ones.
pub fn plan(targets: &Targets, exclude: &[UserName], snap: &Snapshot, opts: PlanOptions) -> Plan {
    let ctx = Ctx { snap, opts };
    let policy = &snap.policy;
    let uid_min = policy.uid_min;
    let current = snap.current_session.as_deref();
    let mut out = Plan::default();

    match targets {
        Targets::All => {
            let mut groups: BTreeMap<String, (Account, Vec<Session>)> = BTreeMap::new();
            let mut kept: BTreeMap<String, usize> = BTreeMap::new();
            let mut order = Vec::new();
            for s in &snap.sessions {
                let account = s.account();
                if let Some(p) = session_protection(s, current, uid_min) {
                    out.skipped.push(Skipped {
                        session_id: s.id.clone(),
                        user: account.display_name(),
                        reason: p.reason().to_string(),
                    });
                    // The account keeps this session (session 0, or the tool's own), so its
                    // processes must not be swept.
                    *kept.entry(account_key(&account)).or_default() += 1;
                    continue;
                }
                if is_excluded(&account, exclude, policy) {
                    out.skipped.push(Skipped {
                        session_id: s.id.clone(),
                        user: account.display_name(),
                        reason: "excluded".to_string(),
                    });
                    continue;
                }
                let key = account_key(&account);
                if let Some(reason) = opts.filter.reject_reason(s) {
                    out.skipped.push(Skipped { session_id: s.id.clone(), user: account.display_name(), reason });
                    *kept.entry(key).or_default() += 1;
                    continue;
                }
                if !groups.contains_key(&key) {
                    order.push(key.clone());
                }
                groups.entry(key).or_insert_with(|| (account, Vec::new())).1.push(s.clone());
            }
            for key in order {
                let (account, sessions) = groups.remove(&key).expect("grouped");
                let up = ctx.user_plan("ALL", account, sessions, kept.get(&key).copied().unwrap_or(0));
                out.users.push(up);
            }
        }
        Targets::Users(names) => {
            // Two names can resolve to one account (`alice` and `CORP\alice`): plan it once.
            let mut planned = std::collections::HashSet::new();
            for name in names {
                let requested = name.to_string();
                let local = policy.local_domain.as_deref();
                let mut groups: BTreeMap<String, (Account, Vec<Session>)> = BTreeMap::new();
                let mut order = Vec::new();
                let mut add = |account: Account, session: Option<&Session>| {
                    let key = account_key(&account);
                    if !groups.contains_key(&key) {
                        order.push(key.clone());
                    }
                    let entry = groups.entry(key).or_insert_with(|| (account, Vec::new()));
                    if let Some(s) = session {
                        entry.1.push(s.clone());
                    }
                };
                for s in &snap.sessions {
                    if name.matches(&s.user, s.domain.as_deref(), local) {
                        add(s.account(), Some(s));
                    }
                }
                for p in &snap.processes {
                    if let Some(a) = process_account(p) {
                        if name.matches(&a.user, a.domain.as_deref(), local) {
                            add(a, None);
                        }
                    }
                }
                if order.is_empty() {
                    // A protected name is refused even when it is not logged on: the admin
                    // asked for something the tool never does without --force.
                    let named = Account { user: name.name.clone(), domain: None, uid: None, sid: None };
                    if let Some(p) = account_protection(&named, None).filter(|_| !opts.force) {
                        out.refused.push(Refusal {
                            requested: requested.clone(),
                            user: name.name.clone(),
                            session_id: None,
                            reason: format!("{}; name it with --force to log it off anyway", p.reason()),
                        });
                        continue;
                    }
                    out.users.push(UserPlan {
                        requested: requested.clone(),
                        account: None,
                        status: UserStatus::NotLoggedOn,
                        sessions: Vec::new(),
                        pids: Vec::new(),
                        terminate: None,
                        notes: Vec::new(),
                    });
                    continue;
                }
                for key in order {
                    let (account, sessions) = groups.remove(&key).expect("grouped");
                    if !planned.insert(key) {
                        continue;
                    }
                    if is_excluded(&account, exclude, policy) {
                        for s in &sessions {
                            out.skipped.push(Skipped {
                                session_id: s.id.clone(),
                                user: account.display_name(),
                                reason: "excluded".to_string(),
                            });
                        }
                        continue;
                    }
                    let mut refused = false;
                    if let Some(p) = account_protection(&account, uid_min) {
                        if !opts.force {
                            out.refused.push(Refusal {
                                requested: requested.clone(),
                                user: account.display_name(),
                                session_id: None,
                                reason: format!("{}; name it with --force to log it off anyway", p.reason()),
                            });
                            refused = true;
                        }
                    }
                    for s in &sessions {
                        if let Some(Protection::Always(reason)) = session_protection(s, current, uid_min) {
                            out.refused.push(Refusal {
                                requested: requested.clone(),
                                user: account.display_name(),
                                session_id: Some(s.id.clone()),
                                reason: format!("{reason}; it is never logged off"),
                            });
                            refused = true;
                        }
                    }
                    if !refused {
                        let (selected, left): (Vec<Session>, Vec<Session>) =
                            sessions.into_iter().partition(|s| opts.filter.reject_reason(s).is_none());
                        for s in &left {
                            out.skipped.push(Skipped {
                                session_id: s.id.clone(),
                                user: account.display_name(),
                                reason: opts.filter.reject_reason(s).unwrap_or_default(),
                            });
                        }
                        out.users.push(ctx.user_plan(&requested, account, selected, left.len()));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionState;
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
        Snapshot {
            sessions: vec![
                s("1", "alice", None, Some(1001)),
                s("2", "alice", None, Some(1001)),
                s("3", "bob", None, Some(1002)),
                s("4", "root", None, Some(0)),
                s("5", "admin", None, Some(1003)),
            ],
            processes: vec![
                p(100, "alice", Some(1001), None),
                p(101, "bob", Some(1002), None),
                p(102, "carol", Some(1004), None),
                p(103, "admin", Some(1003), None),
                p(104, "daemon", Some(1), None),
            ],
            current_session: Some("5".into()),
            own_pids: vec![103],
            policy: Policy { sweep_after_logoff: true, uid_min: Some(1000), local_domain: None, ..Policy::default() },
        }
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
        assert!(plan.users.iter().all(|u| u.account.as_ref().unwrap().uid != Some(0)));
        assert!(plan.users.iter().all(|u| u.sessions.iter().all(|s| s.id != "5")));
    }

    #[test]
    fn all_spares_other_sessions_of_the_tools_user_from_the_sweep() {
        let mut snap = linux();
        snap.sessions.push(s("6", "admin", None, Some(1003)));
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
        let snap = Snapshot { sessions: vec![s("2", "jsmith", Some("CORP"), None)], ..Snapshot::default() };
        let plan = super::plan(&targets("jsmith,CORP\\jsmith"), &[], &snap, PlanOptions::default());
        assert_eq!(plan.users.len(), 1);
        assert_eq!(plan.users[0].requested, "jsmith");
    }

    #[test]
    fn filters_select_sessions_and_spare_the_rest_from_the_sweep() {
        let mut snap = linux();
        snap.sessions[0].state = SessionState::Closing;
        snap.sessions[0].idle_seconds = Some(4000);
        snap.sessions[1].idle_seconds = Some(10);
        snap.sessions[2].state = SessionState::Disconnected;
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
        let snap = Snapshot {
            sessions: vec![s("2", "jsmith", Some("CORP"), None), s("3", "jsmith", Some("PC1"), None)],
            processes: vec![],
            current_session: None,
            own_pids: vec![],
            policy: Policy {
                sweep_after_logoff: false,
                uid_min: None,
                local_domain: Some("PC1".into()),
                ..Policy::default()
            },
        };
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

    #[test]
    fn services_session_processes_need_include_services() {
        let mut snap = linux();
        snap.processes.push(p(200, "erin", Some(1005), Some("0")));
        let p1 = plan(&targets("erin"), &[], &snap, PlanOptions::default());
        assert_eq!(p1.users[0].status, UserStatus::NotLoggedOn);
        let p2 = plan(&targets("erin"), &[], &snap, PlanOptions { include_services: true, ..PlanOptions::default() });
        assert_eq!(p2.users[0].status, UserStatus::ProcessesOnly);
        assert_eq!(p2.users[0].pids, [200]);
    }
}
