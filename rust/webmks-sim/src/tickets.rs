//! webmks tickets: random, one-shot, with a lifetime, and bound to the session (SOAP or REST) that acquired them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::sessions::{random_hex, Sessions};

#[derive(Debug, Clone)]
struct Ticket {
    /// The VM's managed object id.
    vm: String,
    session: String,
    expires: Instant,
    used: bool,
}

/// Why a ticket cannot be used; the HTTP status of the refused WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Used,
    Expired,
    LoggedOut,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::Unknown => 404,
            Refusal::Used | Refusal::Expired | Refusal::LoggedOut => 503,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown ticket",
            Refusal::Used => "ticket already used (tickets are one-shot)",
            Refusal::Expired => "ticket expired",
            Refusal::LoggedOut => "the session that acquired the ticket has logged out",
        }
    }
}

/// A ticket shortened for logs: its first four characters.
pub fn short(ticket: &str) -> String {
    format!("{}…", ticket.chars().take(4).collect::<String>())
}

/// A ticket's WebSocket URL on `host` (an IPv6 address gets brackets) and `port`.
pub fn url(host: &str, port: u16, ticket: &str) -> String {
    if host.contains(':') {
        format!("wss://[{host}]:{port}/ticket/{ticket}")
    } else {
        format!("wss://{host}:{port}/ticket/{ticket}")
    }
}

#[derive(Debug, Default)]
pub struct Tickets {
    by_id: HashMap<String, Ticket>,
}

impl Tickets {
    /// A new ticket for the VM with managed object id `vm`, acquired in session `session`.
    pub fn issue(&mut self, vm: &str, session: &str, ttl: Duration, now: Instant) -> String {
        let id = random_hex(16);
        let ticket = Ticket { vm: vm.to_string(), session: session.to_string(), expires: now + ttl, used: false };
        self.by_id.insert(id.clone(), ticket);
        id
    }

    /// Uses a ticket up; returns its VM's managed object id.
    pub fn redeem(&mut self, id: &str, sessions: &Sessions, now: Instant) -> Result<String, Refusal> {
        let t = self.by_id.get_mut(id).ok_or(Refusal::Unknown)?;
        if t.used {
            return Err(Refusal::Used);
        }
        t.used = true;
        if now >= t.expires {
            return Err(Refusal::Expired);
        }
        if !sessions.is_live(&t.session) {
            return Err(Refusal::LoggedOut);
        }
        Ok(t.vm.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::Api;

    #[test]
    fn one_shot_expiring_and_bound_to_the_session() {
        let mut sessions = Sessions::default();
        let sid = sessions.login("root", Api::Rest);
        let mut t = Tickets::default();
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        let a = t.issue("3", &sid, ttl, now);
        assert_eq!(a.len(), 32);
        assert_eq!(t.redeem(&a, &sessions, now), Ok("3".to_string()));
        assert_eq!(t.redeem(&a, &sessions, now), Err(Refusal::Used));
        assert_eq!(t.redeem("zzz", &sessions, now), Err(Refusal::Unknown));
        let b = t.issue("1", &sid, ttl, now);
        assert_eq!(t.redeem(&b, &sessions, now + ttl), Err(Refusal::Expired));
        let c = t.issue("1", &sid, ttl, now);
        sessions.logout(&sid);
        assert_eq!(t.redeem(&c, &sessions, now), Err(Refusal::LoggedOut));
        assert_eq!((Refusal::Unknown.status(), Refusal::Used.status()), (404, 503));
        assert_eq!(short("abcdef"), "abcd…");
    }

    #[test]
    fn urls() {
        assert_eq!(url("esx.test", 443, "ab"), "wss://esx.test:443/ticket/ab");
        assert_eq!(url("::1", 8443, "ab"), "wss://[::1]:8443/ticket/ab");
    }
}
