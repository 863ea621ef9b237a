//! Login sessions: SOAP's, identified by the `vmware_soap_session` cookie, and the REST API's, whose token (the
//! same id) comes in the `vmware-api-session-id` header. Also HTTP basic credentials, which REST logins and
//! datastore files take.

use std::collections::HashMap;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use crate::soap::escape;
use crate::values::iso8601;

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).expect("the system random number generator works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cookie's name, as vSphere sets it.
pub const COOKIE: &str = "vmware_soap_session";

/// The session id in a `Cookie` header. pyVmomi sends back the whole `Set-Cookie` value, attributes and all,
/// so everything after the first `;` is ignored; quotes around the value are stripped.
pub fn session_from_cookie(header: &str) -> Option<&str> {
    header.split(';').map(str::trim).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == COOKIE).then(|| v.trim().trim_matches('"'))
    })
}

/// The user name and password of an `Authorization: Basic …` header value.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE}=\"{id}\"; Path=/; HttpOnly; Secure")
}

/// The API a session was opened through; a session serves only its own API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Soap,
    Rest,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::Soap => "SOAP",
            Api::Rest => "REST",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub api: Api,
    pub user: String,
    pub key: String,
    pub login_time: SystemTime,
    pub logged_out: bool,
}

impl Session {
    /// The fields of this session's `UserSession` (Login's answer, `SessionManager.currentSession`).
    pub fn user_session_fields(&self) -> String {
        let time = iso8601(self.login_time);
        format!(
            "<key>{key}</key><userName>{user}</userName><fullName>{full}</fullName><loginTime>{time}</loginTime>\
             <lastActiveTime>{time}</lastActiveTime><locale>en</locale><messageLocale>en</messageLocale>\
             <extensionSession>false</extensionSession><ipAddress>127.0.0.1</ipAddress>\
             <userAgent>webmks-sim</userAgent><callCount>0</callCount>",
            key = self.key,
            user = escape(&self.user),
            full = if self.user == "root" { "root" } else { "" },
        )
    }
}

/// All sessions ever created (logged-out ones are kept: tickets remember which session made them).
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    /// Creates a session; returns its id (SOAP's cookie, REST's token).
    pub fn login(&mut self, user: &str, api: Api) -> String {
        let id = random_hex(20);
        let key = format!("52{}", random_hex(15));
        let session = Session { api, user: user.to_string(), key, login_time: SystemTime::now(), logged_out: false };
        self.by_id.insert(id.clone(), session);
        id
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<&Session> {
        self.by_id.get(id).filter(|s| !s.logged_out)
    }

    /// Ends the live session `id`; returns it, or `None` if it was not live.
    pub fn logout(&mut self, id: &str) -> Option<Session> {
        let s = self.by_id.get_mut(id).filter(|s| !s.logged_out)?;
        s.logged_out = true;
        Some(s.clone())
    }

    pub fn is_live(&self, id: &str) -> bool {
        self.get(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        assert_eq!(session_from_cookie("vmware_soap_session=\"abc\"; Path=/; HttpOnly; Secure"), Some("abc"));
        assert_eq!(session_from_cookie("vmware_client=VMware; vmware_soap_session=xyz"), Some("xyz"));
        assert_eq!(session_from_cookie("other=1"), None);
        assert_eq!(session_from_cookie(&set_cookie("q")), Some("q"));
    }

    #[test]
    fn basic() {
        let pair = |u: &str, p: &str| Some((u.to_string(), p.to_string()));
        assert_eq!(basic_credentials("Basic cm9vdDpwdw=="), pair("root", "pw"));
        assert_eq!(basic_credentials("basic  cm9vdDpwdzE6Mg== "), pair("root", "pw1:2"), "the first colon splits");
        assert_eq!(basic_credentials("Basic cm9vdA=="), None, "no colon");
        assert_eq!(basic_credentials("Basic !"), None);
        assert_eq!(basic_credentials("Bearer cm9vdDpwdw=="), None);
    }

    #[test]
    fn login_and_logout() {
        let mut s = Sessions::default();
        let id = s.login("root", Api::Soap);
        assert_eq!(id.len(), 40);
        assert_eq!(s.get(&id).unwrap().user, "root");
        assert_eq!(s.logout(&id).unwrap().api, Api::Soap);
        assert!(s.logout(&id).is_none());
        assert!(!s.is_live(&id));
        assert!(s.get("nope").is_none());
    }
}
