//! The data model every backend fills in: sessions and processes, in the operating
//! systems' own vocabulary (WTS connect states, logind session states and classes).
//!
//! Nothing here talks to the OS; conversion from OS structures lives in each backend.

use serde::{Deserialize, Serialize};

use crate::idle::IdleSource;
use crate::words::string_enum;

string_enum! {
    /// The state of a session, the union of WTS `WTS_CONNECTSTATE_CLASS` and logind's
    /// `State` property.
    #[derive(Default)]
    pub enum SessionState {
        /// WTSActive / logind "active": a user is logged on and the session is in the foreground.
        Active => "active",
        /// WTSConnected: connected to a client, no user logged on yet.
        Connected => "connected",
        /// WTSConnectQuery: in the middle of connecting.
        ConnectQuery => "connect_query",
        /// WTSShadow: shadowing another session.
        Shadow => "shadow",
        /// WTSDisconnected: a user is logged on, but no client is attached.
        Disconnected => "disconnected",
        /// WTSIdle: waiting for a client.
        Idle => "idle",
        /// WTSListen: a listener, never a user session.
        Listen => "listen",
        /// WTSReset: being reset.
        Reset => "reset",
        /// WTSDown: down because of an error.
        Down => "down",
        /// WTSInit: initializing.
        Init => "init",
        /// logind "online": logged in, but not in the foreground.
        Online => "online",
        /// logind "opening".
        Opening => "opening",
        /// logind "closing": logged out, but processes remain (KillUserProcesses=no).
        Closing => "closing",
        /// utmp: a USER_PROCESS record whose leader is alive. utmp knows no more than that.
        LoggedIn => "logged_in",
        /// Anything the OS reported that this table does not know.
        #[default]
        Unknown => "unknown",
    }
    fallback Unknown
}

string_enum! {
    /// The class of a session: logind's `Class` property (systemd 252 to 257). WTS has no
    /// classes.
    pub enum SessionClass {
        /// A user's login session.
        User => "user",
        /// A user session started before the system finished booting (systemd 256+).
        UserEarly => "user-early",
        /// A user session still being set up (systemd 256+).
        UserIncomplete => "user-incomplete",
        /// A user session without a service manager (systemd 256+).
        UserLight => "user-light",
        /// An early user session without a service manager (systemd 256+).
        UserEarlyLight => "user-early-light",
        /// A display manager's greeter.
        Greeter => "greeter",
        /// A lock screen.
        LockScreen => "lock-screen",
        /// A background session (cron, a `su` without a terminal).
        Background => "background",
        /// A background session without a service manager (systemd 256+).
        BackgroundLight => "background-light",
        /// The per-user service manager's own session (systemd 256+).
        Manager => "manager",
        /// The service manager's session of a user started early (systemd 256+).
        ManagerEarly => "manager-early",
        /// No class (systemd 256+).
        None => "none",
        /// A class this table does not know.
        Unknown => "unknown",
    }
    fallback Unknown
}

string_enum! {
    /// The type of a session: logind's `Type` property, or the WTS client protocol.
    pub enum SessionType {
        /// logind: not specified.
        Unspecified => "unspecified",
        /// logind: a text terminal.
        Tty => "tty",
        /// logind: an X11 display.
        X11 => "x11",
        /// logind: a Wayland display.
        Wayland => "wayland",
        /// logind: a Mir display.
        Mir => "mir",
        /// logind: a web session.
        Web => "web",
        /// WTS: the console (`WTSClientProtocolType` 0).
        Console => "console",
        /// WTS: the legacy ICA protocol (1).
        Ica => "ica",
        /// WTS: Remote Desktop Protocol (2).
        Rdp => "rdp",
        /// A type this table does not know.
        Unknown => "unknown",
    }
    fallback Unknown
}

impl SessionType {
    /// A graphical desktop session, which can show desktop notifications.
    pub fn is_graphical(self) -> bool {
        matches!(self, SessionType::X11 | SessionType::Wayland | SessionType::Mir)
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
    /// Seconds since the last input, where the OS knows it; `None` when it does not
    /// (which is never "idle"; see [`crate::idle`]).
    #[serde(default)]
    pub idle_seconds: Option<u64>,
    /// Where `idle_seconds` comes from (`unknown` when it is `None`).
    #[serde(default)]
    pub idle_source: IdleSource,
    /// logind Class (`user`, `greeter`, `manager`, …); WTS has no classes.
    #[serde(default)]
    pub class: Option<SessionClass>,
    /// logind Type (`tty`, `x11`, `wayland`, …) or the WTS protocol.
    #[serde(default, rename = "type")]
    pub kind: Option<SessionType>,
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
    /// A zombie: dead, waiting to be reaped. It counts as gone.
    #[serde(default)]
    pub zombie: bool,
    /// In uninterruptible sleep (Linux state `D`): a signal takes effect only when it
    /// wakes, which may be never (a hung NFS server, a frozen cgroup).
    #[serde(default)]
    pub uninterruptible: bool,
}

/// `DOMAIN\user`, or `user` when there is no domain: how accounts are named for people.
pub fn qualified_name(user: &str, domain: Option<&str>) -> String {
    match domain {
        Some(d) if !d.is_empty() => format!("{d}\\{user}"),
        _ => user.to_string(),
    }
}

impl Session {
    /// Sets the idle time and where it comes from.
    pub fn set_idle(&mut self, idle: crate::idle::Idle) {
        self.idle_seconds = idle.seconds;
        self.idle_source = idle.source;
    }

    /// The idle time and where it comes from.
    pub fn idle(&self) -> crate::idle::Idle {
        crate::idle::Idle { seconds: self.idle_seconds, source: self.idle_source }
    }

    /// The session's account as people read it: `DOMAIN\user`, or `user`.
    pub fn display_name(&self) -> String {
        qualified_name(&self.user, self.domain.as_deref())
    }

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
            idle_source: IdleSource::Unknown,
            class: None,
            kind: None,
            leader: None,
        }
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
            zombie: false,
            uninterruptible: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_tables_round_trip() {
        crate::words::assert_round_trips(SessionState::ALL);
        crate::words::assert_round_trips(SessionClass::ALL);
        crate::words::assert_round_trips(SessionType::ALL);
        for st in SessionState::ALL {
            assert_eq!(SessionState::parse(st.as_str()), *st);
        }
        assert_eq!(SessionState::parse("bogus"), SessionState::Unknown);
        assert_eq!(SessionClass::parse("user-early"), SessionClass::UserEarly);
        assert_eq!(SessionClass::parse("from-the-future"), SessionClass::Unknown);
        assert_eq!(serde_json::from_str::<SessionType>("\"x11\"").unwrap(), SessionType::X11);
        assert!(SessionType::Wayland.is_graphical() && !SessionType::Tty.is_graphical());
    }
}
