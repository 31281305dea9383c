//! The one rule for "the same account": an [`AccountId`] is a uid on Linux and a SID on
//! Windows, and a name only where the OS gave nothing better.
//!
//! A snapshot learns its [`Identities`] once, from every session and process the backend
//! listed, and from then on every part of a run (the plan, the actions, verification, the
//! report, the fake backend) asks them which account a session or process belongs to. No
//! other place compares account names to decide who is who: display names are for people.
//!
//! Not here: matching a *requested* name (`CORP\jsmith`, `jsmith@corp.example.com`) against
//! an account, which is the user list's job ([`crate::userlist::UserName::matches`]).

use std::collections::HashMap;

use serde::{Serialize, Serializer};

use crate::model::{Process, Session};
use crate::userlist::fold;

/// How the OS identifies an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountId {
    /// A numeric user id (Linux).
    Uid(u32),
    /// A security identifier (Windows), in canonical upper case: `S-1-5-21-...`.
    Sid(String),
    /// `domain\user`, case-folded: only for an account the OS reported with neither a uid
    /// nor a SID, and that no uid or SID in the same snapshot is known by.
    Name(String),
}

impl AccountId {
    /// The id of a SID, whatever its case.
    pub fn sid(sid: &str) -> AccountId {
        AccountId::Sid(sid.to_ascii_uppercase())
    }

    /// The name-based id of `user` in `domain`.
    pub fn name(user: &str, domain: Option<&str>) -> AccountId {
        AccountId::Name(name_key(user, domain))
    }

    /// The uid, for a uid-based id.
    pub fn uid(&self) -> Option<u32> {
        match self {
            AccountId::Uid(u) => Some(*u),
            _ => None,
        }
    }

    /// The SID, for a SID-based id.
    pub fn sid_str(&self) -> Option<&str> {
        match self {
            AccountId::Sid(s) => Some(s),
            _ => None,
        }
    }
}

fn name_key(user: &str, domain: Option<&str>) -> String {
    format!("{}\\{}", fold(domain.unwrap_or("")), fold(user))
}

/// An account as a run carries it: its identity, and the name and domain the OS gave,
/// for messages and the report.
///
/// In JSON it is `{"user", "domain", "uid", "sid"}`, as before the identity type existed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    /// Who it is.
    pub id: AccountId,
    /// The account name.
    pub user: String,
    /// The domain, if any.
    pub domain: Option<String>,
}

impl Account {
    /// `DOMAIN\user`, or `user` when there is no domain.
    pub fn display_name(&self) -> String {
        crate::model::qualified_name(&self.user, self.domain.as_deref())
    }

    /// An account known only by its name (a requested name that matched nothing).
    pub fn by_name(user: &str, domain: Option<&str>) -> Account {
        Account { id: AccountId::name(user, domain), user: user.to_string(), domain: domain.map(str::to_string) }
    }
}

impl Serialize for Account {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            user: &'a str,
            domain: &'a Option<String>,
            uid: Option<u32>,
            sid: Option<&'a str>,
        }
        Wire { user: &self.user, domain: &self.domain, uid: self.id.uid(), sid: self.id.sid_str() }.serialize(s)
    }
}

/// What a snapshot learned about identities: which `domain\user` names stand for which
/// uid or SID. A name seen with two different uids or SIDs stands for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    names: HashMap<String, Option<AccountId>>,
}

impl Identities {
    /// Learns the names of every uid and SID in these listings.
    pub fn learn(sessions: &[Session], processes: &[Process]) -> Identities {
        let mut ids = Identities::default();
        for s in sessions {
            if let Some(strong) = strong_id(s.uid, s.sid.as_deref()) {
                ids.note(&s.user, s.domain.as_deref(), strong);
            }
        }
        for p in processes {
            if let (Some(user), Some(strong)) = (&p.user, strong_id(p.uid, p.sid.as_deref())) {
                ids.note(user, p.domain.as_deref(), strong);
            }
        }
        ids
    }

    fn note(&mut self, user: &str, domain: Option<&str>, id: AccountId) {
        let entry = self.names.entry(name_key(user, domain)).or_insert_with(|| Some(id.clone()));
        if entry.as_ref() != Some(&id) {
            *entry = None;
        }
    }

    /// The best id of an account reported by name only.
    fn by_name(&self, user: &str, domain: Option<&str>) -> AccountId {
        let key = name_key(user, domain);
        match self.names.get(&key) {
            Some(Some(strong)) => strong.clone(),
            _ => AccountId::Name(key),
        }
    }

    /// The account a session belongs to.
    pub fn session_account(&self, s: &Session) -> Account {
        let id = strong_id(s.uid, s.sid.as_deref()).unwrap_or_else(|| self.by_name(&s.user, s.domain.as_deref()));
        Account { id, user: s.user.clone(), domain: s.domain.clone() }
    }

    /// The account of a process's real owner (the one its name was given for), if the OS
    /// told anything about it.
    pub fn process_account(&self, p: &Process) -> Option<Account> {
        let user = p.user.clone()?;
        let id = strong_id(p.uid, p.sid.as_deref()).unwrap_or_else(|| self.by_name(&user, p.domain.as_deref()));
        Some(Account { id, user, domain: p.domain.clone() })
    }

    /// Every account a process belongs to: with uids, its real, effective and saved uid
    /// (a `su` started by the user, real uid U and effective 0, is the user's too); else
    /// its owner SID; else its owner's name.
    pub fn owners(&self, p: &Process) -> Vec<AccountId> {
        if let Some(uid) = p.uid {
            let mut out = vec![AccountId::Uid(uid)];
            for other in [p.euid, p.suid].into_iter().flatten() {
                if !out.contains(&AccountId::Uid(other)) {
                    out.push(AccountId::Uid(other));
                }
            }
            return out;
        }
        self.process_account(p).map(|a| a.id).or_else(|| p.sid.as_deref().map(AccountId::sid)).into_iter().collect()
    }

    /// Whether `p` belongs to the account `id` (one of [`Identities::owners`]). With uids,
    /// asked for every process on every verification poll, it compares without building
    /// the list.
    pub fn owns(&self, id: &AccountId, p: &Process) -> bool {
        match (p.uid, id) {
            (Some(uid), AccountId::Uid(u)) => [Some(uid), p.euid, p.suid].contains(&Some(*u)),
            (Some(_), _) => false,
            (None, _) => self.owners(p).contains(id),
        }
    }
}

/// Whether two listings of a session (as planned, and as the OS reports its id now) belong
/// to the same account: by the strongest id both carry (uid, then SID), else by name. A
/// session id can be reused by the next logon, so a backend asks this before it acts.
pub fn same_account(a: &Session, b: &Session) -> bool {
    if let (Some(x), Some(y)) = (a.uid, b.uid) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (&a.sid, &b.sid) {
        return AccountId::sid(x) == AccountId::sid(y);
    }
    AccountId::name(&a.user, a.domain.as_deref()) == AccountId::name(&b.user, b.domain.as_deref())
}

/// The uid or SID of a record, where the OS gave one (the uid wins where both exist).
fn strong_id(uid: Option<u32>, sid: Option<&str>) -> Option<AccountId> {
    uid.map(AccountId::Uid).or_else(|| sid.map(AccountId::sid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionState;

    fn proc_with(uid: u32, euid: Option<u32>, suid: Option<u32>) -> Process {
        Process { uid: Some(uid), euid, suid, ..Process::new(10, "x") }
    }

    #[test]
    fn ownership_counts_real_effective_and_saved_uid() {
        let ids = Identities::default();
        let owner = AccountId::Uid(1001);
        assert!(ids.owns(&owner, &proc_with(1001, None, None)));
        assert!(ids.owns(&owner, &proc_with(0, Some(1001), None)));
        assert!(ids.owns(&owner, &proc_with(0, None, Some(1001))));
        assert!(!ids.owns(&owner, &proc_with(1002, Some(0), Some(0))));
    }

    #[test]
    fn sids_compare_in_canonical_case() {
        assert_eq!(AccountId::sid("s-1-5-21-1-2-3-1001"), AccountId::sid("S-1-5-21-1-2-3-1001"));
        let p = Process { sid: Some("s-1-5-21-1-2-3-1001".into()), ..Process::new(1, "a.exe") };
        assert!(Identities::default().owns(&AccountId::sid("S-1-5-21-1-2-3-1001"), &p));
    }

    #[test]
    fn a_name_is_only_the_fallback_and_learns_its_uid_or_sid() {
        // The session came with a uid; a process of the same account was reported by name
        // only, in another spelling: it is the same account.
        let s = Session { uid: Some(1001), ..Session::new("c1", "Alice", SessionState::Active) };
        let named = Process { user: Some("ALICE".into()), ..Process::new(5, "x") };
        let ids = Identities::learn(std::slice::from_ref(&s), &[]);
        assert_eq!(ids.session_account(&s).id, AccountId::Uid(1001));
        assert_eq!(ids.owners(&named), [AccountId::Uid(1001)]);
        // Without anything to learn from, names stay names, compared case-folded with
        // their domain.
        let plain = Identities::default();
        let a = Session { domain: Some("CORP".into()), ..Session::new("2", "jsmith", SessionState::Active) };
        let b = Process { user: Some("JSmith".into()), domain: Some("corp".into()), ..Process::new(9, "y") };
        assert_eq!(Some(plain.session_account(&a).id), plain.process_account(&b).map(|a| a.id));
        let other_domain = Process { domain: Some("PC1".into()), ..b };
        assert_ne!(Some(plain.session_account(&a).id), plain.process_account(&other_domain).map(|a| a.id));
    }

    #[test]
    fn a_name_seen_with_two_ids_stands_for_neither() {
        let s1 = Session { uid: Some(1001), ..Session::new("1", "bob", SessionState::Active) };
        let s2 = Session { uid: Some(1002), ..Session::new("2", "bob", SessionState::Active) };
        let ids = Identities::learn(&[s1, s2], &[]);
        let named = Process { user: Some("bob".into()), ..Process::new(5, "x") };
        assert_eq!(ids.owners(&named), [AccountId::name("bob", None)]);
    }

    #[test]
    fn a_reused_session_id_is_another_account() {
        let planned =
            Session { sid: Some("S-1-5-21-1-1001".into()), ..Session::new("3", "alice", SessionState::Active) };
        let same = Session { sid: Some("s-1-5-21-1-1001".into()), ..Session::new("3", "ALICE", SessionState::Active) };
        let reused =
            Session { sid: Some("S-1-5-21-1-1002".into()), ..Session::new("3", "alice", SessionState::Active) };
        assert!(same_account(&planned, &same));
        assert!(!same_account(&planned, &reused), "same name, another SID: a recreated account");
        let no_sid = Session { sid: None, ..same.clone() };
        assert!(same_account(&planned, &no_sid), "names decide when one side has no SID");
        let bob = Session::new("3", "bob", SessionState::Active);
        assert!(!same_account(&no_sid, &bob));
    }

    #[test]
    fn accounts_keep_their_json_shape() {
        let a = Account { id: AccountId::sid("s-1-5-21-9"), user: "jsmith".into(), domain: Some("CORP".into()) };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"user":"jsmith","domain":"CORP","uid":null,"sid":"S-1-5-21-9"}"#
        );
        let u = Account { id: AccountId::Uid(1000), user: "al".into(), domain: None };
        assert_eq!(serde_json::to_string(&u).unwrap(), r#"{"user":"al","domain":null,"uid":1000,"sid":null}"#);
    }
}
