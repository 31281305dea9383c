//! Sessions from systemd-logind (or elogind, which owns the same bus name), over the system
//! D-Bus with zbus: list the sessions, find the session of a pid, end sessions
//! (`TerminateSession`), signal what outlives a logout (`KillUser`, `KillSession`), and
//! thaw a unit through systemd (`ThawUnit`).
//!
//! Where systemd runs it owns the cgroup tree: a user's processes in their slice are reached
//! through logind and systemd, never by writing cgroup files; `kill.rs` reaches the rest
//! with `kill(-1)` as the uid.
//!
//! The D-Bus calls ([`Logind`]) are kept apart from the conversion of a session's raw
//! properties into a [`Session`] ([`session_from_properties`]), which is pure and tested
//! with recorded property values.
//!
//! What does not live here: signalling processes one by one (`kill.rs`), reading `/proc`
//! (`procfs.rs`), and utmp (`utmp.rs`).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zbus::blocking::Connection;
use zbus::blocking::connection::Builder;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::sys;
use crate::backend::Done;
use crate::error::{Error, ErrorKind, Result};
use crate::idle::{self, Idle, IdleSource, Wake};
use crate::model::{Session, SessionClass, SessionState, SessionType};

/// The bus name of systemd-logind and of elogind.
const DESTINATION: &str = "org.freedesktop.login1";
const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER_IFACE: &str = "org.freedesktop.login1.Manager";
const SESSION_IFACE: &str = "org.freedesktop.login1.Session";
const USER_IFACE: &str = "org.freedesktop.login1.User";
const PROPERTIES_IFACE: &str = "org.freedesktop.DBus.Properties";
const PEER_IFACE: &str = "org.freedesktop.DBus.Peer";
pub(crate) const SYSTEMD_DESTINATION: &str = "org.freedesktop.systemd1";
pub(crate) const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
pub(crate) const SYSTEMD_MANAGER_IFACE: &str = "org.freedesktop.systemd1.Manager";
const SYSTEMD_UNIT_IFACE: &str = "org.freedesktop.systemd1.Unit";
/// The target every suspend, hibernate and hybrid sleep pulls in, and stops at the wake.
const SLEEP_TARGET: &str = "sleep.target";

/// How long to wait for the bus to accept a connection and logind to answer a ping, and
/// for any one method reply later. A machine without logind must not make the tool hang:
/// it falls back to utmp.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const METHOD_TIMEOUT: Duration = Duration::from_secs(5);

/// Why [`connect_pinged`] has no connection.
pub(crate) enum ConnectFailed {
    /// The helper thread could not be started.
    Thread(std::io::Error),
    /// The bus refused, or the peer did not answer the ping.
    Bus(zbus::Error),
    /// Nothing within [`CONNECT_TIMEOUT`].
    TimedOut,
}

/// Connects to the bus at `address` (the system bus when `None`) and pings `destination`
/// at `path`, all within [`CONNECT_TIMEOUT`]; method calls on the connection time out
/// after `METHOD_TIMEOUT`.
///
/// Building a connection can block in the authentication handshake when the socket exists
/// but nobody serves it, and zbus's method timeout does not cover that. A helper thread
/// bounds the whole connect; if it hangs, it is left behind and dies with the process.
pub(crate) fn connect_pinged(
    address: Option<String>,
    destination: &'static str,
    path: &'static str,
) -> std::result::Result<Connection, ConnectFailed> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("bus-connect".into())
        .spawn(move || {
            let builder = match address {
                Some(a) => Builder::address(a.as_str()),
                None => Builder::system(),
            };
            let connected = builder.and_then(|b| b.method_timeout(METHOD_TIMEOUT).build()).and_then(|conn| {
                // Ping activates a bus-activatable service not running yet, and fails with
                // ServiceUnknown where there is none at all.
                conn.call_method(Some(destination), path, Some(PEER_IFACE), "Ping", &())?;
                Ok(conn)
            });
            let _ = tx.send(connected);
        })
        .map_err(ConnectFailed::Thread)?;
    match rx.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(ConnectFailed::Bus(e)),
        Err(_) => Err(ConnectFailed::TimedOut),
    }
}

/// A connection to systemd-logind (or elogind) on the system bus.
pub struct Logind {
    conn: Connection,
}

impl std::fmt::Debug for Logind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logind").field("unique_name", &self.conn.unique_name()).finish()
    }
}

/// One row of `ListSessions`: id, uid, user name, seat id, object path.
type SessionRow = (String, u32, String, String, OwnedObjectPath);

impl Logind {
    /// Connects to the system bus and checks that `org.freedesktop.login1` answers.
    ///
    /// The bus address comes from `DBUS_SYSTEM_BUS_ADDRESS`, else the default socket
    /// `/run/dbus/system_bus_socket`.
    ///
    /// # Errors
    ///
    /// `ErrorKind::Unsupported` when there is no system bus, nobody owns (or can be
    /// activated as) `org.freedesktop.login1`, or the bus or logind do not answer within a
    /// couple of seconds (so that a caller can fall back to utmp); `ErrorKind::PermissionDenied`
    /// when the bus refuses us; `ErrorKind::Os` for anything else.
    pub fn connect() -> Result<Logind> {
        Logind::connect_at(None)
    }

    /// Connects to the bus at `address`, or to the system bus when `None`.
    fn connect_at(address: Option<String>) -> Result<Logind> {
        const ACTION: &str = "connect to systemd-logind";
        match connect_pinged(address, DESTINATION, MANAGER_PATH) {
            Ok(conn) => Ok(Logind { conn }),
            Err(ConnectFailed::Thread(e)) => Err(Error::from_io(ACTION, &e)),
            Err(ConnectFailed::Bus(e)) => Err(connect_error(ACTION, e)),
            Err(ConnectFailed::TimedOut) => Err(Error::new(
                ErrorKind::Unsupported,
                ACTION,
                format!("the system bus or logind did not answer within {}s", CONNECT_TIMEOUT.as_secs()),
            )),
        }
    }

    /// Lists every session logind knows, with its properties.
    ///
    /// A session that ends between `ListSessions` and reading its properties is left out:
    /// it is gone, which is what a caller would find out next anyway.
    ///
    /// # Errors
    ///
    /// `ErrorKind::PermissionDenied` when the bus policy refuses the call; `ErrorKind::Os`
    /// for other D-Bus failures or properties of an unexpected type.
    pub fn list_sessions(&self) -> Result<Vec<Session>> {
        let rows = self.session_rows()?;
        let now = Clocks::now();
        let wake = self.wake(&now);
        let mut sessions = Vec::with_capacity(rows.len());
        for (id, _uid, _user, _seat, path) in rows {
            let action = format!("read the properties of logind session {id}");
            let props = match self.session_properties(&path) {
                Ok(p) => p,
                Err(e) if is_gone(&e) => continue,
                Err(e) => return Err(dbus_error(&action, e)),
            };
            let mut session = session_from_properties(&props, &now)
                .map_err(|cause| Error::new(ErrorKind::Os, action.clone(), cause))?;
            session.set_idle(idle::after_wake(session.idle(), wake));
            sessions.push(session);
        }
        Ok(sessions)
    }

    /// Every session logind knows, as `ListSessions` gives them (id, uid, user name): one
    /// call, no property reads. Enough to tell whether a session still exists and whose it
    /// is, which is what verification asks.
    ///
    /// # Errors
    ///
    /// As for [`Logind::list_sessions`].
    pub fn session_ids(&self) -> Result<Vec<(String, u32, String)>> {
        Ok(self.session_rows()?.into_iter().map(|(id, uid, user, _, _)| (id, uid, user)).collect())
    }

    /// `ListSessions`: one row per session.
    fn session_rows(&self) -> Result<Vec<SessionRow>> {
        const ACTION: &str = "list logind sessions";
        let reply = self
            .conn
            .call_method(Some(DESTINATION), MANAGER_PATH, Some(MANAGER_IFACE), "ListSessions", &())
            .map_err(|e| dbus_error(ACTION, e))?;
        reply.body().deserialize().map_err(|e| dbus_error(ACTION, e))
    }

    /// The uids of the users logind keeps lingering (`ListUsers`, then each user's `Linger`
    /// property): a lingering user's service manager runs from boot and stays after its
    /// last logout. logind knows every lingering user, with or without sessions. A user
    /// that goes between the two calls is left out.
    ///
    /// # Errors
    ///
    /// As for [`Logind::list_sessions`].
    pub fn lingering_uids(&self) -> Result<Vec<u32>> {
        const ACTION: &str = "list logind users";
        let reply = self
            .conn
            .call_method(Some(DESTINATION), MANAGER_PATH, Some(MANAGER_IFACE), "ListUsers", &())
            .map_err(|e| dbus_error(ACTION, e))?;
        let rows: Vec<(u32, String, OwnedObjectPath)> =
            reply.body().deserialize().map_err(|e| dbus_error(ACTION, e))?;
        let mut out = Vec::new();
        for (uid, _name, path) in rows {
            let action = format!("read the Linger property of logind user {uid}");
            let reply = match self.conn.call_method(
                Some(DESTINATION),
                path.as_str(),
                Some(PROPERTIES_IFACE),
                "Get",
                &(USER_IFACE, "Linger"),
            ) {
                Ok(reply) => reply,
                Err(e) if is_gone(&e) => continue,
                Err(e) => return Err(dbus_error(&action, e)),
            };
            let value: OwnedValue = reply.body().deserialize().map_err(|e| dbus_error(&action, e))?;
            match unwrap_variant(&value) {
                Value::Bool(true) => out.push(uid),
                Value::Bool(false) => {}
                other => return Err(Error::new(ErrorKind::Os, action, format!("Linger is not a boolean: {other:?}"))),
            }
        }
        Ok(out)
    }

    /// Sends `signal` to every process of `uid`'s slice (`KillUser`): systemd signals the
    /// user's units, so processes left in "closing" sessions are reached too, through the
    /// cgroup tree's owner.
    ///
    /// # Errors
    ///
    /// As for [`Logind::terminate_session`]; a user logind does not know (any more) is
    /// `Ok(Done::AlreadyGone)`.
    pub fn kill_user(&self, uid: u32, signal: i32) -> Result<Done> {
        let action = format!("signal the processes of logind user {uid}");
        match self.conn.call_method(Some(DESTINATION), MANAGER_PATH, Some(MANAGER_IFACE), "KillUser", &(uid, signal)) {
            Ok(_) => Ok(Done::Requested),
            Err(e) if is_gone(&e) => Ok(Done::AlreadyGone),
            Err(e) => Err(dbus_error(&action, e)),
        }
    }

    /// Asks systemd to thaw a unit (`ThawUnit`, systemd 246 and later).
    ///
    /// # Errors
    ///
    /// When systemd refuses or does not know the unit.
    pub fn thaw_unit(&self, unit: &str) -> Result<()> {
        let action = format!("thaw {unit} through systemd");
        self.conn
            .call_method(Some(SYSTEMD_DESTINATION), SYSTEMD_PATH, Some(SYSTEMD_MANAGER_IFACE), "ThawUnit", &(unit,))
            .map(|_| ())
            .map_err(|e| dbus_error(&action, e))
    }

    /// When the machine last woke from sleep (see [`crate::idle`]): it has not slept when
    /// `CLOCK_BOOTTIME` and `CLOCK_MONOTONIC` (which stops during sleep) agree; else the
    /// wake is when systemd last stopped `sleep.target`, which every suspend and hibernate
    /// starts and which stops again at the wake. Without systemd (elogind), or before
    /// `sleep.target` was ever loaded, the wake of a machine that slept is unknown.
    fn wake(&self, now: &Clocks) -> Wake {
        // Systemd is asked only when the clocks say the machine slept.
        match wake_of(now, None) {
            Wake::NeverSlept => Wake::NeverSlept,
            _ => wake_of(now, self.unit_property_u64(SLEEP_TARGET, "InactiveEnterTimestampMonotonic").ok()),
        }
    }

    /// A `t` property of a systemd unit, looked up by name (`GetUnit`: only a loaded unit).
    fn unit_property_u64(&self, unit: &str, property: &str) -> zbus::Result<u64> {
        let reply = self.conn.call_method(
            Some(SYSTEMD_DESTINATION),
            SYSTEMD_PATH,
            Some(SYSTEMD_MANAGER_IFACE),
            "GetUnit",
            &(unit,),
        )?;
        let path: OwnedObjectPath = reply.body().deserialize()?;
        let reply = self.conn.call_method(
            Some(SYSTEMD_DESTINATION),
            path.as_str(),
            Some(PROPERTIES_IFACE),
            "Get",
            &(SYSTEMD_UNIT_IFACE, property),
        )?;
        let value: OwnedValue = reply.body().deserialize()?;
        match unwrap_variant(&value) {
            Value::U64(n) => Ok(*n),
            other => Err(zbus::Error::Failure(format!("{property} of {unit} is not a u64: {other:?}"))),
        }
    }

    /// Ends a session: asks logind to terminate it (`TerminateSession`), which stops the
    /// session's scope. Does not wait for it to be gone.
    ///
    /// A session that is already "closing" (its user logged out, processes remain because
    /// of KillUserProcesses=no) is different: logind ignores `TerminateSession` for a
    /// session that is stopping. For such a session this sends SIGTERM to every process in
    /// it (`KillSession(id, "all", SIGTERM)`) instead. A process that ignores SIGTERM is
    /// left for the caller's process sweep, or for [`Logind::kill_session`] with SIGKILL.
    ///
    /// # Errors
    ///
    /// `ErrorKind::PermissionDenied` when the caller may not terminate it (not root, and
    /// polkit says no); `ErrorKind::Os` for other failures. A session that does not exist
    /// (any more) is `Ok(Done::AlreadyGone)`.
    pub fn terminate_session(&self, id: &str) -> Result<Done> {
        let action = format!("terminate logind session {id}");
        match self.session_state(id) {
            Ok(SessionState::Closing) => return self.kill_session(id, libc::SIGTERM),
            Ok(_) => {}
            Err(e) if is_gone(&e) => return Ok(Done::AlreadyGone),
            Err(e) => return Err(dbus_error(&action, e)),
        }
        match self.conn.call_method(Some(DESTINATION), MANAGER_PATH, Some(MANAGER_IFACE), "TerminateSession", &(id,)) {
            Ok(_) => Ok(Done::Requested),
            Err(e) if is_gone(&e) => Ok(Done::AlreadyGone),
            Err(e) => Err(dbus_error(&action, e)),
        }
    }

    /// Sends `signal` to every process of a session (`KillSession(id, "all", signal)`):
    /// logind has systemd signal the session's scope, so processes that left the session's
    /// process group (setsid, nohup) are reached too.
    ///
    /// # Errors
    ///
    /// As for [`Logind::terminate_session`]; a session that does not exist (any more) is
    /// `Ok(Done::AlreadyGone)`.
    pub fn kill_session(&self, id: &str, signal: i32) -> Result<Done> {
        let action = format!("signal the processes of logind session {id}");
        match self.conn.call_method(
            Some(DESTINATION),
            MANAGER_PATH,
            Some(MANAGER_IFACE),
            "KillSession",
            &(id, "all", signal),
        ) {
            Ok(_) => Ok(Done::Requested),
            Err(e) if is_gone(&e) => Ok(Done::AlreadyGone),
            Err(e) => Err(dbus_error(&action, e)),
        }
    }

    /// The id of the session `pid` belongs to (`GetSessionByPID`), or `None` when the
    /// process is in no session (a service, a daemon, a process that left its session).
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` when there is no process `pid`; `ErrorKind::PermissionDenied`
    /// or `ErrorKind::Os` for D-Bus failures.
    pub fn session_of_pid(&self, pid: u32) -> Result<Option<String>> {
        let action = format!("find the logind session of pid {pid}");
        let reply = match self.conn.call_method(
            Some(DESTINATION),
            MANAGER_PATH,
            Some(MANAGER_IFACE),
            "GetSessionByPID",
            &(pid,),
        ) {
            Ok(reply) => reply,
            Err(e) if error_name(&e) == Some(NO_SESSION_FOR_PID) => return Ok(None),
            Err(e) => return Err(dbus_error(&action, e)),
        };
        let path: OwnedObjectPath = reply.body().deserialize().map_err(|e| dbus_error(&action, e))?;
        // The object path encodes the id (escaped), so ask for the Id property instead.
        let id = match self.conn.call_method(
            Some(DESTINATION),
            path.as_str(),
            Some(PROPERTIES_IFACE),
            "Get",
            &(SESSION_IFACE, "Id"),
        ) {
            Ok(reply) => reply,
            // The session ended between the two calls.
            Err(e) if is_gone(&e) => return Ok(None),
            Err(e) => return Err(dbus_error(&action, e)),
        };
        let value: OwnedValue = id.body().deserialize().map_err(|e| dbus_error(&action, e))?;
        let id = as_str(&value)
            .ok_or_else(|| Error::new(ErrorKind::Os, action.clone(), format!("Id is not a string: {value:?}")))?;
        Ok(Some(id.to_string()))
    }

    /// The State of one session, looked up by id.
    fn session_state(&self, id: &str) -> zbus::Result<SessionState> {
        let reply =
            self.conn.call_method(Some(DESTINATION), MANAGER_PATH, Some(MANAGER_IFACE), "GetSession", &(id,))?;
        let path: OwnedObjectPath = reply.body().deserialize()?;
        let reply = self.conn.call_method(
            Some(DESTINATION),
            path.as_str(),
            Some(PROPERTIES_IFACE),
            "Get",
            &(SESSION_IFACE, "State"),
        )?;
        let value: OwnedValue = reply.body().deserialize()?;
        Ok(as_str(&value).map_or(SessionState::Unknown, SessionState::parse))
    }

    fn session_properties(&self, path: &OwnedObjectPath) -> zbus::Result<HashMap<String, OwnedValue>> {
        let reply = self.conn.call_method(
            Some(DESTINATION),
            path.as_str(),
            Some(PROPERTIES_IFACE),
            "GetAll",
            &(SESSION_IFACE,),
        )?;
        reply.body().deserialize()
    }
}

const NO_SUCH_SESSION: &str = "org.freedesktop.login1.NoSuchSession";
const NO_SESSION_FOR_PID: &str = "org.freedesktop.login1.NoSessionForPID";

/// The D-Bus error name of a method error reply, if `e` is one.
fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        zbus::Error::FDO(fdo) => Some(fdo_name(fdo)),
        _ => None,
    }
}

fn fdo_name(e: &zbus::fdo::Error) -> &'static str {
    use zbus::fdo::Error as F;
    match e {
        F::AccessDenied(_) => "org.freedesktop.DBus.Error.AccessDenied",
        F::AuthFailed(_) => "org.freedesktop.DBus.Error.AuthFailed",
        F::InteractiveAuthorizationRequired(_) => "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        F::ServiceUnknown(_) => "org.freedesktop.DBus.Error.ServiceUnknown",
        F::NameHasNoOwner(_) => "org.freedesktop.DBus.Error.NameHasNoOwner",
        F::UnknownObject(_) => "org.freedesktop.DBus.Error.UnknownObject",
        F::UnknownMethod(_) => "org.freedesktop.DBus.Error.UnknownMethod",
        F::NoReply(_) => "org.freedesktop.DBus.Error.NoReply",
        F::TimedOut(_) | F::Timeout(_) => "org.freedesktop.DBus.Error.TimedOut",
        F::UnixProcessIdUnknown(_) => "org.freedesktop.DBus.Error.UnixProcessIdUnknown",
        _ => "org.freedesktop.DBus.Error.Failed",
    }
}

/// Whether the object the call was about does not exist (any more).
fn is_gone(e: &zbus::Error) -> bool {
    error_name(e).is_some_and(|n| kind_of_error_name(n) == ErrorKind::NotFound)
}

/// The error kind for a D-Bus error name, as logind and the bus daemon use them.
fn kind_of_error_name(name: &str) -> ErrorKind {
    match name {
        NO_SUCH_SESSION
        | NO_SESSION_FOR_PID
        | "org.freedesktop.DBus.Error.UnknownObject"
        | "org.freedesktop.DBus.Error.UnixProcessIdUnknown"
        | "org.freedesktop.login1.NoSuchUser" => ErrorKind::NotFound,
        "org.freedesktop.DBus.Error.AccessDenied"
        | "org.freedesktop.DBus.Error.AuthFailed"
        | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => ErrorKind::PermissionDenied,
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner"
        | "org.freedesktop.DBus.Error.UnknownMethod"
        | "org.freedesktop.DBus.Error.UnknownInterface" => ErrorKind::Unsupported,
        "org.freedesktop.DBus.Error.TimedOut"
        | "org.freedesktop.DBus.Error.Timeout"
        | "org.freedesktop.DBus.Error.NoReply" => ErrorKind::TimedOut,
        _ => ErrorKind::Os,
    }
}

/// Maps a zbus error during a call to a typed error for `action`.
fn dbus_error(action: &str, e: zbus::Error) -> Error {
    match &e {
        zbus::Error::InputOutput(io) => Error::from_io(action, io),
        _ => {
            let kind = error_name(&e).map_or(ErrorKind::Os, kind_of_error_name);
            let cause = match &e {
                zbus::Error::MethodError(name, Some(text), _) => format!("{text} ({name})"),
                _ => e.to_string(),
            };
            let hint = match kind {
                ErrorKind::PermissionDenied => " (run as root)",
                _ => "",
            };
            Error::new(kind, action, format!("{cause}{hint}"))
        }
    }
}

/// Maps a failure to reach logind: anything that says "no bus" or "no logind" is
/// `Unsupported`, so that `--source auto` can fall back to utmp.
fn connect_error(action: &str, e: zbus::Error) -> Error {
    let mut err = dbus_error(action, e);
    let no_bus = matches!(err.code, Some(c) if c == libc::ENOENT || c == libc::ECONNREFUSED);
    if no_bus || err.kind == ErrorKind::NotFound {
        err.kind = ErrorKind::Unsupported;
        err.cause = format!("no system D-Bus: {}", err.cause);
    } else if err.kind == ErrorKind::TimedOut {
        err.kind = ErrorKind::Unsupported;
        err.cause = format!("systemd-logind did not answer: {}", err.cause);
    } else if err.kind == ErrorKind::Unsupported {
        err.cause = format!("systemd-logind is not running on the system bus: {}", err.cause);
    }
    err
}

/// The clocks idle times are measured with, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    /// `CLOCK_REALTIME`: logind's `IdleSinceHint`.
    pub realtime_usec: u64,
    /// `CLOCK_MONOTONIC`, which stops while the machine sleeps: logind's
    /// `IdleSinceHintMonotonic`, systemd's `*TimestampMonotonic`.
    pub monotonic_usec: u64,
    /// `CLOCK_BOOTTIME`, which goes on while it sleeps.
    pub boottime_usec: u64,
}

impl Clocks {
    /// The clocks now.
    pub fn now() -> Clocks {
        Clocks {
            realtime_usec: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64),
            monotonic_usec: sys::clock_usec(libc::CLOCK_MONOTONIC),
            boottime_usec: sys::clock_usec(libc::CLOCK_BOOTTIME),
        }
    }
}

/// When the machine last woke, from its clocks and the monotonic time `sleep.target` last
/// stopped (`None` or 0: never, or not known). See `Logind::wake`.
pub fn wake_of(now: &Clocks, sleep_target_stopped: Option<u64>) -> Wake {
    let slept_usec = now.boottime_usec.saturating_sub(now.monotonic_usec);
    if slept_usec < idle::SLEPT_THRESHOLD_MS * 1000 {
        return Wake::NeverSlept;
    }
    match sleep_target_stopped {
        Some(t) if t > 0 && t <= now.monotonic_usec => Wake::WokeAgo((now.monotonic_usec - t) / 1_000_000),
        _ => Wake::Unknown,
    }
}

/// The idle time of a session from its `IdleHint`, `IdleSinceHint` (realtime) and
/// `IdleSinceHintMonotonic` properties, as systemd 252 and later report them:
///
/// - a graphical session (x11, wayland, mir) has the hint its desktop sets. "Idle since T":
///   the time since T; "not idle since T": idle 0; no T (`IdleSinceHint` 0): the desktop
///   never said, so logind's "not idle" means nothing and the idle time is unknown;
/// - any other session reports the last read from its terminal (the tty's access time)
///   as `IdleSinceHint`, whatever the hint (which turns true only after `IdleActionSec`):
///   the time since then; 0, a session without a terminal: unknown.
///
/// The time since is taken on the monotonic clock where logind gives it, which leaves out
/// time asleep (for a graphical session's hint; a terminal's access time is a wall-clock
/// time, which logind converts at the moment it answers).
pub fn idle_of(hint: Option<bool>, since: u64, since_monotonic: u64, graphical: bool, now: &Clocks) -> Idle {
    let elapsed = || {
        if since_monotonic > 0 && since_monotonic <= now.monotonic_usec {
            (now.monotonic_usec - since_monotonic) / 1_000_000
        } else {
            now.realtime_usec.saturating_sub(since) / 1_000_000
        }
    };
    match (graphical, hint) {
        _ if since == 0 && since_monotonic == 0 => Idle::UNKNOWN,
        (true, Some(true)) => Idle::known(elapsed(), IdleSource::IdleHint),
        (true, _) => Idle::known(0, IdleSource::IdleHint),
        (false, _) => Idle::known(elapsed(), IdleSource::Terminal),
    }
}

/// Converts the properties of one `org.freedesktop.login1.Session` object (the reply of
/// `Properties.GetAll`) into a [`Session`].
///
/// `now` is the clocks when the properties were read, for the idle time.
///
/// - the station is `TTY`, else `Display` (X11), else the seat id;
/// - `remote_host` is `RemoteHost` when `Remote` is true and the host is not empty;
/// - the idle time is [`idle_of`]'s (before the machine's last wake is taken into account);
/// - `logon_time` is `Timestamp` in seconds; `leader` is `Leader` unless 0 or the session
///   is closing (its leader has exited then).
///
/// # Errors
///
/// A description of the problem when `Id` or `Name` is missing, or a property has an
/// unexpected type.
pub fn session_from_properties(
    props: &HashMap<String, OwnedValue>,
    now: &Clocks,
) -> std::result::Result<Session, String> {
    let props = Props(props);
    let id = props.string("Id")?.filter(|s| !s.is_empty()).ok_or("no Id property")?;
    let user = props.string("Name")?.ok_or("no Name property")?;
    let uid = match props.get("User") {
        Some(v) => Some(struct_u32(v).ok_or_else(|| format!("User is not (uo): {v:?}"))?),
        None => None,
    };
    let seat = match props.get("Seat") {
        Some(v) => struct_string(v).ok_or_else(|| format!("Seat is not (so): {v:?}"))?,
        None => None,
    };
    let station = non_empty(props.string("TTY")?).or(non_empty(props.string("Display")?)).or(non_empty(seat));
    let remote = props.bool("Remote")?.unwrap_or(false);
    let remote_host = if remote { non_empty(props.string("RemoteHost")?) } else { None };
    let state = props.string("State")?.map_or(SessionState::Unknown, |s| SessionState::parse(&s));
    let kind = non_empty(props.string("Type")?).map(|t| SessionType::parse(&t));
    let idle = idle_of(
        props.bool("IdleHint")?,
        props.u64("IdleSinceHint")?.unwrap_or(0),
        props.u64("IdleSinceHintMonotonic")?.unwrap_or(0),
        kind.is_some_and(SessionType::is_graphical),
        now,
    );
    let logon_time = props.u64("Timestamp")?.filter(|&t| t > 0).map(|t| (t / 1_000_000) as i64);
    // A closing session's leader has exited (logind keeps reporting its pid), and the pid
    // may belong to another process by now: it must not be signalled, so it is not given.
    let leader = props.u32("Leader")?.filter(|&p| p > 0 && state != SessionState::Closing);
    Ok(Session {
        id,
        user,
        domain: None,
        uid,
        sid: None,
        station,
        state,
        remote_host,
        logon_time,
        idle_seconds: idle.seconds,
        idle_source: idle.source,
        class: non_empty(props.string("Class")?).map(|c| SessionClass::parse(&c)),
        kind,
        leader,
    })
}

/// Typed access to a property map; a missing property is `Ok(None)`, a property of the
/// wrong type is an error naming it.
struct Props<'a>(&'a HashMap<String, OwnedValue>);

impl Props<'_> {
    fn get(&self, name: &str) -> Option<&Value<'static>> {
        self.0.get(name).map(|v| unwrap_variant(v))
    }

    fn typed<T>(
        &self,
        name: &str,
        want: &str,
        f: impl Fn(&Value<'_>) -> Option<T>,
    ) -> std::result::Result<Option<T>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| format!("{name} is not {want}: {v:?}")),
        }
    }

    fn string(&self, name: &str) -> std::result::Result<Option<String>, String> {
        self.typed(name, "a string", |v| as_str(v).map(str::to_string))
    }

    fn bool(&self, name: &str) -> std::result::Result<Option<bool>, String> {
        self.typed(name, "a boolean", |v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        })
    }

    fn u32(&self, name: &str) -> std::result::Result<Option<u32>, String> {
        self.typed(name, "a u32", |v| match v {
            Value::U32(n) => Some(*n),
            _ => None,
        })
    }

    fn u64(&self, name: &str) -> std::result::Result<Option<u64>, String> {
        self.typed(name, "a u64", |v| match v {
            Value::U64(n) => Some(*n),
            _ => None,
        })
    }
}

/// A property value may arrive wrapped in a variant (`v`); look through it.
fn unwrap_variant<'v, 'a>(v: &'v Value<'a>) -> &'v Value<'a> {
    match v {
        Value::Value(inner) => unwrap_variant(inner),
        other => other,
    }
}

fn as_str<'v>(v: &'v Value<'_>) -> Option<&'v str> {
    match unwrap_variant(v) {
        Value::Str(s) => Some(s.as_str()),
        Value::ObjectPath(p) => Some(p.as_str()),
        _ => None,
    }
}

/// The `u` of a `(uo)` struct (the User property).
fn struct_u32(v: &Value<'_>) -> Option<u32> {
    match unwrap_variant(v) {
        Value::Structure(s) => match s.fields().first().map(unwrap_variant) {
            Some(Value::U32(n)) => Some(*n),
            _ => None,
        },
        _ => None,
    }
}

/// The `s` of a `(so)` struct (the Seat property); an empty id means "no seat".
fn struct_string(v: &Value<'_>) -> Option<Option<String>> {
    match unwrap_variant(v) {
        Value::Structure(s) => match s.fields().first() {
            Some(f) => as_str(f).map(|s| non_empty(Some(s.to_string()))),
            None => None,
        },
        _ => None,
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::ObjectPath;

    fn owned(v: Value<'_>) -> OwnedValue {
        OwnedValue::try_from(v).unwrap()
    }

    fn path(p: &str) -> ObjectPath<'_> {
        ObjectPath::try_from(p).unwrap()
    }

    fn props(entries: Vec<(&str, Value<'_>)>) -> HashMap<String, OwnedValue> {
        entries.into_iter().map(|(k, v)| (k.to_string(), owned(v))).collect()
    }

    /// Recorded from systemd 252 (Debian 12, the test container): session 55, an
    /// `ssh -tt` login of u1 from 127.0.0.1 (`busctl get-property org.freedesktop.login1
    /// /org/freedesktop/login1/session/_355 org.freedesktop.login1.Session ...`).
    fn recorded_active() -> HashMap<String, OwnedValue> {
        props(vec![
            ("Id", Value::from("55")),
            ("User", Value::from((1000u32, path("/org/freedesktop/login1/user/_1000")))),
            ("Name", Value::from("u1")),
            ("Timestamp", Value::from(1_795_480_660_815_427u64)),
            ("Seat", Value::from(("", path("/")))),
            ("TTY", Value::from("pts/1")),
            ("Display", Value::from("")),
            ("Remote", Value::from(true)),
            ("RemoteHost", Value::from("127.0.0.1")),
            ("Leader", Value::from(51u32)),
            ("Type", Value::from("tty")),
            ("Class", Value::from("user")),
            ("State", Value::from("active")),
            ("IdleHint", Value::from(false)),
            ("IdleSinceHint", Value::from(1_795_480_660_982_452u64)),
            ("Service", Value::from("sshd")),
            ("Scope", Value::from("session-55.scope")),
        ])
    }

    /// Recorded as above: session 54 of u1, whose ssh connection (no pty) ended while a
    /// `setsid nohup sleep` lives on (KillUserProcesses=no). The leader pid is still
    /// reported although that process has exited.
    fn recorded_closing() -> HashMap<String, OwnedValue> {
        props(vec![
            ("Id", Value::from("54")),
            ("User", Value::from((1000u32, path("/org/freedesktop/login1/user/_1000")))),
            ("Name", Value::from("u1")),
            ("Timestamp", Value::from(1_795_480_660_809_764u64)),
            ("Seat", Value::from(("", path("/")))),
            ("TTY", Value::from("")),
            ("Display", Value::from("")),
            ("Remote", Value::from(true)),
            ("RemoteHost", Value::from("127.0.0.1")),
            ("Leader", Value::from(50u32)),
            ("Type", Value::from("tty")),
            ("Class", Value::from("user")),
            ("State", Value::from("closing")),
            ("IdleHint", Value::from(false)),
            ("IdleSinceHint", Value::from(0u64)),
            ("Service", Value::from("sshd")),
            ("Scope", Value::from("session-54.scope")),
        ])
    }

    /// The recorded `date +%s%N` in the container, in microseconds, just after the above.
    const RECORDED_NOW: u64 = 1_795_480_663_188_854;

    /// The clocks at `realtime` (microseconds), on a machine that never slept and whose
    /// logind gave no monotonic idle times.
    fn at(realtime: u64) -> Clocks {
        Clocks { realtime_usec: realtime, monotonic_usec: 0, boottime_usec: 0 }
    }

    #[test]
    fn converts_a_recorded_ssh_session() {
        let s = session_from_properties(&recorded_active(), &at(RECORDED_NOW)).unwrap();
        assert_eq!(
            s,
            Session {
                id: "55".into(),
                user: "u1".into(),
                domain: None,
                uid: Some(1000),
                sid: None,
                station: Some("pts/1".into()),
                state: SessionState::Active,
                remote_host: Some("127.0.0.1".into()),
                logon_time: Some(1_795_480_660),
                // The pty was last read 2.2 s before "now".
                idle_seconds: Some(2),
                idle_source: IdleSource::Terminal,
                class: Some(SessionClass::User),
                kind: Some(SessionType::Tty),
                leader: Some(51),
            }
        );
    }

    #[test]
    fn converts_a_recorded_closing_session() {
        let s = session_from_properties(&recorded_closing(), &at(RECORDED_NOW)).unwrap();
        assert_eq!(s.id, "54");
        assert_eq!(s.state, SessionState::Closing);
        // The leader has exited and its pid may be reused: never report it.
        assert_eq!(s.leader, None);
        assert_eq!(s.station, None);
        assert_eq!(s.remote_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.logon_time, Some(1_795_480_660));
        // No terminal, and logind's "not idle" comes with no time: unknown, never 0.
        assert_eq!((s.idle_seconds, s.idle_source), (None, IdleSource::Unknown));
    }

    #[test]
    fn an_idle_session_reports_the_time_since_its_idle_hint() {
        let mut p = recorded_active();
        p.insert("IdleHint".into(), owned(Value::from(true)));
        p.insert("IdleSinceHint".into(), owned(Value::from(RECORDED_NOW - 61_500_000)));
        assert_eq!(session_from_properties(&p, &at(RECORDED_NOW)).unwrap().idle_seconds, Some(61));
        // Idle, but since when is unknown.
        p.insert("IdleSinceHint".into(), owned(Value::from(0u64)));
        let s = session_from_properties(&p, &at(RECORDED_NOW)).unwrap();
        assert_eq!((s.idle_seconds, s.idle_source), (None, IdleSource::Unknown));
    }

    /// `IdleHint`, `IdleSinceHint` and `IdleSinceHintMonotonic` as systemd 252 reports them
    /// (the realtime ones recorded in the test container above; the graphical ones as
    /// `session_get_idle_hint` gives them: the desktop's hint with the time it was set, or
    /// nothing when the desktop never set one).
    #[test]
    fn idle_time_from_recorded_hints() {
        const MONO: u64 = 5_000_000_000; // 5000 s since boot
        let now = Clocks { realtime_usec: RECORDED_NOW, monotonic_usec: MONO, boottime_usec: MONO };
        // (what, IdleHint, IdleSinceHint, IdleSinceHintMonotonic, graphical, idle)
        type Row = (&'static str, Option<bool>, u64, u64, bool, Idle);
        let table: &[Row] = &[
            // ssh on a pty, typed into 2.2 s ago: the terminal's access time, not "0".
            ("tty, active", Some(false), 1_795_480_660_982_452, 0, false, Idle::known(2, IdleSource::Terminal)),
            // The same pty untouched for two hours: logind says idle (IdleActionSec passed).
            (
                "tty, idle 2h",
                Some(true),
                RECORDED_NOW - 7_200_000_000,
                0,
                false,
                Idle::known(7200, IdleSource::Terminal),
            ),
            // Untouched for 10 minutes: logind still says "not idle", the terminal knows better.
            (
                "tty, 10m, hint false",
                Some(false),
                RECORDED_NOW - 600_000_000,
                0,
                false,
                Idle::known(600, IdleSource::Terminal),
            ),
            // No terminal (`ssh host command`, a closing session): logind says "not idle"
            // with no time; unknown, not 0.
            ("no tty", Some(false), 0, 0, false, Idle::UNKNOWN),
            // A desktop that never calls SetIdleHint: "not idle", no time: unknown.
            ("x11, never set", Some(false), 0, 0, true, Idle::UNKNOWN),
            ("wayland, no properties", None, 0, 0, true, Idle::UNKNOWN),
            // A desktop that said "active" 50 s ago: idle 0.
            (
                "x11, active",
                Some(false),
                RECORDED_NOW - 50_000_000,
                MONO - 50_000_000,
                true,
                Idle::known(0, IdleSource::IdleHint),
            ),
            // A desktop idle since 1000 s of awake time, though 9000 s of wall time passed
            // (the machine slept in between): the monotonic time counts.
            (
                "x11, idle across a sleep",
                Some(true),
                RECORDED_NOW - 9_000_000_000,
                MONO - 1_000_000_000,
                true,
                Idle::known(1000, IdleSource::IdleHint),
            ),
            // No monotonic form (an older logind): the wall-clock time.
            (
                "x11, idle, realtime only",
                Some(true),
                RECORDED_NOW - 300_000_000,
                0,
                true,
                Idle::known(300, IdleSource::IdleHint),
            ),
            // Idle hint set, no time: unknown.
            ("x11, idle, no time", Some(true), 0, 0, true, Idle::UNKNOWN),
            // The clock stepped back: never negative.
            (
                "tty, atime in the future",
                Some(false),
                RECORDED_NOW + 5_000_000,
                0,
                false,
                Idle::known(0, IdleSource::Terminal),
            ),
        ];
        for (what, hint, since, mono, graphical, want) in table {
            assert_eq!(idle_of(*hint, *since, *mono, *graphical, &now), *want, "{what}");
        }
    }

    #[test]
    fn the_last_wake_from_recorded_clocks() {
        let clocks =
            |mono: u64, boot: u64| Clocks { realtime_usec: RECORDED_NOW, monotonic_usec: mono, boottime_usec: boot };
        let table: &[(&str, Clocks, Option<u64>, Wake)] = &[
            // This VM: the two clocks agree to the microsecond.
            ("never slept", clocks(5_187_834_976, 5_187_834_976), None, Wake::NeverSlept),
            (
                "a stale sleep.target time, never slept",
                clocks(5_187_834_976, 5_187_835_100),
                Some(100),
                Wake::NeverSlept,
            ),
            // Slept 10 h; sleep.target stopped (the wake) 90 s of awake time ago.
            ("woke 90 s ago", clocks(5_000_000_000, 41_000_000_000), Some(4_910_000_000), Wake::WokeAgo(90)),
            // Slept, but no sleep.target (elogind, or a suspend systemd did not do).
            ("slept, wake unknown", clocks(5_000_000_000, 41_000_000_000), None, Wake::Unknown),
            ("slept, never stopped", clocks(5_000_000_000, 41_000_000_000), Some(0), Wake::Unknown),
            (
                "slept, a time from the future",
                clocks(5_000_000_000, 41_000_000_000),
                Some(6_000_000_000),
                Wake::Unknown,
            ),
        ];
        for (what, now, stopped, want) in table {
            assert_eq!(wake_of(now, *stopped), *want, "{what}");
        }
    }

    #[test]
    fn a_graphical_session_is_named_after_its_display_then_its_seat() {
        let mut p = recorded_active();
        p.insert("TTY".into(), owned(Value::from("")));
        p.insert("Display".into(), owned(Value::from(":0")));
        p.insert("Seat".into(), owned(Value::from(("seat0", path("/org/freedesktop/login1/seat/seat0")))));
        p.insert("Type".into(), owned(Value::from("x11")));
        p.insert("Remote".into(), owned(Value::from(false)));
        let s = session_from_properties(&p, &at(0)).unwrap();
        assert_eq!(s.station.as_deref(), Some(":0"));
        assert_eq!(s.remote_host, None);
        assert_eq!(s.kind.map(SessionType::as_str), Some("x11"));

        p.insert("Display".into(), owned(Value::from("")));
        let s = session_from_properties(&p, &at(0)).unwrap();
        assert_eq!(s.station.as_deref(), Some("seat0"));
    }

    #[test]
    fn zero_leader_and_timestamp_are_unknown() {
        let mut p = recorded_active();
        p.insert("Leader".into(), owned(Value::from(0u32)));
        p.insert("Timestamp".into(), owned(Value::from(0u64)));
        let s = session_from_properties(&p, &at(RECORDED_NOW)).unwrap();
        assert_eq!((s.leader, s.logon_time), (None, None));
    }

    #[test]
    fn every_logind_state_maps() {
        for (word, state) in [
            ("active", SessionState::Active),
            ("online", SessionState::Online),
            ("closing", SessionState::Closing),
            ("opening", SessionState::Opening),
            ("lingering", SessionState::Unknown),
        ] {
            let mut p = recorded_active();
            p.insert("State".into(), owned(Value::from(word)));
            assert_eq!(session_from_properties(&p, &at(0)).unwrap().state, state, "{word}");
        }
    }

    #[test]
    fn properties_wrapped_in_a_variant_are_read() {
        let mut p = recorded_active();
        p.insert("Name".into(), owned(Value::Value(Box::new(Value::from("bob")))));
        assert_eq!(session_from_properties(&p, &at(0)).unwrap().user, "bob");
    }

    #[test]
    fn missing_or_mistyped_properties() {
        let mut p = recorded_active();
        p.remove("Id");
        assert!(session_from_properties(&p, &at(0)).unwrap_err().contains("Id"));

        let mut p = recorded_active();
        p.insert("Leader".into(), owned(Value::from("4242")));
        assert!(session_from_properties(&p, &at(0)).unwrap_err().contains("Leader"));

        let mut p = recorded_active();
        p.insert("User".into(), owned(Value::from(1001u32)));
        assert!(session_from_properties(&p, &at(0)).unwrap_err().contains("User"));

        // Only Id and Name are required; an older logind may lack the rest.
        let mut p = HashMap::new();
        p.insert("Id".to_string(), owned(Value::from("c1")));
        p.insert("Name".to_string(), owned(Value::from("root")));
        let s = session_from_properties(&p, &at(0)).unwrap();
        assert_eq!((s.id.as_str(), s.uid, s.state), ("c1", None, SessionState::Unknown));
    }

    #[test]
    fn error_names_map_to_kinds() {
        for (name, kind) in [
            (NO_SUCH_SESSION, ErrorKind::NotFound),
            (NO_SESSION_FOR_PID, ErrorKind::NotFound),
            ("org.freedesktop.DBus.Error.UnknownObject", ErrorKind::NotFound),
            ("org.freedesktop.DBus.Error.AccessDenied", ErrorKind::PermissionDenied),
            ("org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", ErrorKind::PermissionDenied),
            ("org.freedesktop.DBus.Error.ServiceUnknown", ErrorKind::Unsupported),
            ("org.freedesktop.DBus.Error.NoReply", ErrorKind::TimedOut),
            ("org.freedesktop.login1.Whatever", ErrorKind::Os),
        ] {
            assert_eq!(kind_of_error_name(name), kind, "{name}");
        }
        let denied = zbus::Error::FDO(Box::new(zbus::fdo::Error::AccessDenied("no".into())));
        let e = dbus_error("terminate logind session 3", denied);
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert!(e.to_string().starts_with("could not terminate logind session 3: "), "{e}");
    }

    #[test]
    fn no_bus_is_unsupported() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = connect_error("connect to systemd-logind", zbus::Error::InputOutput(io.into()));
        assert_eq!(e.kind, ErrorKind::Unsupported);
        let unknown = zbus::Error::FDO(Box::new(zbus::fdo::Error::ServiceUnknown("x".into())));
        assert_eq!(connect_error("c", unknown).kind, ErrorKind::Unsupported);
        let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let e = connect_error("c", zbus::Error::InputOutput(timeout.into()));
        assert_eq!(e.kind, ErrorKind::Unsupported);
    }

    /// A socket that accepts but never speaks D-Bus: connect gives up after a couple of
    /// seconds instead of hanging.
    #[test]
    fn connect_to_a_silent_bus_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("silent");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let t0 = std::time::Instant::now();
        let err = Logind::connect_at(Some(format!("unix:path={}", sock.display()))).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
        assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
    }

    /// Where there is no bus at the address, connect fails fast and says Unsupported.
    #[test]
    fn connect_to_a_missing_bus_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("nobus");
        let t0 = std::time::Instant::now();
        let err = Logind::connect_at(Some(format!("unix:path={}", sock.display()))).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
    }
}
