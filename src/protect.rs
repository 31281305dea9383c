//! Protected accounts and sessions: what ALL never includes, and what a named target may
//! only reach with `--force` (or never).
//!
//! Pure data in, a verdict out; the planner applies it.

use crate::model::{Account, Session};
use crate::userlist::eq_fold;

/// Why an account or session is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// Never touched, not even with `--force`: session 0 (the services session) and the
    /// session the tool runs in.
    Always(String),
    /// Touched only when named explicitly with `--force`: root/SYSTEM, the service accounts,
    /// `DWM-*`/`UMFD-*`, and system accounts below `UID_MIN`.
    UnlessForced(String),
}

impl Protection {
    /// The reason, for messages.
    pub fn reason(&self) -> &str {
        match self {
            Protection::Always(r) | Protection::UnlessForced(r) => r,
        }
    }
}

/// Well-known SIDs of the accounts Windows runs services as.
const SERVICE_SIDS: [(&str, &str); 3] =
    [("S-1-5-18", "SYSTEM"), ("S-1-5-19", "LOCAL SERVICE"), ("S-1-5-20", "NETWORK SERVICE")];

/// Whether an account is protected, and why. `uid_min` is login.defs `UID_MIN` where the
/// OS has uids.
pub fn account_protection(account: &Account, uid_min: Option<u32>) -> Option<Protection> {
    let forced = |r: String| Some(Protection::UnlessForced(r));
    if account.uid == Some(0) || eq_fold(&account.user, "root") {
        return forced("root (uid 0) is protected".into());
    }
    if let Some(sid) = &account.sid {
        if let Some((_, name)) = SERVICE_SIDS.iter().find(|(s, _)| s.eq_ignore_ascii_case(sid)) {
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
    if let (Some(uid), Some(min)) = (account.uid, uid_min) {
        if uid < min {
            return forced(format!("{} (uid {uid}) is a system account below UID_MIN {min}", account.user));
        }
    }
    None
}

/// Whether a session is protected, and why: the services session 0, the session the tool
/// runs in, then its account's protection.
pub fn session_protection(session: &Session, current: Option<&str>, uid_min: Option<u32>) -> Option<Protection> {
    if session.id == "0" {
        return Some(Protection::Always("session 0 is the services session".into()));
    }
    if current == Some(session.id.as_str()) {
        return Some(Protection::Always(format!("session {} is the one running this tool", session.id)));
    }
    account_protection(&session.account(), uid_min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionState;

    fn acct(user: &str, uid: Option<u32>, sid: Option<&str>) -> Account {
        Account { user: user.into(), domain: None, uid, sid: sid.map(str::to_string) }
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

    fn session(id: &str, user: &str, uid: Option<u32>) -> Session {
        Session { uid, ..Session::new(id, user, SessionState::Active) }
    }

    #[test]
    fn protected_sessions() {
        assert!(matches!(session_protection(&session("0", "alice", None), None, None), Some(Protection::Always(_))));
        assert!(matches!(
            session_protection(&session("5", "alice", None), Some("5"), None),
            Some(Protection::Always(_))
        ));
        assert!(session_protection(&session("5", "alice", None), Some("6"), None).is_none());
        assert!(matches!(
            session_protection(&session("7", "root", Some(0)), None, Some(1000)),
            Some(Protection::UnlessForced(_))
        ));
    }
}
