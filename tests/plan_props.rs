//! Property tests of the planner: for random machines (sessions, processes, the tool's own
//! session and pids) and random target and exclude lists, the plan never includes a
//! protected account, a user who was not targeted or was excluded, session 0, or the tool's
//! own session or processes. The machines report accounts by uid (Linux) or SID (Windows),
//! and some records spell a name otherwise or carry the name alone: one account is still
//! planned once, with all of its processes.

use logoff_users::backend::Policy;
use logoff_users::identity::{Account, AccountId};
use logoff_users::model::{Process, Session, SessionState};
use logoff_users::testing::{Snapshot, account_protection, plan};
use logoff_users::userlist::{Requested, Targets, UserName, parse_exclude, parse_targets};
use logoff_users::{PlanOptions, SessionFilter};
use proptest::prelude::*;

/// (name, domain, uid): a pool with protected and look-alike accounts.
const ACCOUNTS: &[(&str, Option<&str>, u32)] = &[
    ("root", None, 0),
    ("daemon", None, 1),
    ("SYSTEM", Some("NT AUTHORITY"), 18),
    ("NETWORK SERVICE", Some("NT AUTHORITY"), 20),
    ("DWM-1", Some("Window Manager"), 90),
    ("UMFD-2", Some("Font Driver Host"), 91),
    ("alice", Some("CORP"), 1001),
    ("alice", Some("PC1"), 1002),
    ("Alice2", Some("CORP"), 1003),
    ("bob", None, 1004),
    ("John Smith", Some("CORP"), 1005),
    ("émile", Some("CORP"), 1006),
    ("al", None, 1007),
];

/// Names as an admin might type them, including case and domain variants.
const NAMES: &[&str] = &[
    "root",
    "ROOT",
    "daemon",
    "system",
    "DWM-1",
    "alice",
    "ALICE",
    "CORP\\alice",
    ".\\alice",
    "alice@corp.example.com",
    "pc1\\Alice",
    "alice2",
    "bob",
    "John Smith",
    "ÉMILE",
    "al",
    "nosuch",
    "OTHER\\bob",
];

/// The SID of an account of [`ACCOUNTS`] on a Windows machine: the well-known SIDs of the
/// service and virtual accounts, a domain SID for the others.
fn sid_of(uid: u32) -> String {
    match uid {
        18 => "S-1-5-18".to_string(),
        20 => "S-1-5-20".to_string(),
        90 => "S-1-5-90-0-1".to_string(),
        91 => "S-1-5-96-0-2".to_string(),
        _ => format!("S-1-5-21-7-7-7-{uid}"),
    }
}

/// The accounts whose processes are never terminated: root, and Windows' service and
/// virtual accounts.
fn never_terminated(id: &AccountId) -> bool {
    id.uid() == Some(0)
        || id
            .sid_str()
            .is_some_and(|s| ["S-1-5-18", "S-1-5-20", "S-1-5-90-", "S-1-5-96-"].iter().any(|w| s.starts_with(w)))
}

/// A name as some record spells it: 0 as in [`ACCOUNTS`], 1 in upper case, 2 in lower case.
fn spelled(name: &str, spelling: u8) -> String {
    match spelling {
        1 => name.to_uppercase(),
        2 => name.to_lowercase(),
        _ => name.to_string(),
    }
}

fn session(i: usize, acct: usize, state: usize, windows: bool, spelling: u8) -> Session {
    let (user, domain, uid) = ACCOUNTS[acct];
    Session {
        domain: domain.map(|d| spelled(d, spelling)),
        uid: (!windows).then_some(uid),
        sid: windows.then(|| sid_of(uid)),
        // The test's own record of whose session this is.
        station: Some(format!("acct{acct}")),
        ..Session::new(i.to_string(), spelled(user, spelling), SessionState::ALL[state % SessionState::ALL.len()])
    }
}

/// A process; with `name_only`, it carries its owner's name (spelled another way) and no
/// uid or SID, as a backend that could not read more would report it.
fn process(
    pid: u32,
    acct: usize,
    session: Option<usize>,
    euid: Option<usize>,
    windows: bool,
    name_only: bool,
) -> Process {
    let (user, domain, uid) = ACCOUNTS[acct];
    let strong = !name_only;
    Process {
        user: Some(spelled(user, if name_only { 1 } else { 0 })),
        domain: domain.map(str::to_string),
        uid: (strong && !windows).then_some(uid),
        euid: euid.filter(|_| strong && !windows).map(|e| ACCOUNTS[e].2),
        sid: (strong && windows).then(|| sid_of(uid)),
        session_id: session.map(|s| s.to_string()),
        // The test's own record of whose process this is.
        ..Process::new(pid, format!("acct{acct}"))
    }
}

/// The true account of a generated record, from the test's own mark.
fn truth(mark: &str) -> usize {
    mark.trim_start_matches("acct").parse().unwrap()
}

prop_compose! {
    fn machine()(
        sessions in prop::collection::vec((0..ACCOUNTS.len(), 0..15usize, prop::option::of(0..6000u64), 0..3u8), 0..12),
        processes in prop::collection::vec((0..ACCOUNTS.len(), prop::option::of(0..12usize), prop::option::of(0..ACCOUNTS.len()), prop::bool::weighted(0.2)), 0..30),
        current in prop::option::of(0..12usize),
        own in prop::collection::vec(0..30usize, 0..3),
        sweep in any::<bool>(),
        windows in any::<bool>(),
        lingering in prop::collection::vec(0..ACCOUNTS.len(), 0..3),
    ) -> Snapshot {
        let sessions: Vec<Session> = sessions
            .iter()
            .enumerate()
            .map(|(i, (a, st, idle, sp))| Session { idle_seconds: *idle, ..session(i, *a, *st, windows, *sp) })
            .collect();
        let processes: Vec<Process> = processes.iter().enumerate()
            .map(|(i, (a, s, e, n))| process(1000 + i as u32, *a, *s, *e, windows, *n)).collect();
        Snapshot::new(
            sessions,
            processes,
            current.map(|c| c.to_string()),
            own.iter().map(|o| 1000 + *o as u32).collect(),
            Policy {
                sweep_after_logoff: sweep,
                uid_min: Some(1000),
                local_domain: Some("PC1".into()),
                services_session: Some("0".into()),
                ..Policy::default()
            },
        )
        .with_lingering(lingering.iter().map(|a| ACCOUNTS[*a].2).collect())
    }
}

fn targeted_by(names: &[UserName], a: &Account) -> bool {
    names.iter().any(|n| n.matches(&a.user, a.domain.as_deref(), Some("PC1")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// The same account, reported under two spellings (another case, or by name alone), is
    /// one identity; two accounts are never one.
    #[test]
    fn identities_follow_the_accounts_not_their_spelling(snap in machine()) {
        let ids = snap.identities();
        let mut records: Vec<(usize, AccountId, bool)> = Vec::new();
        for s in &snap.sessions {
            records.push((truth(s.station.as_deref().unwrap()), snap.account_of(s).id, true));
        }
        for p in &snap.processes {
            let strong = p.uid.is_some() || p.sid.is_some();
            records.push((truth(&p.name), ids.process_account(p).unwrap().id, strong));
        }
        for (k, id, _) in &records {
            // An account that some record names by uid or SID is known by it everywhere.
            if records.iter().any(|(k2, _, strong)| k2 == k && *strong) {
                prop_assert!(matches!(id, AccountId::Uid(_) | AccountId::Sid(_)), "acct{k} known by name only: {id:?}");
            }
            for (k2, id2, _) in &records {
                if k != k2 {
                    prop_assert_ne!(id, id2, "acct{} and acct{} taken for one account", k, k2);
                } else if matches!(id, AccountId::Uid(_) | AccountId::Sid(_)) && matches!(id2, AccountId::Uid(_) | AccountId::Sid(_)) {
                    prop_assert_eq!(id, id2, "acct{} has two ids", k);
                }
            }
        }
    }

    #[test]
    fn plan_never_touches_what_it_must_not(
        snap in machine(),
        all in any::<bool>(),
        picks in prop::collection::vec(0..NAMES.len(), 1..4),
        excludes in prop::collection::vec(0..NAMES.len(), 0..2),
        force in any::<bool>(),
        fallback in any::<bool>(),
        disconnected_only in any::<bool>(),
        idle_over in prop::option::of(0..5000u64),
        disconnect in any::<bool>(),
    ) {
        let list = if all { "ALL".to_string() } else { picks.iter().map(|i| NAMES[*i]).collect::<Vec<_>>().join(",") };
        let targets = parse_targets(&[list]).unwrap();
        let ex_list: Vec<String> = excludes.iter().map(|i| NAMES[*i].to_string()).collect();
        let exclude = if ex_list.is_empty() { vec![] } else { parse_exclude(&[ex_list.join(",")]).unwrap() };
        let filter = SessionFilter { disconnected_only, idle_over };
        let opts =
            PlanOptions { force, process_fallback: fallback, include_services: false, filter, disconnect, orphans: false };
        let p = plan(&targets, &exclude, &snap, opts);

        for u in &p.users {
            let Some(a) = &u.account else { continue };
            // Never an account that was not asked for, nor an excluded one.
            if let Targets::Users(names) = &targets {
                prop_assert!(targeted_by(names, a), "{a:?} was not targeted");
            }
            prop_assert!(!targeted_by(&exclude, a), "{a:?} was excluded");
            // Never a protected account, unless named explicitly with --force.
            if account_protection(a, Some(1000)).is_some() {
                prop_assert!(force && !all, "protected {a:?} planned (force={force}, all={all})");
            }
            // Never the processes of root, SYSTEM or the service accounts.
            if never_terminated(&a.id) {
                prop_assert!(u.terminate.is_none());
            }
            if disconnect {
                prop_assert!(u.terminate.is_none(), "--disconnect terminated processes");
            }
            // A user who keeps a session outside the filter is never swept.
            let kept = snap.sessions.iter().any(|s| snap.account_of(s).id == a.id && filter.reject_reason(s).is_some());
            if kept {
                prop_assert!(u.terminate.is_none(), "{a:?} keeps a session but is swept");
            }
            for s in &u.sessions {
                prop_assert!(filter.reject_reason(s).is_none(), "session {} does not pass the filter", s.id);
                prop_assert!(s.id != "0", "session 0 planned");
                prop_assert!(Some(&s.id) != snap.current_session.as_ref(), "the tool's own session planned");
                prop_assert_eq!(&snap.account_of(s).id, &a.id);
            }
            for pid in &u.pids {
                prop_assert!(!snap.own_pids.contains(pid), "the tool's own pid {pid} planned");
            }
            // Never the processes of a lingering account.
            if a.id.uid().is_some_and(|uid| snap.lingering.contains(&uid)) {
                prop_assert!(u.terminate.is_none(), "lingering {a:?} is swept");
            }
            // Never sweep an account that runs the tool.
            if u.terminate.is_some() {
                let runs_tool = snap.processes.iter().any(|pr| snap.own_pids.contains(&pr.pid) && snap.identities().owns(&a.id, pr));
                prop_assert!(!runs_tool, "{a:?} runs the tool but is swept");
                let owns_current = snap.sessions.iter().any(|s| Some(&s.id) == snap.current_session.as_ref() && snap.account_of(s).id == a.id);
                prop_assert!(!owns_current, "{a:?} owns the tool's session but is swept");
            }
        }
        // One account is planned once, whatever spellings its records carry, and with it
        // every process it owns, those reported by its name alone too.
        let true_account = |a: &Account| -> Option<usize> {
            let s = snap.sessions.iter().find(|s| snap.account_of(s).id == a.id).map(|s| truth(s.station.as_deref().unwrap()));
            s.or_else(|| snap.processes.iter().find(|pr| snap.identities().process_account(pr).is_some_and(|x| x.id == a.id)).map(|pr| truth(&pr.name)))
        };
        let mut planned: Vec<usize> = p.users.iter().filter_map(|u| u.account.as_ref()).filter_map(true_account).collect();
        let n = planned.len();
        planned.sort_unstable();
        planned.dedup();
        prop_assert_eq!(planned.len(), n, "an account planned twice");
        for u in &p.users {
            let Some(a) = &u.account else { continue };
            let Some(k) = true_account(a) else { continue };
            for pr in &snap.processes {
                // An effective uid names an account by uid only.
                let by_euid = pr.euid.is_some_and(|e| a.id == AccountId::Uid(e));
                let theirs = truth(&pr.name) == k || by_euid;
                let spared = pr.zombie || snap.own_pids.contains(&pr.pid) || pr.session_id.as_deref() == Some("0");
                prop_assert_eq!(u.pids.contains(&pr.pid), theirs && !spared, "pid {} of acct{}", pr.pid, k);
            }
        }
        // Each session is planned at most once.
        let mut ids: Vec<&str> = p.users.iter().flat_map(|u| u.sessions.iter().map(|s| s.id.as_str())).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
    }

    /// `--orphans` (alone or with ALL) takes exactly the accounts that own processes and have
    /// no live session, less root and the service accounts, the accounts outside
    /// UID_MIN..UID_MAX unless `--force`, the excluded, lingering and the tool's own ones.
    #[test]
    fn orphans_are_exactly_the_accounts_without_a_live_session(
        snap in machine(),
        all in any::<bool>(),
        excludes in prop::collection::vec(0..NAMES.len(), 0..2),
        force in any::<bool>(),
        uid_max in prop::option::of(1000..1010u32),
    ) {
        let snap = {
            let mut policy = snap.policy.clone();
            policy.uid_max = uid_max;
            Snapshot::new(snap.sessions.clone(), snap.processes.clone(), snap.current_session.clone(), snap.own_pids.clone(), policy)
                .with_lingering(snap.lingering.clone())
        };
        let targets = if all { Targets::All } else { Targets::Users(Vec::new()) };
        let ex_list: Vec<String> = excludes.iter().map(|i| NAMES[*i].to_string()).collect();
        let exclude = if ex_list.is_empty() { vec![] } else { parse_exclude(&[ex_list.join(",")]).unwrap() };
        let opts = PlanOptions { force, orphans: true, ..PlanOptions::default() };
        let p = plan(&targets, &exclude, &snap, opts);
        let ids = snap.identities();
        let live = |id: &AccountId| snap.sessions.iter().any(|s| {
            snap.account_of(s).id == *id && !matches!(s.state, SessionState::Closing | SessionState::Disconnected)
        });
        let lingers = |id: &AccountId| id.uid().is_some_and(|u| snap.lingering.contains(&u));
        let runs_tool = |id: &AccountId| snap.processes.iter().any(|pr| snap.own_pids.contains(&pr.pid) && ids.owns(id, pr));
        let outside = |a: &Account| {
            account_protection(a, Some(1000)).is_some() || matches!((a.id.uid(), uid_max), (Some(u), Some(m)) if u > m)
        };
        let not_orphans: Vec<AccountId> = p.users.iter()
            .filter(|u| u.requested != Requested::Orphans)
            .filter_map(|u| u.account.as_ref().map(|a| a.id.clone()))
            .collect();
        let orphans: Vec<&Account> = p.users.iter()
            .filter(|u| u.requested == Requested::Orphans)
            .filter_map(|u| u.account.as_ref())
            .collect();
        for u in p.users.iter().filter(|u| u.requested == Requested::Orphans) {
            let a = u.account.as_ref().unwrap();
            prop_assert_eq!(u.terminate.map(|t| t.as_str()), Some("orphan"));
            prop_assert!(!live(&a.id), "{a:?} has a live session");
            prop_assert!(!never_terminated(&a.id), "{a:?} is never terminated");
            prop_assert!(force || !outside(a), "system account {a:?} without --force");
            prop_assert!(!targeted_by(&exclude, a), "{a:?} was excluded");
            prop_assert!(!lingers(&a.id), "{a:?} lingers");
            prop_assert!(!runs_tool(&a.id), "{a:?} runs the tool");
            prop_assert!(!not_orphans.contains(&a.id), "{a:?} planned twice");
            prop_assert!(!u.pids.is_empty() || !u.sessions.is_empty(), "{a:?} has nothing to end");
            for s in &u.sessions {
                prop_assert_eq!(&snap.account_of(s).id, &a.id);
            }
        }
        // And every such account is found.
        for pr in snap.processes.iter().filter(|pr| !pr.zombie && !snap.own_pids.contains(&pr.pid) && pr.session_id.as_deref() != Some("0")) {
            let a = ids.process_account(pr).unwrap();
            let wanted = !live(&a.id) && !never_terminated(&a.id) && (force || !outside(&a))
                && !targeted_by(&exclude, &a) && !lingers(&a.id) && !runs_tool(&a.id) && !not_orphans.contains(&a.id);
            prop_assert_eq!(orphans.iter().any(|o| o.id == a.id), wanted, "pid {} of {:?}", pr.pid, a);
        }
    }
}
