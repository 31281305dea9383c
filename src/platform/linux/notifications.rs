//! Desktop notifications: `org.freedesktop.Notifications.Notify` on a user's session bus,
//! for the warning sent to a graphical logind session.
//!
//! Which sessions get one is decided by [`session_bus_of`], which is pure. The D-Bus call
//! is [`notify`]: the socket is connected by a thread that has dropped its credentials to
//! the user's (`sys::connect_unix_as`), because a session bus lets in only its own uid
//! (it compares the uid of AUTH EXTERNAL with the socket's `SO_PEERCRED`, which the kernel
//! takes from the connecting thread). zbus then authenticates on that socket with the
//! user's uid given explicitly, so no zbus code ever runs with lesser credentials and
//! every thread of the tool keeps root.
//!
//! What does not live here: writing to terminals (the backend's `send_message`), and any
//! session bus other than the standard `/run/user/UID/bus` (a `DBUS_SESSION_BUS_ADDRESS`
//! set inside a user's desktop is not visible to the tool).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use zbus::blocking::connection::Builder;
use zbus::zvariant::Value;

use super::sys;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Session, SessionType};

const DESTINATION: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const INTERFACE: &str = "org.freedesktop.Notifications";
/// The application name the notification server shows.
pub const APP_NAME: &str = "logoff-users";
/// How long the notification stays up, as the Windows message box does (servers may
/// ignore it, and keep a critical notification until it is dismissed).
const EXPIRE_TIMEOUT_MS: i32 = 60_000;
/// The bound on connecting, authenticating and the Notify reply: a bus that nobody
/// serves, or a notification server that hangs, must not hold up the logoff.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The session bus socket to notify for `session`: `/run/user/UID/bus` when the session
/// is graphical (logind type `x11`, `wayland` or `mir`) and its uid is known; `None`
/// otherwise (a `tty` session gets its message on the terminal only). Whether the socket
/// exists is found out when connecting.
pub fn session_bus_of(session: &Session) -> Option<SessionBus> {
    let graphical = session.kind.is_some_and(SessionType::is_graphical);
    match session.uid {
        Some(uid) if graphical => Some(SessionBus { uid, path: session_bus_path(uid) }),
        _ => None,
    }
}

/// A user's session bus: the socket, and the uid it admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBus {
    /// The user's uid.
    pub uid: u32,
    /// The bus socket.
    pub path: PathBuf,
}

/// The standard session bus socket of `uid` (systemd's and dbus-user-session's).
pub fn session_bus_path(uid: u32) -> PathBuf {
    PathBuf::from(format!("/run/user/{uid}/bus"))
}

/// Shows a notification with `title` and `text` on the session bus at `bus`, as the user
/// `uid` (primary group `gid`). Returns the notification id the server gave.
///
/// # Errors
///
/// `NotFound` when there is no socket at `bus` (the user has no session bus), `Unsupported`
/// when nobody on that bus provides `org.freedesktop.Notifications`, `PermissionDenied`
/// when the tool cannot take the user's credentials (it is not root), `TimedOut` when the
/// bus or the server do not answer within 5 s, `Os` for other failures.
///
/// # Platform-specific behavior
///
/// Linux only. Must be called as root unless `uid` is the tool's own uid.
pub fn notify(bus: &Path, uid: u32, gid: u32, title: &str, text: &str) -> Result<u32> {
    let action = format!("show a desktop notification on {}", bus.display());
    let stream = sys::connect_unix_as(bus, uid, gid).map_err(|e| {
        let mut err = Error::from_io(action.clone(), &e);
        if e.kind() == std::io::ErrorKind::NotFound {
            err.cause = format!("the user has no session bus ({e})");
        }
        err
    })?;
    let (title, body) = (title.to_string(), escape_markup(text));
    // The handshake and the call can block where zbus's method timeout does not reach (a
    // socket nobody reads): a helper thread bounds them, and is left behind if it hangs.
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            let sent = Builder::unix_stream(stream)
                // The uid the bus saw at connect(); zbus would send the calling thread's.
                .user_id(uid)
                .method_timeout(TIMEOUT)
                .build()
                .and_then(|conn| {
                    let hints = HashMap::from([("urgency", Value::U8(2))]);
                    let args = (
                        APP_NAME,
                        0u32,
                        "",
                        title.as_str(),
                        body.as_str(),
                        Vec::<&str>::new(),
                        hints,
                        EXPIRE_TIMEOUT_MS,
                    );
                    let reply = conn.call_method(Some(DESTINATION), PATH, Some(INTERFACE), "Notify", &args)?;
                    reply.body().deserialize::<u32>()
                });
            let _ = tx.send(sent);
        })
        .map_err(|e| Error::from_io(action.clone(), &e))?;
    match rx.recv_timeout(TIMEOUT + Duration::from_secs(1)) {
        Ok(Ok(id)) => Ok(id),
        Ok(Err(e)) => Err(notify_error(&action, e)),
        Err(_) => Err(Error::new(
            ErrorKind::TimedOut,
            action,
            format!("the session bus did not answer within {}s", TIMEOUT.as_secs()),
        )),
    }
}

fn notify_error(action: &str, e: zbus::Error) -> Error {
    match &e {
        zbus::Error::InputOutput(io) => Error::from_io(action, io),
        zbus::Error::MethodError(name, _, _)
            if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"
                || name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
        {
            Error::unsupported(action, format!("no notification server on the session bus ({e})"))
        }
        _ => Error::new(ErrorKind::Os, action, e.to_string()),
    }
}

/// The body as plain text for servers that read markup in it (the spec's `body-markup`).
fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionState;

    #[test]
    fn only_graphical_sessions_with_a_uid_get_a_notification() {
        let session = |kind: Option<&str>, uid: Option<u32>| Session {
            kind: kind.map(SessionType::parse),
            uid,
            ..Session::new("c1", "alice", SessionState::Active)
        };
        let cases: [(Option<&str>, Option<u32>, Option<&str>); 9] = [
            (Some("x11"), Some(1000), Some("/run/user/1000/bus")),
            (Some("wayland"), Some(1001), Some("/run/user/1001/bus")),
            (Some("mir"), Some(1002), Some("/run/user/1002/bus")),
            (Some("wayland"), None, None),
            (Some("tty"), Some(1000), None),
            (Some("unspecified"), Some(1000), None),
            (Some("web"), Some(1000), None),
            (Some("X11"), Some(1000), None),
            (None, Some(1000), None),
        ];
        for (kind, uid, want) in cases {
            let got = session_bus_of(&session(kind, uid));
            assert_eq!(got.as_ref().map(|b| b.path.as_path()), want.map(Path::new), "{kind:?} {uid:?}");
            assert_eq!(got.map(|b| b.uid), want.and(uid), "{kind:?} {uid:?}");
        }
    }

    #[test]
    fn body_markup_is_escaped() {
        assert_eq!(escape_markup("<b>save</b> & go"), "&lt;b&gt;save&lt;/b&gt; &amp; go");
    }

    #[test]
    fn a_missing_bus_is_not_found() {
        if sys::effective_uid() != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let err = notify(&dir.path().join("bus"), 0, 0, "t", "x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("no session bus"), "{err}");
    }
}
