//! VMware webmks: the console of a vSphere VM, reached with a one-shot ticket.
//!
//! Every connection takes a fresh ticket ([`crate::vsphere`]), retrying as os-autoinst does while the VM is
//! not ready yet, and then opens the ticket's `wss://` URL ([`crate::transport`]). How the WebSocket's
//! certificate is checked follows from how the vSphere API's was (see [`Webmks::websocket_verification`]).

mod hosts;

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::tls::Verification;
use crate::vsphere::{self, ApiSession, Endpoint, Ticket, VmSelector};

pub use hosts::{Reroute, TicketHosts};

/// A VM's webmks console.
#[derive(Clone)]
pub struct Webmks {
    pub endpoint: Endpoint,
    pub vm: VmSelector,
    /// Ticket requests after the first that may fail before giving up (os-autoinst's
    /// `VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS`, default 11). Wrong credentials are never retried.
    pub retries: u32,
    /// The pause between ticket requests (`VMWARE_VNC_OVER_WS_REQUEST_DELAY`, default 5 s).
    pub retry_delay: Duration,
    /// Time allowed for one complete ticket request (login, look-up, ticket, logout).
    pub request_timeout: Duration,
    /// Addresses to connect to instead of the tickets' hosts (`VMWARE_VNC_OVER_WS_HOSTS`).
    pub hosts: TicketHosts,
}

impl std::fmt::Debug for Webmks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webmks")
            .field("api", &crate::transport::host_port(&self.endpoint.host, self.endpoint.port))
            .field("username", &self.endpoint.username)
            .field("vm", &self.vm)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("hosts", &self.hosts)
            .field("api", &self.endpoint.api)
            .finish_non_exhaustive()
    }
}

/// How the vSphere API's certificate is checked, from the user's settings: `insecure` turns checking off
/// (it wins over the others); `thumbprints` (SHA-1 or SHA-256, hex pairs; several separated by commas, e.g.
/// vCenter's and its hosts' for REST tickets, which carry none) pin the certificate; otherwise the system's
/// CA certificates plus those in `ca_file` are trusted.
pub fn api_verification(insecure: bool, ca_file: Option<&str>, thumbprints: Option<&str>) -> Result<Verification> {
    if insecure {
        return Ok(Verification::Insecure);
    }
    if let Some(list) = thumbprints.filter(|t| !t.trim().is_empty()) {
        let pinned = list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(crate::tls::Thumbprint::parse);
        return Ok(Verification::Pinned(pinned.collect::<Result<_>>()?));
    }
    Ok(Verification::Verify { ca_file: ca_file.filter(|f| !f.is_empty()).map(Into::into) })
}

impl Webmks {
    /// The console named by os-autoinst's URL form `https://user:password@host[:port]/vm` (see
    /// [`vsphere::parse_url`]); `vm` is used when the URL names no VM (os-autoinst's `VIRSH_VM_ID`), and
    /// `password` replaces the URL's when given.
    pub fn from_url(url: &str, vm: Option<&str>, password: Option<&str>, tls: Verification) -> Result<Self> {
        let (mut endpoint, selector) = vsphere::parse_url(url, tls)?;
        if let Some(password) = password {
            endpoint =
                Endpoint::new(endpoint.host, endpoint.port, endpoint.username, password.to_string(), endpoint.tls);
        }
        let selector = match (selector, vm.filter(|v| !v.is_empty())) {
            (Some(s), _) => s,
            (None, Some(id)) => VmSelector::MoId(id.to_string()),
            (None, None) => {
                return Err(Error::usage(
                    "the webmks URL names no VM: give its id as the URL's path (https://host/ID), \
                     ?name=, ?path=, ?uuid=, or set VIRSH_VM_ID",
                ))
            }
        };
        Ok(Webmks::new(endpoint, selector))
    }

    /// A console with os-autoinst's retry defaults.
    pub fn new(endpoint: Endpoint, vm: VmSelector) -> Self {
        Webmks {
            endpoint,
            vm,
            retries: 11,
            retry_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            hosts: TicketHosts::default(),
        }
    }

    /// The longest [`Self::ticket`] can take.
    pub fn max_ticket_time(&self) -> Duration {
        (self.request_timeout + self.retry_delay) * (self.retries + 1)
    }

    /// Acquires a ticket, retrying failures other than wrong credentials; `log` receives a warning for
    /// every failed try that will be retried. The API session stays logged in until the returned session
    /// is logged out (ESXi is reported to refuse tickets of sessions that logged out before using them).
    /// Once the attempts are used up, the error is final: [`ErrorKind::Setup`] (or [`ErrorKind::Auth`]).
    pub async fn ticket(&self, log: &mut (dyn FnMut(String) + Send)) -> Result<(Ticket, ApiSession<'_>)> {
        let mut left = self.retries;
        loop {
            match vsphere::acquire_ticket_session(&self.endpoint, &self.vm, self.request_timeout).await {
                Ok(acquired) => return Ok(acquired),
                Err(e) if e.retryable() && left > 0 => {
                    let e = Error::from(e);
                    log(match left {
                        1 => format!("{e}, trying once more"),
                        _ => format!("{e}, trying {left} more times"),
                    });
                    left -= 1;
                    tokio::time::sleep(self.retry_delay).await;
                }
                Err(e) => {
                    let e = Error::from(e);
                    if e.kind() == ErrorKind::Auth {
                        return Err(e);
                    }
                    let e = Error::setup(e.message());
                    let tries = self.retries - left + 1;
                    return Err(if tries > 1 { e.context(format!("no webmks ticket after {tries} tries")) } else { e });
                }
            }
        }
    }

    /// Logs the API session out, briefly.
    pub async fn logout(&self, api: ApiSession<'_>) {
        api.logout(self.request_timeout.min(Duration::from_secs(10))).await;
    }

    /// How the ticket's WebSocket server is authenticated: not at all in insecure mode; otherwise by the
    /// thumbprints the ticket carries (the ticket came over the authenticated API connection, so they are
    /// as trustworthy as it); failing those, like the API: by the same CA file or pinned thumbprints.
    pub fn websocket_verification(&self, ticket: &Ticket) -> Verification {
        if matches!(self.endpoint.tls, Verification::Insecure) {
            return Verification::Insecure;
        }
        let pinned = ticket.thumbprints();
        if pinned.is_empty() {
            self.endpoint.tls.clone()
        } else {
            Verification::Pinned(pinned)
        }
    }

    /// Where to connect for the ticket's WebSocket `url`, checked with `verification`: `None` for the URL's
    /// own host; a mapped address, or the API's address for a host that does not resolve (the `hosts`
    /// module decides). The returned [`Reroute`] carries the line to log.
    pub async fn reroute(&self, url: &str, verification: &Verification) -> Result<Option<Reroute>> {
        let (host, port) = crate::transport::host_and_port(url)?;
        let resolves = self.hosts.get(&host).is_some() || hosts::resolves(&host, port).await;
        hosts::reroute(&host, resolves, verification, &self.hosts, &self.endpoint.host)
    }

    /// Opens the ticket's WebSocket ([`crate::transport::websocket`]) where [`Self::reroute`] says;
    /// `log` receives the line that says so.
    pub async fn open_websocket(
        &self,
        ticket: &Ticket,
        max_message: usize,
        log: impl FnOnce(String) + Send,
    ) -> Result<(crate::transport::Reader, crate::transport::Writer)> {
        let url = ticket.wss_url(&self.endpoint.host);
        let verification = self.websocket_verification(ticket);
        let reroute = self.reroute(&url, &verification).await?;
        let address = reroute.map(|Reroute { address, log: line }| {
            log(line);
            address
        });
        crate::transport::websocket(&url, address.as_deref(), &verification, max_message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn used_up_attempts_are_final() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let endpoint = Endpoint::new("127.0.0.1", port, "root", "pw", Verification::Insecure);
        let mut webmks = Webmks::new(endpoint, VmSelector::MoId("7".into()));
        webmks.retries = 1;
        webmks.retry_delay = Duration::from_millis(10);
        let mut logged = Vec::new();
        let e = webmks.ticket(&mut |m| logged.push(m)).await.map(drop).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup, "{e}");
        let refused = format!("vSphere: connecting to 127.0.0.1:{port}: ");
        assert!(e.message().starts_with(&format!("no webmks ticket after 2 tries: {refused}")), "{e}");
        assert_eq!(logged.len(), 1);
        assert!(logged[0].starts_with(&refused) && logged[0].ends_with(", trying once more"), "{logged:?}");
    }
}
