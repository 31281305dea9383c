//! Protected accounts and sessions: what ALL never includes, what a named target may only
//! reach with `--force` (or never), and whose processes are never terminated.
//!
//! Pure data in, a verdict out; the planner applies it, and the Windows backend checks the
//! same SID list again right before it terminates anything.

use crate::backend::Policy;
use crate::identity::Account;
use crate::model::Session;
use crate::userlist::eq_fold;

/// Why an account or session is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protection {
    /// Never touched, not even with `--force`: the services session and the session the
    /// tool runs in.
    Always(String),
    /// Touched only when named explicitly with `--force`: root/SYSTEM, the service accounts,
    /// `DWM-*`/`UMFD-*`, and system accounts below `UID_MIN`.
    UnlessForced(String),
}

impl Protection {
    /// The reason, for messages.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Protection::Always(r) | Protection::UnlessForced(r) => r,
        }
    }
}

/// The well-known SIDs of the accounts Windows runs services as, with their names.
pub(crate) const SERVICE_SIDS: [(&str, &str); 3] =
    [("S-1-5-18", "SYSTEM"), ("S-1-5-19", "LOCAL SERVICE"), ("S-1-5-20", "NETWORK SERVICE")];

/// The SID prefixes of the per-session virtual accounts: `Window Manager\DWM-<n>`
/// (`S-1-5-90-0-<n>`) and `Font Driver Host\UMFD-<n>` (`S-1-5-96-0-<n>`).
pub(crate) const VIRTUAL_ACCOUNT_SID_PREFIXES: [&str; 2] = ["S-1-5-90-", "S-1-5-96-"];

/// The service account a SID names, if it is one of [`SERVICE_SIDS`].
pub(crate) fn service_account(sid: &str) -> Option<&'static str> {
    SERVICE_SIDS.iter().find(|(s, _)| s.eq_ignore_ascii_case(sid)).map(|(_, name)| *name)
}

/// Whether `sid` is one of the [`SERVICE_SIDS`] or a DWM/UMFD virtual account.
pub(crate) fn is_service_sid(sid: &str) -> bool {
    let upper = sid.to_ascii_uppercase();
    service_account(&upper).is_some() || VIRTUAL_ACCOUNT_SID_PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// Whether an account's processes must never be terminated, even with `--force`: ending
/// every process of root, SYSTEM or a service account would take the machine down.
pub(crate) fn never_terminate(account: &Account) -> bool {
    account.id.uid() == Some(0) || account.id.sid_str().is_some_and(is_service_sid)
}

/// Whether an account is protected, and why. `uid_min` is login.defs `UID_MIN` where the
/// OS has uids.
pub(crate) fn account_protection(account: &Account, uid_min: Option<u32>) -> Option<Protection> {
    let forced = |r: String| Some(Protection::UnlessForced(r));
    if account.id.uid() == Some(0) || eq_fold(&account.user, "root") {
        return forced("root (uid 0) is protected".into());
    }
    if let Some(sid) = account.id.sid_str() {
        if let Some(name) = service_account(sid) {
            return forced(format!("{name} ({sid}) is a protected service account"));
        }
    }
    for name in ["SYSTEM", "LOCAL SERVICE", "NETWORK SERVICE", "LocalService", "NetworkService"] {
        if eq_fold(&account.user, name) {
            return forced(format!("{} is a protected service account", account.user));
        }
    }
    for prefix in ["DWM-", "UMFD-"] {
        let head: String = account.user.chars().take(prefix.len()).collect();
        if eq_fold(&head, prefix) {
            return forced(format!("{} is a protected system account ({prefix}*)", account.user));
        }
    }
    if let (Some(uid), Some(min)) = (account.id.uid(), uid_min) {
        if uid < min {
            return forced(format!("{} (uid {uid}) is a system account below UID_MIN {min}", account.user));
        }
    }
    None
}

/// Whether a session (of `account`) is protected, and why: the platform's services
/// session, the session the tool runs in, then its account's protection.
pub(crate) fn session_protection(
    session: &Session,
    account: &Account,
    current: Option<&str>,
    policy: &Policy,
) -> Option<Protection> {
    if policy.is_services_session(&session.id) {
        return Some(Protection::Always(format!("session {} is the services session", session.id)));
    }
    if current == Some(session.id.as_str()) {
        return Some(Protection::Always(format!("session {} is the one running this tool", session.id)));
    }
    account_protection(account, policy.uid_min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AccountId;
    use crate::model::SessionState;

    fn acct(user: &str, uid: Option<u32>, sid: Option<&str>) -> Account {
        let id = match (uid, sid) {
            (Some(u), _) => AccountId::Uid(u),
            (None, Some(s)) => AccountId::sid(s),
            (None, None) => AccountId::name(user, None),
        };
        Account { id, user: user.into(), domain: None }
    }

    #[test]
    fn protected_accounts() {
        let table: &[(Account, bool)] = &[
            (acct("root", Some(0), None), true),
            (acct("toor", Some(0), None), true),
            (acct("ROOT", None, None), true),
            (acct("SYSTEM", None, None), true),
            (acct("system", None, None), true),
            (acct("LOCAL SERVICE", None, None), true),
            (acct("NETWORK SERVICE", None, None), true),
            (acct("whoever", None, Some("S-1-5-18")), true),
            (acct("whoever", None, Some("s-1-5-20")), true),
            (acct("DWM-1", None, None), true),
            (acct("dwm-12", None, None), true),
            (acct("UMFD-0", None, None), true),
            (acct("daemon", Some(1), None), true),
            (acct("nobody", Some(65534), None), false),
            (acct("alice", Some(1000), None), false),
            (acct("alice", Some(999), None), true),
            (acct("dwmuser", None, None), false),
            (acct("systemd-user", Some(1001), None), false),
            (acct("jsmith", None, Some("S-1-5-21-1-2-3-1001")), false),
        ];
        for (a, want) in table {
            let got = account_protection(a, Some(1000));
            assert_eq!(got.is_some(), *want, "{a:?}: {got:?}");
            if let Some(p) = got {
                assert!(matches!(p, Protection::UnlessForced(_)));
                assert!(!p.reason().is_empty());
            }
        }
        // Without UID_MIN (Windows), a low uid alone does not protect.
        assert!(account_protection(&acct("svc", Some(5), None), None).is_none());
    }

    fn session(id: &str, user: &str, uid: Option<u32>) -> (Session, Account) {
        (Session { uid, ..Session::new(id, user, SessionState::Active) }, acct(user, uid, None))
    }

    #[test]
    fn protected_sessions() {
        let windows = Policy { services_session: Some("0".into()), ..Policy::default() };
        let linux = Policy { uid_min: Some(1000), ..Policy::default() };
        let (s0, a0) = session("0", "alice", None);
        assert!(matches!(session_protection(&s0, &a0, None, &windows), Some(Protection::Always(_))));
        // Linux has no services session: a session named "0" is an ordinary one.
        assert!(session_protection(&s0, &a0, None, &Policy::default()).is_none());
        let (s5, a5) = session("5", "alice", None);
        assert!(matches!(session_protection(&s5, &a5, Some("5"), &windows), Some(Protection::Always(_))));
        assert!(session_protection(&s5, &a5, Some("6"), &windows).is_none());
        let (s7, a7) = session("7", "root", Some(0));
        assert!(matches!(session_protection(&s7, &a7, None, &linux), Some(Protection::UnlessForced(_))));
    }

    #[test]
    fn service_and_virtual_sids_are_never_terminated() {
        for sid in ["S-1-5-18", "s-1-5-19", "S-1-5-20", "S-1-5-90-0-3", "S-1-5-96-0-1"] {
            assert!(is_service_sid(sid), "{sid}");
            assert!(never_terminate(&acct("x", None, Some(sid))), "{sid}");
        }
        assert!(!is_service_sid("S-1-5-21-1-2-3-1001"));
        assert!(never_terminate(&acct("root", Some(0), None)));
        assert!(!never_terminate(&acct("alice", Some(1000), None)));
    }
}
