//! Error types.
//!
//! Two layers, as in rustls: [`ProtocolError`] says what in the byte stream was wrong (the server sent
//! something that can never be valid), [`Error`] is what a caller of the client sees, with a [`ErrorKind`]
//! that the Perl layer maps onto os-autoinst's exception classes. "Not enough bytes yet" is not an error
//! anywhere: parsers report it as [`crate::codec::Incomplete`] and the session waits for more input.

use std::fmt;

/// The server sent bytes that break the protocol. The connection cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed RFB protocol version {0:?}")]
    BadVersion(String),
    #[error("RFB protocol version {0} is older than 3.3 and not supported")]
    VersionTooOld(String),
    #[error("the server refused the connection: {0}")]
    Refused(String),
    #[error("the server offers no security type this client supports (offered: {0:?})")]
    NoSecurityType(Vec<u8>),
    #[error("the server requires a password, but none was given")]
    PasswordRequired,
    #[error("{}", authentication_failed(.0))]
    AuthenticationFailed(String),
    #[error("unsupported pixel format: {0}")]
    UnsupportedPixelFormat(String),
    #[error("framebuffer size {width}x{height} exceeds the limit of {max_pixels} pixels")]
    FramebufferTooLarge { width: u32, height: u32, max_pixels: u64 },
    #[error("{encoding} rectangle at {x},{y} size {w}x{h} lies outside the {fb_w}x{fb_h} framebuffer")]
    RectOutOfBounds { encoding: &'static str, x: u32, y: u32, w: u32, h: u32, fb_w: u32, fb_h: u32 },
    #[error("the server used encoding {0}, which this client did not ask for and cannot decode")]
    UnsupportedEncoding(i32),
    #[error("unknown server message type {0}")]
    UnknownMessage(u8),
    #[error("{encoding}: {what}")]
    Malformed { encoding: &'static str, what: String },
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { what: &'static str, size: u64, limit: u64 },
}

/// "authentication failed: REASON", without saying it twice when the server's reason already does.
fn authentication_failed(reason: &str) -> String {
    const SAID: &str = "authentication failed";
    match reason.get(..SAID.len()) {
        Some(start) if start.eq_ignore_ascii_case(SAID) => format!("{SAID}{}", &reason[SAID.len()..]),
        _ => format!("{SAID}: {reason}"),
    }
}

impl ProtocolError {
    pub(crate) fn malformed(encoding: &'static str, what: impl Into<String>) -> Self {
        ProtocolError::Malformed { encoding, what: what.into() }
    }
}

/// What kind of failure an [`Error`] is; stable numbers, they cross the C ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorKind {
    /// Could not reach the server (refused, unreachable, DNS, connect timeout).
    Connect = 1,
    /// The server rejected our credentials.
    Auth = 2,
    /// The stream broke: a protocol violation, the server closing the connection, an I/O error mid-session.
    Protocol = 3,
    /// An operation did not finish within its timeout.
    Timeout = 4,
    /// The caller asked for something invalid (bad argument, unknown key name, not connected).
    Usage = 5,
    /// A bug in this library (a caught panic).
    Internal = 6,
    /// The connection cannot be set up as configured, and trying again at once will not change that: a
    /// certificate that is refused, an answer from the vSphere API that cannot be used, or a webmks ticket
    /// that could not be had within its attempts.
    Setup = 7,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Usage => "usage",
            ErrorKind::Internal => "internal",
            ErrorKind::Setup => "setup",
        }
    }
}

/// An error as the client's user sees it: a kind and a message that never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    pub fn connect(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Connect, message)
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    pub fn setup(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Setup, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error { kind: self.kind, message: format!("{context}: {}", self.message) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        let kind = match e {
            ProtocolError::AuthenticationFailed(_) | ProtocolError::PasswordRequired => ErrorKind::Auth,
            _ => ErrorKind::Protocol,
        };
        Error::new(kind, e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_failures_say_so_once() {
        let said = |reason: &str| ProtocolError::AuthenticationFailed(reason.into()).to_string();
        assert_eq!(said("Authentication failed (wrong VNC password?)"), "authentication failed (wrong VNC password?)");
        assert_eq!(said("too many authentication attempts"), "authentication failed: too many authentication attempts");
        assert_eq!(said("Auth"), "authentication failed: Auth");
    }
}
