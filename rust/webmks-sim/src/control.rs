//! The test-control side of the simulator: counters (`GET /_sim/stats`) and the switches tests flip
//! (`POST /_sim/close|stall|freeze|thaw|refuse-tickets|close-after-keys`), which every open webmks connection
//! watches.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::sessions::Api;

/// Counters, readable as JSON. `logins`, `failed_logins` and `logouts` count SOAP sessions, the `rest_` ones
/// REST sessions.
#[derive(Debug, Default)]
pub struct Stats {
    pub logins: AtomicU64,
    pub failed_logins: AtomicU64,
    pub logouts: AtomicU64,
    pub rest_logins: AtomicU64,
    pub rest_failed_logins: AtomicU64,
    pub rest_logouts: AtomicU64,
    pub tickets_issued: AtomicU64,
    pub tickets_used: AtomicU64,
    pub tickets_rejected: AtomicU64,
    pub sessions_open: AtomicU64,
    pub sessions_total: AtomicU64,
    pub updates_sent: AtomicU64,
    pub key_events: AtomicU64,
    pub vmw_key_events: AtomicU64,
    pub pointer_events: AtomicU64,
    pub wheel_events: AtomicU64,
    pub set_pixel_format_ignored: AtomicU64,
    pub last_set_encodings: Mutex<Vec<i32>>,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

impl Stats {
    /// The counters of logins, refused logins and logouts through `api`.
    pub fn sessions(&self, api: Api) -> [&AtomicU64; 3] {
        match api {
            Api::Soap => [&self.logins, &self.failed_logins, &self.logouts],
            Api::Rest => [&self.rest_logins, &self.rest_failed_logins, &self.rest_logouts],
        }
    }

    pub fn to_json(&self) -> String {
        let counters = [
            ("logins", &self.logins),
            ("failed_logins", &self.failed_logins),
            ("logouts", &self.logouts),
            ("rest_logins", &self.rest_logins),
            ("rest_failed_logins", &self.rest_failed_logins),
            ("rest_logouts", &self.rest_logouts),
            ("tickets_issued", &self.tickets_issued),
            ("tickets_used", &self.tickets_used),
            ("tickets_rejected", &self.tickets_rejected),
            ("sessions_open", &self.sessions_open),
            ("sessions_total", &self.sessions_total),
            ("updates_sent", &self.updates_sent),
            ("key_events", &self.key_events),
            ("vmw_key_events", &self.vmw_key_events),
            ("pointer_events", &self.pointer_events),
            ("wheel_events", &self.wheel_events),
            ("set_pixel_format_ignored", &self.set_pixel_format_ignored),
        ];
        let mut fields: Vec<String> = counters.iter().map(|(k, v)| format!("\"{k}\":{}", v.load(Relaxed))).collect();
        let encodings = self.last_set_encodings.lock().expect("stats lock").clone();
        let list: Vec<String> = encodings.iter().map(i32::to_string).collect();
        fields.push(format!("\"last_set_encodings\":[{}]", list.join(",")));
        format!("{{{}}}\n", fields.join(","))
    }
}

/// What the webmks connections are told to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    /// No framebuffer updates go out while set.
    pub frozen: bool,
    /// Incremented by every `close`: connections opened before drop themselves mid-update.
    pub close_generation: u64,
    /// Incremented by every `stall`: connections opened before stop sending updates for good (newer ones
    /// are not affected), as a console whose server hangs.
    pub stall_generation: u64,
}

/// The control state shared by the HTTP handlers and the connections.
#[derive(Debug)]
pub struct Control {
    switches: watch::Sender<Switches>,
    refuse_tickets: AtomicU64,
    /// Key releases still to forward before the connection that forwards the last of them drops itself
    /// mid-update; 0 when not armed.
    close_after_keys: AtomicU64,
}

impl Control {
    pub fn new(refuse_tickets: u64) -> Self {
        Control {
            switches: watch::Sender::new(Switches::default()),
            refuse_tickets: AtomicU64::new(refuse_tickets),
            close_after_keys: AtomicU64::new(0),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Switches> {
        self.switches.subscribe()
    }

    /// Whether this AcquireTicket call is one of those to refuse (counts it down).
    pub fn take_refusal(&self) -> bool {
        self.refuse_tickets.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1)).is_ok()
    }

    /// Counts a key release a connection forwarded; true if it was the last one `close-after-keys` waited
    /// for, so the connection must now drop itself.
    pub fn key_released(&self) -> bool {
        self.close_after_keys.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1)).is_ok_and(|before| before == 1)
    }

    /// Runs a control action (`close`, `stall`, `freeze`, `thaw`, `refuse-tickets` or `close-after-keys` with
    /// `n`). Returns a message for the response body, or an error for an unknown action or a bad argument.
    pub fn act(&self, action: &str, query: &str) -> Result<String, String> {
        let n = || {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("n="))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{action} needs ?n=N"))
        };
        match action {
            "close" => {
                self.switches.send_modify(|s| s.close_generation += 1);
                Ok("closing every open webmks connection mid-update".into())
            }
            "stall" => {
                self.switches.send_modify(|s| s.stall_generation += 1);
                Ok("the open webmks connections send no more updates".into())
            }
            "freeze" => {
                self.switches.send_modify(|s| s.frozen = true);
                Ok("framebuffer updates frozen".into())
            }
            "thaw" => {
                self.switches.send_modify(|s| s.frozen = false);
                Ok("framebuffer updates flowing".into())
            }
            "refuse-tickets" => {
                let n = n()?;
                self.refuse_tickets.store(n, Relaxed);
                Ok(format!("the next {n} AcquireTicket calls (SOAP or REST) fail"))
            }
            "close-after-keys" => {
                let n = n()?;
                self.close_after_keys.store(n, Relaxed);
                Ok(format!("the connection that forwards the {n}th key release from now drops itself mid-update"))
            }
            other => Err(format!(
                "unknown control action '{other}' (close, stall, freeze, thaw, refuse-tickets?n=N, close-after-keys?n=N)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_json() {
        let s = Stats::default();
        bump(&s.logins);
        *s.last_set_encodings.lock().unwrap() = vec![-260, 0];
        let json = s.to_json();
        assert!(json.starts_with("{\"logins\":1,\"failed_logins\":0,"), "{json}");
        assert!(json.ends_with(",\"last_set_encodings\":[-260,0]}\n"), "{json}");
    }

    #[test]
    fn actions() {
        let c = Control::new(1);
        let rx = c.subscribe();
        assert!(c.take_refusal());
        assert!(!c.take_refusal());
        c.act("refuse-tickets", "n=2").unwrap();
        assert!(c.take_refusal() && c.take_refusal() && !c.take_refusal());
        c.act("freeze", "").unwrap();
        c.act("close", "").unwrap();
        c.act("stall", "").unwrap();
        assert_eq!(*rx.borrow(), Switches { frozen: true, close_generation: 1, stall_generation: 1 });
        c.act("thaw", "").unwrap();
        assert!(!c.subscribe().borrow().frozen);
        assert!(c.act("refuse-tickets", "n=x").is_err());
        assert!(c.act("explode", "").is_err());
    }

    #[test]
    fn close_after_keys() {
        let c = Control::new(0);
        assert!(!c.key_released(), "not armed");
        c.act("close-after-keys", "n=2").unwrap();
        assert!(!c.key_released());
        assert!(c.key_released(), "the second release closes");
        assert!(!c.key_released(), "and disarms");
        assert!(c.act("close-after-keys", "").is_err());
    }
}
