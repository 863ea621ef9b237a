//! Where to connect and how: the [`Target`] and the [`ConnectOptions`] a connect takes.

use std::time::Duration;

use crate::config::Config;
use crate::handshake::Credentials;
use crate::tls::Verification;
use crate::transport::{self, host_port};
use crate::webmks::Webmks;

/// Where the VNC server is.
#[derive(Debug, Clone)]
pub enum Target {
    /// Plain RFB over TCP.
    Tcp { host: String, port: u16 },
    /// RFB over a WebSocket at a `wss://` URL (a webmks ticket URL, which works once).
    WebSocket { url: String, verification: Verification },
    /// A vSphere VM's console: a fresh webmks ticket for every connection.
    Webmks(Box<Webmks>),
}

impl Target {
    /// Where it is, for messages: never a password or a ticket.
    pub fn describe(&self) -> String {
        match self {
            Target::Tcp { host, port } => host_port(host, *port),
            Target::WebSocket { url, .. } => transport::redact(url),
            Target::Webmks(w) => {
                format!("webmks console of the VM with {} via {}", w.vm, host_port(&w.endpoint.host, w.endpoint.port))
            }
        }
    }
}

/// Where to connect and how.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub target: Target,
    pub credentials: Credentials,
    pub config: Config,
    /// Time allowed to connect and finish the handshake (after a webmks ticket was acquired).
    pub connect_timeout: Duration,
    /// Time a partly received message or a write may stall before the connection counts as broken.
    pub io_timeout: Duration,
}

impl ConnectOptions {
    /// A VNC server on TCP, with the default settings.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self::with_target(Target::Tcp { host: host.into(), port }, Config::default())
    }

    /// A VMware webmks console, with the webmks settings ([`Config::webmks`]).
    pub fn webmks(webmks: Webmks) -> Self {
        Self::with_target(Target::Webmks(Box::new(webmks)), Config::webmks())
    }

    pub fn with_target(target: Target, config: Config) -> Self {
        ConnectOptions {
            target,
            credentials: Credentials::default(),
            config,
            connect_timeout: Duration::from_secs(20),
            io_timeout: Duration::from_secs(60),
        }
    }

    /// The longest a connect can take: acquiring a ticket (webmks), then connecting and the handshake.
    pub fn max_connect_time(&self) -> Duration {
        match &self.target {
            Target::Webmks(w) => w.max_ticket_time() + self.connect_timeout,
            _ => self.connect_timeout,
        }
    }
}
