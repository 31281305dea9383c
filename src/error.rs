//! Typed errors of the library.
//!
//! An [`Error`] names what it was doing ("log off session 3 of CORP\\jsmith") and why it
//! failed; its [`ErrorKind`] decides the exit code and whether an outcome counts as
//! "already gone" rather than as a failure.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input or usage: nothing was done (exit 2).
    InvalidInput,
    /// The tool lacks the privilege to act (exit 3).
    PermissionDenied,
    /// This OS or backend cannot do this (exit 3 when it stops the run).
    Unsupported,
    /// The session or process was already gone: not a failure.
    NotFound,
    /// A remote server could not be reached.
    Unreachable,
    /// A wait ran out of time.
    TimedOut,
    /// Any other OS failure.
    Os,
}

/// A library error: a kind, the action it interrupted, and the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The kind, which decides exit codes.
    pub kind: ErrorKind,
    /// What was being done, as "verb object": "log off session 3 of alice".
    pub action: String,
    /// Why it failed, in the OS's words where there are some.
    pub cause: String,
    /// The raw OS error code (errno or Win32 error), when there is one.
    pub code: Option<i32>,
}

impl Error {
    /// Builds an error of `kind` for `action` with `cause`.
    pub fn new(kind: ErrorKind, action: impl Into<String>, cause: impl Into<String>) -> Error {
        Error { kind, action: action.into(), cause: cause.into(), code: None }
    }

    /// Builds an error from an `io::Error`, mapping its kind.
    pub fn from_io(action: impl Into<String>, err: &std::io::Error) -> Error {
        let kind = match err.kind() {
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::Unsupported => ErrorKind::Unsupported,
            std::io::ErrorKind::TimedOut => ErrorKind::TimedOut,
            _ => match err.raw_os_error() {
                #[cfg(unix)]
                Some(code) if code == libc::ESRCH => ErrorKind::NotFound,
                #[cfg(unix)]
                Some(code) if code == libc::EPERM => ErrorKind::PermissionDenied,
                _ => ErrorKind::Os,
            },
        };
        Error { kind, action: action.into(), cause: err.to_string(), code: err.raw_os_error() }
    }

    /// An `Unsupported` error for an operation this platform cannot do.
    pub fn unsupported(action: impl Into<String>, cause: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported, action, cause)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not {}: {}", self.action, self.cause)
    }
}

impl std::error::Error for Error {}

/// Short for `Result<T, Error>`.
pub type Result<T> = std::result::Result<T, Error>;
