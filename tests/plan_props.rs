//! Property tests of the planner: for random machines (sessions, processes, the tool's own
//! session and pids) and random target and exclude lists, the plan never includes a
//! protected account, a user who was not targeted or was excluded, session 0, or the tool's
//! own session or processes.

use logoff_users::backend::Policy;
use logoff_users::model::{Account, Process, Session, SessionState};
use logoff_users::plan::{PlanOptions, SessionFilter, Snapshot, plan};
use logoff_users::protect::account_protection;
use logoff_users::userlist::{Targets, UserName, parse_exclude, parse_targets};
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

fn session(i: usize, acct: usize, state: usize) -> Session {
    let (user, domain, uid) = ACCOUNTS[acct];
    Session {
        domain: domain.map(str::to_string),
        uid: Some(uid),
        ..Session::new(i.to_string(), user, SessionState::ALL[state % SessionState::ALL.len()])
    }
}

fn process(pid: u32, acct: usize, session: Option<usize>, euid: Option<usize>) -> Process {
    let (user, domain, uid) = ACCOUNTS[acct];
    Process {
        user: Some(user.to_string()),
        domain: domain.map(str::to_string),
        uid: Some(uid),
        euid: euid.map(|e| ACCOUNTS[e].2),
        session_id: session.map(|s| s.to_string()),
        ..Process::new(pid, "p")
    }
}

prop_compose! {
    fn machine()(
        sessions in prop::collection::vec((0..ACCOUNTS.len(), 0..15usize, prop::option::of(0..6000u64)), 0..12),
        processes in prop::collection::vec((0..ACCOUNTS.len(), prop::option::of(0..12usize), prop::option::of(0..ACCOUNTS.len())), 0..30),
        current in prop::option::of(0..12usize),
        own in prop::collection::vec(0..30usize, 0..3),
        sweep in any::<bool>(),
    ) -> Snapshot {
        let sessions: Vec<Session> = sessions
            .iter()
            .enumerate()
            .map(|(i, (a, st, idle))| Session { idle_seconds: *idle, ..session(i, *a, *st) })
            .collect();
        let processes: Vec<Process> = processes.iter().enumerate()
            .map(|(i, (a, s, e))| process(1000 + i as u32, *a, *s, *e)).collect();
        Snapshot {
            sessions,
            processes,
            current_session: current.map(|c| c.to_string()),
            own_pids: own.iter().map(|o| 1000 + *o as u32).collect(),
            policy: Policy { sweep_after_logoff: sweep, uid_min: Some(1000), local_domain: Some("PC1".into()), ..Policy::default() },
        }
    }
}

fn targeted_by(names: &[UserName], a: &Account) -> bool {
    names.iter().any(|n| n.matches(&a.user, a.domain.as_deref(), Some("PC1")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

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
        let opts = PlanOptions { force, process_fallback: fallback, include_services: false, filter, disconnect };
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
            // Never the processes of root.
            if a.uid == Some(0) {
                prop_assert!(u.terminate.is_none());
            }
            if disconnect {
                prop_assert!(u.terminate.is_none(), "--disconnect terminated processes");
            }
            // A user who keeps a session outside the filter is never swept.
            let kept = snap.sessions.iter().any(|s| &s.account() == a && filter.reject_reason(s).is_some());
            if kept {
                prop_assert!(u.terminate.is_none(), "{a:?} keeps a session but is swept");
            }
            for s in &u.sessions {
                prop_assert!(filter.reject_reason(s).is_none(), "session {} does not pass the filter", s.id);
                prop_assert!(s.id != "0", "session 0 planned");
                prop_assert!(Some(&s.id) != snap.current_session.as_ref(), "the tool's own session planned");
                prop_assert_eq!(&s.account(), a);
            }
            for pid in &u.pids {
                prop_assert!(!snap.own_pids.contains(pid), "the tool's own pid {pid} planned");
            }
            // Never sweep an account that runs the tool.
            if u.terminate.is_some() {
                let runs_tool = snap.processes.iter().any(|pr| snap.own_pids.contains(&pr.pid) && pr.is_owned_by(a));
                prop_assert!(!runs_tool, "{a:?} runs the tool but is swept");
                let owns_current = snap.sessions.iter().any(|s| Some(&s.id) == snap.current_session.as_ref() && &s.account() == a);
                prop_assert!(!owns_current, "{a:?} owns the tool's session but is swept");
            }
        }
        // Each session is planned at most once.
        let mut ids: Vec<&str> = p.users.iter().flat_map(|u| u.sessions.iter().map(|s| s.id.as_str())).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
    }
}
