//! The test-control side of the simulator: counters (`GET /_sim/stats`), the switches tests flip
//! (`POST /_sim/close|stall|freeze|thaw|refuse-tickets|close-after-keys`), which every open webmks connection
//! watches, and the faults they inject (`POST /_sim/fault`).
//!
//! `POST /_sim/fault?close=CODE[&reason=TEXT]` ends the open webmks connections with a WebSocket close frame of
//! that code (1000 to 4999, not 1005, 1006 or 1015, which never go on the wire) and reason (at most 123
//! bytes); `POST /_sim/fault?oversize=BYTES` makes them announce a binary message of BYTES bytes (the header
//! of one frame that long and the first 64 KiB of it, zeros) and drop the connection, as a server sending
//! more than the client accepts. With `&next=1` the fault waits for the next connection to open instead and
//! strikes it right after its first framebuffer update.

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
    /// Incremented by every `fault` for the open connections: they then suffer [`Control::fault`].
    pub fault_generation: u64,
}

/// The largest reason a close frame carries: its payload is at most 125 bytes, 2 of them the code.
const MAX_CLOSE_REASON: usize = 123;
/// How much of an over-size message is sent before the connection drops.
pub const OVERSIZE_SENT: u64 = 64 << 10;

/// How a webmks connection is made to fail (`POST /_sim/fault`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A WebSocket close frame with this code and reason ends the connection.
    Close { code: u16, reason: String },
    /// The header of a binary message of this many bytes (and the first [`OVERSIZE_SENT`] of them), then the
    /// connection drops.
    Oversize(u64),
}

impl Fault {
    /// The fault a `fault` query asks for, and whether it is for the next connection rather than the open ones.
    fn parse(query: &str) -> Result<(Fault, bool), String> {
        let mut close = None;
        let mut reason = String::new();
        let mut oversize = None;
        let mut next = false;
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
            let value = percent_decode(value).ok_or(format!("fault: {key} is not valid percent-encoded UTF-8"))?;
            match key {
                "close" => {
                    close = Some(value.parse::<u16>().map_err(|_| format!("fault: close={value} is not a code"))?)
                }
                "reason" => reason = value,
                "oversize" => {
                    oversize = Some(value.parse::<u64>().map_err(|_| format!("fault: oversize={value} is not a size"))?)
                }
                "next" => next = matches!(value.as_str(), "1" | "true" | "yes"),
                other => return Err(format!("fault: unknown parameter '{other}' (close, reason, oversize, next)")),
            }
        }
        let fault = match (close, oversize) {
            (Some(code), None) => {
                if !(1000..=4999).contains(&code) || matches!(code, 1004 | 1005 | 1006 | 1015) {
                    return Err(format!("fault: close={code} cannot be sent in a close frame (1000 to 4999, not 1004, 1005, 1006 or 1015)"));
                }
                if reason.len() > MAX_CLOSE_REASON {
                    return Err(format!(
                        "fault: the reason is {} bytes; a close frame holds {MAX_CLOSE_REASON}",
                        reason.len()
                    ));
                }
                Fault::Close { code, reason }
            }
            (None, Some(0)) => return Err("fault: oversize must be at least 1 byte".into()),
            (None, Some(bytes)) if bytes > i64::MAX as u64 => {
                return Err(format!("fault: oversize={bytes} does not fit a frame's length (at most 2^63 - 1)"))
            }
            (None, Some(bytes)) => Fault::Oversize(bytes),
            _ => return Err("fault needs exactly one of ?close=CODE[&reason=TEXT] and ?oversize=BYTES".into()),
        };
        Ok((fault, next))
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Close { code, reason } if reason.is_empty() => write!(f, "a WebSocket close frame with code {code}"),
            Fault::Close { code, reason } => write!(f, "a WebSocket close frame with code {code} ({reason})"),
            Fault::Oversize(bytes) => write!(f, "an over-size message of {bytes} bytes"),
        }
    }
}

/// `%XX` escapes and `+` decoded, as in a query string; `None` when the result is not UTF-8 or an escape is
/// broken.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

/// The control state shared by the HTTP handlers and the connections.
#[derive(Debug)]
pub struct Control {
    switches: watch::Sender<Switches>,
    refuse_tickets: AtomicU64,
    /// Key releases still to forward before the connection that forwards the last of them drops itself
    /// mid-update; 0 when not armed.
    close_after_keys: AtomicU64,
    /// The fault the open connections were last told to suffer.
    fault: Mutex<Option<Fault>>,
    /// The fault waiting for the next connection.
    next_fault: Mutex<Option<Fault>>,
}

impl Control {
    pub fn new(refuse_tickets: u64) -> Self {
        Control {
            switches: watch::Sender::new(Switches::default()),
            refuse_tickets: AtomicU64::new(refuse_tickets),
            close_after_keys: AtomicU64::new(0),
            fault: Mutex::new(None),
            next_fault: Mutex::new(None),
        }
    }

    /// The fault of the last `fault` for the open connections.
    pub fn fault(&self) -> Option<Fault> {
        self.fault.lock().expect("fault lock").clone()
    }

    /// The fault waiting for the next connection, taken: only one connection suffers it.
    pub fn take_next_fault(&self) -> Option<Fault> {
        self.next_fault.lock().expect("fault lock").take()
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
    /// `n`, `fault` with its parameters). Returns a message for the response body, or an error for an unknown action or a bad argument.
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
            "fault" => {
                let (fault, next) = Fault::parse(query)?;
                let message = if next {
                    format!("the next webmks connection gets {fault} after its first update")
                } else {
                    format!("the open webmks connections get {fault}")
                };
                if next {
                    *self.next_fault.lock().expect("fault lock") = Some(fault);
                } else {
                    *self.fault.lock().expect("fault lock") = Some(fault);
                    self.switches.send_modify(|s| s.fault_generation += 1);
                }
                Ok(message)
            }
            other => Err(format!(
                "unknown control action '{other}' (close, stall, freeze, thaw, refuse-tickets?n=N, close-after-keys?n=N, \
                 fault?close=CODE[&reason=TEXT]|oversize=BYTES[&next=1])"
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
        assert_eq!(
            *rx.borrow(),
            Switches { frozen: true, close_generation: 1, stall_generation: 1, fault_generation: 0 }
        );
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

    #[test]
    fn faults() {
        let c = Control::new(0);
        let rx = c.subscribe();
        assert_eq!(c.fault(), None);
        let said = c.act("fault", "close=1011&reason=internal+error%3A%20the%20MKS%20crashed").unwrap();
        assert_eq!(
            said,
            "the open webmks connections get a WebSocket close frame with code 1011 (internal error: the MKS crashed)"
        );
        assert_eq!(rx.borrow().fault_generation, 1);
        assert_eq!(c.fault(), Some(Fault::Close { code: 1011, reason: "internal error: the MKS crashed".into() }));
        assert_eq!(c.take_next_fault(), None, "for the open connections only");

        c.act("fault", "oversize=1073741824&next=1").unwrap();
        assert_eq!(rx.borrow().fault_generation, 1, "the open connections are not touched");
        assert_eq!(c.take_next_fault(), Some(Fault::Oversize(1 << 30)));
        assert_eq!(c.take_next_fault(), None, "one connection gets it");
        c.act("fault", "close=1009").unwrap();
        assert_eq!(c.fault(), Some(Fault::Close { code: 1009, reason: String::new() }));
    }

    #[test]
    fn bad_faults() {
        let c = Control::new(0);
        for (query, why) in [
            ("", "exactly one of"),
            ("close=1011&oversize=9", "exactly one of"),
            ("close=1006", "cannot be sent"),
            ("close=999", "cannot be sent"),
            ("close=5000", "cannot be sent"),
            ("close=abc", "not a code"),
            ("oversize=0", "at least 1 byte"),
            ("oversize=-1", "not a size"),
            ("oversize=9223372036854775808", "does not fit"),
            ("close=1011&reason=%zz", "percent-encoded"),
            ("close=1011&colour=red", "unknown parameter 'colour'"),
        ] {
            let e = c.act("fault", query).unwrap_err();
            assert!(e.contains(why), "{query}: {e}");
        }
        let long = "x".repeat(MAX_CLOSE_REASON + 1);
        assert!(c.act("fault", &format!("close=1000&reason={long}")).unwrap_err().contains("holds 123"));
        assert!(c.act("fault", &format!("close=1000&reason={}", &long[1..])).is_ok());
        assert_eq!(c.subscribe().borrow().fault_generation, 1, "only the valid one counted");
    }
}
