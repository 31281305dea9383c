//! systemd-logind over D-Bus. STUB: the real client is written in another worktree and
//! replaces this file at merge time; this stub only fixes the interface.

use crate::backend::Done;
use crate::error::{Error, Result};
use crate::model::Session;

/// A connection to logind on the system bus.
#[derive(Debug)]
pub struct Logind {
    _private: (),
}

impl Logind {
    /// Connects to logind (honours `DBUS_SYSTEM_BUS_ADDRESS`).
    pub fn connect() -> Result<Logind> {
        Err(Error::unsupported("connect to logind", "the logind client is not merged yet"))
    }

    /// Lists logind's sessions.
    pub fn list_sessions(&self) -> Result<Vec<Session>> {
        Err(Error::unsupported("list logind sessions", "stub"))
    }

    /// TerminateSession; `Done::AlreadyGone` for NoSuchSession.
    pub fn terminate_session(&self, _id: &str) -> Result<Done> {
        Err(Error::unsupported("terminate a logind session", "stub"))
    }

    /// GetSessionByPID.
    pub fn session_of_pid(&self, _pid: u32) -> Result<Option<String>> {
        Err(Error::unsupported("find the session of a pid", "stub"))
    }
}
