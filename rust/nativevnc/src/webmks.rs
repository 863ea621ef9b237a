//! VMware webmks: the console of a vSphere VM, reached with a one-shot ticket.
//!
//! Every connection takes a fresh ticket ([`crate::vsphere`]), retrying as os-autoinst does while the VM is
//! not ready yet, and then opens the ticket's `wss://` URL ([`crate::transport`]). How the WebSocket's
//! certificate is checked follows from how the vSphere API's was (see [`Webmks::websocket_verification`]).
//! [`WebmksSettings`] is the one place a console is made from what its users give: os-autoinst's variables
//! (through the C ABI) and the command line.

mod hosts;

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::tls::Verification;
use crate::vsphere::{self, ApiSession, Endpoint, Ticket, VmSelector};

pub use hosts::{Reroute, TicketHosts};

/// Ticket requests after the first that may fail before giving up: os-autoinst's default of
/// `VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS`.
pub const DEFAULT_TICKET_ATTEMPTS: u32 = 11;
/// The pause between ticket requests: os-autoinst's default of `VMWARE_VNC_OVER_WS_REQUEST_DELAY`.
pub const DEFAULT_TICKET_DELAY: Duration = Duration::from_secs(5);

/// A VM's webmks console.
#[derive(Clone)]
pub struct Webmks {
    pub endpoint: Endpoint,
    pub vm: VmSelector,
    /// Ticket requests after the first that may fail before giving up (os-autoinst's
    /// `VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS`, which counts the same way). Wrong credentials are never
    /// retried.
    pub ticket_attempts: u32,
    /// The pause between ticket requests (`VMWARE_VNC_OVER_WS_REQUEST_DELAY`).
    pub ticket_delay: Duration,
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
            .field("ticket_attempts", &self.ticket_attempts)
            .field("ticket_delay", &self.ticket_delay)
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

/// What a webmks console is made of, as its users give it: os-autoinst's variables through the C ABI
/// (`VMWARE_VNC_OVER_WS_*`, `VIRSH_VM_ID`) and the command line's options. [`Self::build`] makes the
/// [`Webmks`].
#[derive(Clone)]
pub struct WebmksSettings<'a> {
    /// os-autoinst's URL form `https://user:password@host[:port]/vm` (or `webmks+https://`; see
    /// [`vsphere::parse_url`] for the other ways to name the VM).
    pub url: &'a str,
    /// The VM when the URL names none (os-autoinst's `VIRSH_VM_ID`).
    pub vm: Option<&'a str>,
    /// Replaces the URL's password.
    pub password: Option<&'a str>,
    /// TLS: see [`api_verification`].
    pub insecure: bool,
    pub ca_file: Option<&'a str>,
    pub thumbprint: Option<&'a str>,
    /// See [`Webmks::ticket_attempts`].
    pub ticket_attempts: u32,
    pub ticket_delay: Duration,
    /// `NAME=ADDRESS,…` ([`TicketHosts::parse`]); `None` for no mapping.
    pub hosts: Option<&'a str>,
    /// `soap`, `rest` or `auto` ([`crate::vsphere::Api`]); `None` for the default.
    pub api: Option<&'a str>,
}

impl<'a> WebmksSettings<'a> {
    /// The console at `url` with every other setting at its default: os-autoinst's ticket attempts and
    /// delay, certificates checked against the system's CA certificates.
    pub fn new(url: &'a str) -> Self {
        WebmksSettings {
            url,
            vm: None,
            password: None,
            insecure: false,
            ca_file: None,
            thumbprint: None,
            ticket_attempts: DEFAULT_TICKET_ATTEMPTS,
            ticket_delay: DEFAULT_TICKET_DELAY,
            hosts: None,
            api: None,
        }
    }

    /// The console. Settings that cannot work (a URL naming no VM, a CA file that cannot be used, an
    /// unknown API) are usage errors here, before any ticket is asked for.
    pub fn build(&self) -> Result<Webmks> {
        let tls = api_verification(self.insecure, self.ca_file, self.thumbprint)?;
        crate::tls::client_config(&tls, &[])?;
        let mut webmks = Webmks::from_url(self.url, self.vm, self.password, tls)?;
        webmks.ticket_attempts = self.ticket_attempts;
        webmks.ticket_delay = self.ticket_delay;
        if let Some(hosts) = self.hosts {
            webmks.hosts = TicketHosts::parse(hosts)?;
        }
        if let Some(api) = self.api {
            webmks.endpoint.api = api.parse()?;
        }
        Ok(webmks)
    }
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

    /// A console with os-autoinst's ticket defaults.
    pub fn new(endpoint: Endpoint, vm: VmSelector) -> Self {
        Webmks {
            endpoint,
            vm,
            ticket_attempts: DEFAULT_TICKET_ATTEMPTS,
            ticket_delay: DEFAULT_TICKET_DELAY,
            request_timeout: Duration::from_secs(60),
            hosts: TicketHosts::default(),
        }
    }

    /// The longest [`Self::ticket`] can take.
    pub fn max_ticket_time(&self) -> Duration {
        (self.request_timeout + self.ticket_delay) * (self.ticket_attempts + 1)
    }

    /// Acquires a ticket, retrying failures other than wrong credentials; `log` receives a warning for
    /// every failed try that will be retried. The API session stays logged in until the returned session
    /// is logged out (ESXi is reported to refuse tickets of sessions that logged out before using them).
    /// Once the attempts are used up, the error is final: [`ErrorKind::Setup`] (or [`ErrorKind::Auth`]).
    pub async fn ticket(&self, log: &mut (dyn FnMut(String) + Send)) -> Result<(Ticket, ApiSession<'_>)> {
        let mut left = self.ticket_attempts;
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
                    tokio::time::sleep(self.ticket_delay).await;
                }
                Err(e) => {
                    let e = Error::from(e);
                    if e.kind() == ErrorKind::Auth {
                        return Err(e);
                    }
                    let e = Error::setup(e.message());
                    let tries = self.ticket_attempts - left + 1;
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

    #[test]
    fn settings_build_the_console() {
        let mut settings = WebmksSettings::new("https://root:pw@esx.example.com/12");
        let webmks = settings.build().unwrap();
        assert_eq!((webmks.ticket_attempts, webmks.ticket_delay), (DEFAULT_TICKET_ATTEMPTS, DEFAULT_TICKET_DELAY));
        assert_eq!(webmks.vm, VmSelector::MoId("12".into()));
        assert!(matches!(webmks.endpoint.tls, Verification::Verify { ca_file: None }));

        settings.url = "https://root@esx.example.com";
        settings.vm = Some("vm-3");
        settings.password = Some("other");
        settings.insecure = true;
        settings.ticket_attempts = 0;
        settings.ticket_delay = Duration::from_millis(200);
        settings.api = Some("rest");
        let webmks = settings.build().unwrap();
        assert_eq!(webmks.vm, VmSelector::MoId("vm-3".into()));
        assert_eq!(webmks.endpoint.password(), "other");
        assert!(matches!(webmks.endpoint.tls, Verification::Insecure));
        assert_eq!((webmks.ticket_attempts, webmks.ticket_delay), (0, Duration::from_millis(200)));
        assert_eq!(webmks.endpoint.api, crate::vsphere::Api::Rest);

        settings.insecure = false;
        settings.ca_file = Some("/nonexistent/ca.pem");
        assert_eq!(settings.build().unwrap_err().kind(), ErrorKind::Usage);
    }

    #[tokio::test]
    async fn used_up_attempts_are_final() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let endpoint = Endpoint::new("127.0.0.1", port, "root", "pw", Verification::Insecure);
        let mut webmks = Webmks::new(endpoint, VmSelector::MoId("7".into()));
        webmks.ticket_attempts = 1;
        webmks.ticket_delay = Duration::from_millis(10);
        let mut logged = Vec::new();
        let e = webmks.ticket(&mut |m| logged.push(m)).await.map(drop).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup, "{e}");
        let refused = format!("vSphere: connecting to 127.0.0.1:{port}: ");
        assert!(e.message().starts_with(&format!("no webmks ticket after 2 tries: {refused}")), "{e}");
        assert_eq!(logged.len(), 1);
        assert!(logged[0].starts_with(&refused) && logged[0].ends_with(", trying once more"), "{logged:?}");
    }
}
