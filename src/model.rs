//! The data model every backend fills in: sessions and processes, in the operating
//! systems' own vocabulary (WTS connect states, logind session states and classes).
//!
//! Nothing here talks to the OS; conversion from OS structures lives in each backend.

use serde::{Deserialize, Serialize};

/// The state of a session, the union of WTS `WTS_CONNECTSTATE_CLASS` and logind's
/// `State` property. Every variant has a fixed string form (see [`SessionState::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// WTSActive / logind "active": a user is logged on and the session is in the foreground.
    Active,
    /// WTSConnected: connected to a client, no user logged on yet.
    Connected,
    /// WTSConnectQuery: in the middle of connecting.
    ConnectQuery,
    /// WTSShadow: shadowing another session.
    Shadow,
    /// WTSDisconnected: a user is logged on, but no client is attached.
    Disconnected,
    /// WTSIdle: waiting for a client.
    Idle,
    /// WTSListen: a listener, never a user session.
    Listen,
    /// WTSReset: being reset.
    Reset,
    /// WTSDown: down because of an error.
    Down,
    /// WTSInit: initializing.
    Init,
    /// logind "online": logged in, but not in the foreground.
    Online,
    /// logind "opening".
    Opening,
    /// logind "closing": logged out, but processes remain (KillUserProcesses=no).
    Closing,
    /// utmp: a USER_PROCESS record whose leader is alive. utmp knows no more than that.
    LoggedIn,
    /// Anything the OS reported that this table does not know.
    Unknown,
}

impl SessionState {
    /// Every variant, for tables and tests.
    pub const ALL: [SessionState; 15] = [
        SessionState::Active,
        SessionState::Connected,
        SessionState::ConnectQuery,
        SessionState::Shadow,
        SessionState::Disconnected,
        SessionState::Idle,
        SessionState::Listen,
        SessionState::Reset,
        SessionState::Down,
        SessionState::Init,
        SessionState::Online,
        SessionState::Opening,
        SessionState::Closing,
        SessionState::LoggedIn,
        SessionState::Unknown,
    ];

    /// The stable string form used in text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Active => "active",
            SessionState::Connected => "connected",
            SessionState::ConnectQuery => "connect_query",
            SessionState::Shadow => "shadow",
            SessionState::Disconnected => "disconnected",
            SessionState::Idle => "idle",
            SessionState::Listen => "listen",
            SessionState::Reset => "reset",
            SessionState::Down => "down",
            SessionState::Init => "init",
            SessionState::Online => "online",
            SessionState::Opening => "opening",
            SessionState::Closing => "closing",
            SessionState::LoggedIn => "logged_in",
            SessionState::Unknown => "unknown",
        }
    }

    /// Parses the string form of [`SessionState::as_str`]; also accepts logind's words.
    pub fn parse(s: &str) -> SessionState {
        SessionState::ALL.into_iter().find(|st| st.as_str() == s).unwrap_or(SessionState::Unknown)
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One logon session on a machine.
///
/// `id` is a string because the OS ids differ in kind: a WTS session id is a number,
/// a logind session id is a string such as `"c2"`, and a utmp session is named after its
/// leader's pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The OS session id (WTS SessionId, logind Id, or `utmp:<leader pid>`).
    pub id: String,
    /// The account name, without domain (WTSUserName, logind Name, utmp ut_user).
    pub user: String,
    /// The domain (WTSDomainName). `None` on Linux for local accounts.
    #[serde(default)]
    pub domain: Option<String>,
    /// The numeric uid, where the OS has one.
    #[serde(default)]
    pub uid: Option<u32>,
    /// The account SID, where the OS has one.
    #[serde(default)]
    pub sid: Option<String>,
    /// The station: a WinStationName (`RDP-Tcp#3`, `Console`) or a tty (`pts/1`).
    #[serde(default)]
    pub station: Option<String>,
    /// The connect state.
    pub state: SessionState,
    /// The remote host or client address, if the session is remote.
    #[serde(default)]
    pub remote_host: Option<String>,
    /// Logon time, in seconds since the Unix epoch.
    #[serde(default)]
    pub logon_time: Option<i64>,
    /// Seconds since the last input, where the OS tracks it.
    #[serde(default)]
    pub idle_seconds: Option<u64>,
    /// logind Class (`user`, `greeter`, `manager`, …); WTS has no classes.
    #[serde(default)]
    pub class: Option<String>,
    /// logind Type (`tty`, `x11`, `wayland`, …) or the WTS protocol.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The session leader's pid, where known.
    #[serde(default)]
    pub leader: Option<u32>,
}

/// One process on a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// The process id.
    pub pid: u32,
    /// The owner's account name (of the real uid on Linux), if it could be resolved.
    #[serde(default)]
    pub user: Option<String>,
    /// The owner's domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// The real uid.
    #[serde(default)]
    pub uid: Option<u32>,
    /// The effective uid, when it differs from the real one.
    #[serde(default)]
    pub euid: Option<u32>,
    /// The saved set-user-id, when it differs from the real one.
    #[serde(default)]
    pub suid: Option<u32>,
    /// The owner SID.
    #[serde(default)]
    pub sid: Option<String>,
    /// The session the process runs in, where the OS says.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The executable name.
    #[serde(default)]
    pub name: String,
    /// Start time, in seconds since the Unix epoch.
    #[serde(default)]
    pub start_time: Option<i64>,
    /// A zombie: dead, waiting to be reaped. It counts as gone.
    #[serde(default)]
    pub zombie: bool,
    /// In uninterruptible sleep (Linux state `D`): a signal takes effect only when it
    /// wakes, which may be never (a hung NFS server, a frozen cgroup).
    #[serde(default)]
    pub uninterruptible: bool,
}

/// The account a session or process belongs to, as the planner and backends pass it
/// around: a name, and whatever numeric or SID identity the OS gave.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The account name.
    pub user: String,
    /// The domain, if any.
    #[serde(default)]
    pub domain: Option<String>,
    /// The uid, on systems with uids.
    #[serde(default)]
    pub uid: Option<u32>,
    /// The SID, on Windows.
    #[serde(default)]
    pub sid: Option<String>,
}

impl Account {
    /// `DOMAIN\user`, or `user` when there is no domain.
    pub fn display_name(&self) -> String {
        match &self.domain {
            Some(d) if !d.is_empty() => format!("{d}\\{}", self.user),
            _ => self.user.clone(),
        }
    }
}

impl Session {
    /// A session of `user` with id `id` in `state`, every other field unknown.
    pub fn new(id: impl Into<String>, user: impl Into<String>, state: SessionState) -> Session {
        Session {
            id: id.into(),
            user: user.into(),
            domain: None,
            uid: None,
            sid: None,
            station: None,
            state,
            remote_host: None,
            logon_time: None,
            idle_seconds: None,
            class: None,
            kind: None,
            leader: None,
        }
    }

    /// The account that owns this session.
    pub fn account(&self) -> Account {
        Account { user: self.user.clone(), domain: self.domain.clone(), uid: self.uid, sid: self.sid.clone() }
    }
}

impl Process {
    /// A live process `pid` named `name`, every other field unknown.
    pub fn new(pid: u32, name: impl Into<String>) -> Process {
        Process {
            pid,
            user: None,
            domain: None,
            uid: None,
            euid: None,
            suid: None,
            sid: None,
            session_id: None,
            name: name.into(),
            start_time: None,
            zombie: false,
            uninterruptible: false,
        }
    }

    /// Whether this process belongs to `owner`.
    ///
    /// With a uid on both sides, the real, effective and saved uids all count, so that a
    /// `su` started by the user (real uid U, effective 0) is the user's too. With a SID, the
    /// SIDs must be equal. Otherwise the names (and domains, where both have one) must match,
    /// ignoring case.
    pub fn is_owned_by(&self, owner: &Account) -> bool {
        if let (Some(target), Some(uid)) = (owner.uid, self.uid) {
            return uid == target || self.euid == Some(target) || self.suid == Some(target);
        }
        if let (Some(target), Some(sid)) = (&owner.sid, &self.sid) {
            return target.eq_ignore_ascii_case(sid);
        }
        match &self.user {
            Some(user) => {
                crate::userlist::eq_fold(user, &owner.user)
                    && match (&self.domain, &owner.domain) {
                        (Some(a), Some(b)) => crate::userlist::eq_fold(a, b),
                        _ => true,
                    }
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_state_table_round_trips() {
        for st in SessionState::ALL {
            assert_eq!(SessionState::parse(st.as_str()), st);
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
            assert_eq!(serde_json::from_str::<SessionState>(&json).unwrap(), st);
        }
        assert_eq!(SessionState::parse("bogus"), SessionState::Unknown);
    }

    fn proc_with(uid: u32, euid: Option<u32>, suid: Option<u32>) -> Process {
        Process { uid: Some(uid), euid, suid, ..Process::new(10, "x") }
    }

    #[test]
    fn ownership_counts_real_effective_and_saved_uid() {
        let owner = Account { user: "u".into(), domain: None, uid: Some(1001), sid: None };
        assert!(proc_with(1001, None, None).is_owned_by(&owner));
        assert!(proc_with(0, Some(1001), None).is_owned_by(&owner));
        assert!(proc_with(0, None, Some(1001)).is_owned_by(&owner));
        assert!(!proc_with(1002, Some(0), Some(0)).is_owned_by(&owner));
    }
}
