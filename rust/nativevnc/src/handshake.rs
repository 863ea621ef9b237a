//! The RFB handshake, client side: ProtocolVersion, security (None, VNC authentication), SecurityResult,
//! ClientInit and ServerInit (RFC 6143 §7.1-7.3). Versions 3.3, 3.7 and 3.8 are spoken; anything newer
//! is answered with 3.8 and anything between 3.3 and 3.7 with 3.3, as the RFC asks.

use std::fmt;

use des::cipher::{BlockEncrypt, KeyInit};

use crate::codec::{Parse, Put, ReadError, Reader};
use crate::config::Limits;
use crate::error::ProtocolError;
use crate::pixel::PixelFormat;

/// The protocol version both sides speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V3_3,
    V3_7,
    V3_8,
}

impl Version {
    fn wire(self) -> &'static [u8; 12] {
        match self {
            Version::V3_3 => b"RFB 003.003\n",
            Version::V3_7 => b"RFB 003.007\n",
            Version::V3_8 => b"RFB 003.008\n",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V3_3 => "3.3",
            Version::V3_7 => "3.7",
            Version::V3_8 => "3.8",
        })
    }
}

pub mod security {
    pub const INVALID: u8 = 0;
    pub const NONE: u8 = 1;
    pub const VNC_AUTH: u8 = 2;
}

/// The secret for VNC authentication. Its `Debug` never shows it.
#[derive(Clone, Default)]
pub struct Credentials {
    password: Option<String>,
}

impl Credentials {
    pub fn new(password: Option<String>) -> Self {
        Credentials { password: password.filter(|p| !p.is_empty()) }
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.password.is_some() { "Credentials(password: <hidden>)" } else { "Credentials(none)" })
    }
}

/// What ServerInit told us, plus what was negotiated on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInit {
    pub width: u16,
    pub height: u16,
    pub pixel_format: PixelFormat,
    pub name: String,
    pub version: Version,
    pub security: u8,
}

/// The VNC authentication response: the challenge DES-encrypted with the password as key (its first
/// eight bytes, NUL-padded, each byte's bits reversed, as every VNC implementation does).
pub fn vnc_auth_response(password: &str, challenge: &[u8; 16]) -> [u8; 16] {
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(password.as_bytes()) {
        *k = b.reverse_bits();
    }
    let cipher = des::Des::new(&key.into());
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(block.into());
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Version,
    SecurityTypes,
    SecurityType33,
    Challenge,
    SecurityResult,
    ServerInit,
    Done,
}

/// The handshake state machine. Feed it the server's bytes with [`Handshake::advance`]; it writes the
/// client's replies and returns the [`ServerInit`] once the session is open.
#[derive(Debug)]
pub struct Handshake {
    state: State,
    version: Version,
    security: u8,
    credentials: Credentials,
    shared: bool,
}

impl Handshake {
    pub fn new(credentials: Credentials, shared: bool) -> Self {
        Handshake { state: State::Version, version: Version::V3_8, security: 0, credentials, shared }
    }

    /// Runs as many steps as the input allows. `Err(ReadError::Incomplete)` means waiting for more input;
    /// the reader then stands after the last complete step.
    pub fn advance(&mut self, r: &mut Reader, out: &mut Vec<u8>, limits: &Limits) -> Parse<ServerInit> {
        loop {
            let mut step = r.clone();
            let done = self.step(&mut step, out, limits)?;
            *r = step;
            if let Some(init) = done {
                return Ok(init);
            }
        }
    }

    /// One step. Every step reads all of its input before it writes anything, so a step cut short by
    /// `Incomplete` can be run again from the start without duplicating output.
    fn step(&mut self, r: &mut Reader, out: &mut Vec<u8>, limits: &Limits) -> Parse<Option<ServerInit>> {
        match self.state {
            State::Version => {
                let v = r.array::<12>()?;
                self.version = negotiate_version(&v)?;
                out.extend_from_slice(self.version.wire());
                self.state = if self.version == Version::V3_3 { State::SecurityType33 } else { State::SecurityTypes };
            }
            State::SecurityTypes => {
                let n = usize::from(r.u8()?);
                if n == 0 {
                    return Err(ProtocolError::Refused(read_reason(r, limits)?).into());
                }
                let offered = r.take(n)?;
                let chosen = [security::NONE, security::VNC_AUTH].into_iter().find(|t| offered.contains(t));
                let Some(chosen) = chosen else {
                    return Err(ProtocolError::NoSecurityType(offered.to_vec()).into());
                };
                out.put_u8(chosen);
                self.chose(chosen, out)?;
            }
            State::SecurityType33 => match r.u32()? {
                0 => return Err(ProtocolError::Refused(read_reason(r, limits)?).into()),
                t @ (1 | 2) => self.chose(t as u8, out)?,
                t => return Err(ProtocolError::NoSecurityType(vec![t.min(255) as u8]).into()),
            },
            State::Challenge => {
                let challenge = r.array::<16>()?;
                let password = self.credentials.password.as_deref().ok_or(ProtocolError::PasswordRequired)?;
                out.extend_from_slice(&vnc_auth_response(password, &challenge));
                self.state = State::SecurityResult;
            }
            State::SecurityResult => {
                let result = r.u32()?;
                if result != 0 {
                    let reason = if self.version == Version::V3_8 {
                        read_reason(r, limits)?
                    } else if result == 2 {
                        "too many authentication attempts".into()
                    } else {
                        "the server rejected the credentials".into()
                    };
                    let reason = if self.security == security::VNC_AUTH && !reason.contains("password") {
                        format!("{reason} (wrong VNC password?)")
                    } else {
                        reason
                    };
                    return Err(ProtocolError::AuthenticationFailed(reason).into());
                }
                self.client_init(out);
            }
            State::ServerInit => {
                let width = r.u16()?;
                let height = r.u16()?;
                let pixel_format = PixelFormat::read(r)?;
                let name = read_string(r, "desktop name", limits)?;
                limits.check_framebuffer(width, height)?;
                self.state = State::Done;
                return Ok(Some(ServerInit {
                    width,
                    height,
                    pixel_format,
                    name,
                    version: self.version,
                    security: self.security,
                }));
            }
            State::Done => return Err(ReadError::Incomplete),
        }
        Ok(None)
    }

    fn chose(&mut self, security: u8, out: &mut Vec<u8>) -> Parse<()> {
        self.security = security;
        if security == security::VNC_AUTH {
            if !self.credentials.has_password() {
                return Err(ProtocolError::PasswordRequired.into());
            }
            self.state = State::Challenge;
        } else if self.version == Version::V3_8 {
            self.state = State::SecurityResult;
        } else {
            // 3.3 and 3.7 send no SecurityResult for None: ClientInit follows at once.
            self.client_init(out);
        }
        Ok(())
    }

    fn client_init(&mut self, out: &mut Vec<u8>) {
        out.put_u8(self.shared as u8);
        self.state = State::ServerInit;
    }
}

fn negotiate_version(v: &[u8; 12]) -> Result<Version, ProtocolError> {
    let bad = || ProtocolError::BadVersion(String::from_utf8_lossy(v).trim_end().to_string());
    if &v[..4] != b"RFB " || v[7] != b'.' || v[11] != b'\n' {
        return Err(bad());
    }
    let num = |s: &[u8]| -> Result<u32, ProtocolError> {
        if !s.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(s.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0')))
    };
    let (major, minor) = (num(&v[4..7])?, num(&v[8..11])?);
    Ok(match (major, minor) {
        (m, _) if m > 3 => Version::V3_8,
        (3, m) if m >= 8 => Version::V3_8,
        (3, 7) => Version::V3_7,
        (3, m) if m >= 3 => Version::V3_3,
        _ => return Err(ProtocolError::VersionTooOld(format!("{major}.{minor}"))),
    })
}

fn read_reason(r: &mut Reader, limits: &Limits) -> Parse<String> {
    Ok(read_string(r, "reason string", limits)?.trim_end_matches('\0').to_string())
}

/// A string with a u32 length, at most [`Limits::max_name_len`] bytes.
fn read_string(r: &mut Reader, what: &'static str, limits: &Limits) -> Parse<String> {
    let n = r.u32()? as usize;
    if n > limits.max_name_len {
        return Err(ProtocolError::TooLarge { what, size: n as u64, limit: limits.max_name_len as u64 }.into());
    }
    Ok(String::from_utf8_lossy(r.take(n)?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_init(w: u16, h: u16, name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_u16(w);
        v.put_u16(h);
        PixelFormat::BGRX.encode(&mut v);
        v.put_u32(name.len() as u32);
        v.extend_from_slice(name.as_bytes());
        v
    }

    /// Runs a handshake over `server` bytes offered one byte more at a time; returns the result and what
    /// the client wrote.
    fn run(server: &[u8], password: Option<&str>) -> (Result<ServerInit, ProtocolError>, Vec<u8>) {
        let mut hs = Handshake::new(Credentials::new(password.map(String::from)), true);
        let limits = Limits::default();
        let mut out = Vec::new();
        let mut start = 0;
        for end in 0..=server.len() {
            let mut r = Reader::new(&server[start..end]);
            let res = hs.advance(&mut r, &mut out, &limits);
            start += r.consumed();
            match res {
                Ok(init) => {
                    assert_eq!(start, server.len(), "the whole handshake is consumed");
                    return (Ok(init), out);
                }
                Err(ReadError::Invalid(e)) => return (Err(e), out),
                Err(ReadError::Incomplete) => {}
            }
        }
        panic!("handshake incomplete after all input; client wrote {out:?}");
    }

    #[test]
    fn des_response_matches_os_autoinst_vector() {
        let r = vnc_auth_response("supersecret", &[0; 16]);
        let expected: Vec<u8> =
            [0x80D03992u32, 0xB0DB4495, 0x80D03992, 0xB0DB4495].iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(r.to_vec(), expected);
    }

    #[test]
    fn v3_8_security_none() {
        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[2, 2, 1, 0, 0, 0, 0]);
        s.extend(server_init(1024, 768, "QEMU"));
        let (init, out) = run(&s, None);
        let init = init.unwrap();
        assert_eq!((init.width, init.height, init.name.as_str()), (1024, 768, "QEMU"));
        assert_eq!((init.version, init.security), (Version::V3_8, security::NONE));
        assert_eq!(out, b"RFB 003.008\n\x01\x01");
    }

    #[test]
    fn v3_7_none_has_no_security_result() {
        let mut s = b"RFB 003.007\n".to_vec();
        s.extend_from_slice(&[1, 1]);
        s.extend(server_init(640, 480, "x"));
        let (init, out) = run(&s, None);
        assert_eq!(init.unwrap().version, Version::V3_7);
        assert_eq!(out, b"RFB 003.007\n\x01\x01");
    }

    #[test]
    fn v3_3_vnc_auth() {
        let mut s = b"RFB 003.003\n".to_vec();
        s.extend_from_slice(&[0, 0, 0, 2]);
        s.extend_from_slice(&[0; 16]);
        s.extend_from_slice(&[0, 0, 0, 0]);
        s.extend(server_init(800, 600, ""));
        let (init, out) = run(&s, Some("supersecret"));
        assert_eq!(init.unwrap().security, security::VNC_AUTH);
        let mut expected = b"RFB 003.003\n".to_vec();
        expected.extend_from_slice(&vnc_auth_response("supersecret", &[0; 16]));
        expected.push(1);
        assert_eq!(out, expected);
    }

    #[test]
    fn prefers_none_and_falls_back_to_vnc_auth() {
        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[2, 2, 16]);
        s.extend_from_slice(&[9; 16]);
        s.extend_from_slice(&[0, 0, 0, 0]);
        s.extend(server_init(8, 8, "a"));
        let (init, out) = run(&s, Some("pw"));
        assert_eq!(init.unwrap().security, security::VNC_AUTH);
        assert_eq!(out[12], 2);
    }

    #[test]
    fn version_negotiation() {
        for (server, ours) in [
            (b"RFB 003.889\n", Version::V3_8),
            (b"RFB 004.001\n", Version::V3_8),
            (b"RFB 003.005\n", Version::V3_3),
            (b"RFB 003.007\n", Version::V3_7),
        ] {
            assert_eq!(negotiate_version(server), Ok(ours));
        }
        assert_eq!(negotiate_version(b"RFB 002.009\n"), Err(ProtocolError::VersionTooOld("2.9".into())));
        assert_eq!(negotiate_version(b"HTTP/1.1 400"), Err(ProtocolError::BadVersion("HTTP/1.1 400".into())));
        assert_eq!(negotiate_version(b"RFB 003.0x8\n"), Err(ProtocolError::BadVersion("RFB 003.0x8".into())));
    }

    #[test]
    fn refusals_and_failures() {
        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[0, 0, 0, 0, 9]);
        s.extend_from_slice(b"too many!");
        assert_eq!(run(&s, None).0, Err(ProtocolError::Refused("too many!".into())));

        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[1, 2]);
        assert_eq!(run(&s, None).0, Err(ProtocolError::PasswordRequired));

        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[2, 16, 19]);
        assert_eq!(run(&s, None).0, Err(ProtocolError::NoSecurityType(vec![16, 19])));

        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[1, 2]);
        s.extend_from_slice(&[0; 16]);
        s.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 21]);
        s.extend_from_slice(b"Authentication failed");
        assert_eq!(
            run(&s, Some("wrong")).0,
            Err(ProtocolError::AuthenticationFailed("Authentication failed (wrong VNC password?)".into()))
        );

        let mut s = b"RFB 003.003\n".to_vec();
        s.extend_from_slice(&[0, 0, 0, 2]);
        s.extend_from_slice(&[0; 16]);
        s.extend_from_slice(&[0, 0, 0, 1]);
        assert!(matches!(run(&s, Some("x")).0, Err(ProtocolError::AuthenticationFailed(_))));
    }

    #[test]
    fn hostile_server_init() {
        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        let mut init = server_init(65535, 65535, "");
        s.extend_from_slice(&init);
        assert!(matches!(run(&s, None).0, Err(ProtocolError::FramebufferTooLarge { .. })));

        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        init = server_init(10, 10, "");
        let n = init.len();
        init[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        s.extend_from_slice(&init);
        assert!(matches!(run(&s, None).0, Err(ProtocolError::TooLarge { what: "desktop name", .. })));
    }

    #[test]
    fn credentials_never_show_the_password() {
        let c = Credentials::new(Some("hunter2".into()));
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Handshake::new(c, true)).contains("hunter2"));
    }
}
