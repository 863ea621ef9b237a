//! A webmks ticket from the vSphere SOAP API (ESXi or vCenter): RetrieveServiceContent, Login, find the
//! virtual machine, AcquireTicket("webmks"), Logout; or from vCenter's REST API: create a session, find the
//! virtual machine, create a WEBMKS console ticket, delete the session.
//!
//! * [`Endpoint`], [`Api`], [`VmSelector`], [`parse_url`]: where to log in, through which API and which VM,
//!   including the URL form os-autoinst uses.
//! * `connection`: the HTTPS connection both APIs use.
//! * `xml`, `soap`: SOAP request bodies and response parsing, no I/O.
//! * `session`: the SOAP session's cookie, one method per SOAP call.
//! * `rest`: the REST session, its two generations of paths and its errors.
//! * [`Ticket`]: the VirtualMachineTicket and the WebSocket URL made from it.
//! * [`about`]: what the endpoint is (product and version), asked without logging in.
//!
//! Neither the password, nor the session cookie, nor the ticket appears in any error or `Debug` output.

mod about;
mod connection;
mod endpoint;
#[cfg(any(fuzzing, test))]
pub(crate) mod fuzzing;
mod rest;
mod session;
mod soap;
mod ticket;
mod xml;

use std::time::Duration;

pub use about::{about, About};
pub use endpoint::{parse_url, Api, Endpoint, VmSelector};
pub use ticket::Ticket;

use crate::error::{Error, ErrorKind};
use rest::RestSession;
use session::Session;
use soap::ServiceContent;

/// Why a ticket could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// vim.fault.InvalidLogin.
    #[error("incorrect user name or password")]
    InvalidLogin,
    /// No virtual machine matches the selector (described in the string).
    #[error("no virtual machine matches {0}")]
    VmNotFound(String),
    /// More than one virtual machine matches the selector.
    #[error("{count} virtual machines match {selector}")]
    Ambiguous {
        /// The selector, as in [`VmSelector`]'s `Display`.
        selector: String,
        /// How many matched.
        count: usize,
    },
    /// ManagedObjectNotFound: the virtual machine has been deleted or is not completely created yet.
    #[error("the virtual machine is not available: {0}")]
    NotCreated(String),
    /// InvalidState or InvalidPowerState: usually, the virtual machine is not powered on.
    #[error("the virtual machine is not in a state that allows a console ticket (is it powered on?): {0}")]
    PoweredOff(String),
    /// NotAuthenticated: the session is not (or no longer) logged in, or lacks a privilege.
    #[error("not authenticated: {0}")]
    NotAuthenticated(String),
    /// Any other error of the REST API: its `error_type` and message.
    #[error("REST API error {error_type} (HTTP {status}): {message}")]
    Rest {
        /// The HTTP status.
        status: u16,
        /// E.g. SERVICE_UNAVAILABLE.
        error_type: String,
        /// The messages' default texts.
        message: String,
    },
    /// The request cannot be made through the chosen API (the string says why and what to do).
    #[error("{0}")]
    Unsupported(String),
    /// Any other SOAP fault.
    #[error("SOAP fault {}: {message}", fault_name(.fault, .code))]
    Fault {
        /// `faultcode`, e.g. ServerFaultCode.
        code: String,
        /// The detail's `xsi:type`, or its element name without "Fault"; empty without a detail.
        fault: String,
        /// `faultstring`.
        message: String,
    },
    /// An HTTP status other than 200 without a SOAP fault; `message` is the start of the body.
    #[error("HTTP status {status}: {message}")]
    Http {
        /// The status code.
        status: u16,
        /// The body's text, white space collapsed, cut to about 200 characters.
        message: String,
    },
    /// TCP connect failed, or the HTTP connection broke.
    #[error("{0}")]
    Connect(Error),
    /// The TLS handshake failed (the message says why, e.g. a thumbprint mismatch).
    #[error("{0}")]
    Tls(Error),
    /// The attempt took longer than its timeout.
    #[error("no ticket within {0:?}")]
    Timeout(Duration),
    /// The server's answer is not what the API promises: not XML, no returnval, no ticket, no cookie after
    /// Login.
    #[error("unexpected response: {0}")]
    Malformed(String),
}

impl TicketError {
    /// Whether another attempt may succeed. os-autoinst retries everything except wrong credentials; here
    /// [`InvalidLogin`](Self::InvalidLogin), [`Ambiguous`](Self::Ambiguous) and
    /// [`Malformed`](Self::Malformed) are final, since repeating the same calls gives the same answer. A VM
    /// that is not found may still be being created, so [`VmNotFound`](Self::VmNotFound) is retryable.
    /// [`Unsupported`](Self::Unsupported) requests stay so. A TLS failure of TLS itself is final too (a
    /// certificate that is not trusted or does not match its pin stays so, and the message says what to
    /// change), as is TLS set up wrongly (a CA file that cannot be used); the connection breaking during the
    /// handshake is not.
    pub fn retryable(&self) -> bool {
        match self {
            TicketError::InvalidLogin
            | TicketError::Ambiguous { .. }
            | TicketError::Malformed(_)
            | TicketError::Unsupported(_) => false,
            TicketError::Tls(e) => !matches!(e.kind(), ErrorKind::Setup | ErrorKind::Usage),
            _ => true,
        }
    }

    /// The same error with every occurrence of `secret` in server-provided text replaced by `<hidden>`.
    fn redact(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let clean = |s: String| s.replace(secret, "<hidden>");
        match self {
            TicketError::VmNotFound(s) => TicketError::VmNotFound(clean(s)),
            TicketError::Ambiguous { selector, count } => TicketError::Ambiguous { selector: clean(selector), count },
            TicketError::NotCreated(s) => TicketError::NotCreated(clean(s)),
            TicketError::PoweredOff(s) => TicketError::PoweredOff(clean(s)),
            TicketError::NotAuthenticated(s) => TicketError::NotAuthenticated(clean(s)),
            TicketError::Fault { code, fault, message } => {
                TicketError::Fault { code: clean(code), fault: clean(fault), message: clean(message) }
            }
            TicketError::Http { status, message } => TicketError::Http { status, message: clean(message) },
            TicketError::Rest { status, error_type, message } => {
                TicketError::Rest { status, error_type: clean(error_type), message: clean(message) }
            }
            TicketError::Unsupported(s) => TicketError::Unsupported(clean(s)),
            TicketError::Malformed(s) => TicketError::Malformed(clean(s)),
            TicketError::Connect(e) => TicketError::Connect(Error::new(e.kind(), clean(e.message().to_owned()))),
            TicketError::Tls(e) => TicketError::Tls(Error::new(e.kind(), clean(e.message().to_owned()))),
            other @ (TicketError::InvalidLogin | TicketError::Timeout(_)) => other,
        }
    }
}

/// `Type (faultcode)`, or only the faultcode when the fault has no detail.
fn fault_name(fault: &str, code: &str) -> String {
    match fault {
        "" => code.to_owned(),
        _ => format!("{fault} ({code})"),
    }
}

/// `vSphere: …`; InvalidLogin is an [`ErrorKind::Auth`] error, Timeout a [`ErrorKind::Timeout`], the other
/// final errors (see [`TicketError::retryable`]) [`ErrorKind::Setup`], everything else
/// [`ErrorKind::Connect`].
impl From<TicketError> for Error {
    fn from(e: TicketError) -> Self {
        match e {
            TicketError::InvalidLogin => {
                Error::new(ErrorKind::Auth, "vSphere login failed: incorrect user name or password")
            }
            TicketError::Timeout(_) => Error::timeout(format!("vSphere: {e}")),
            _ if !e.retryable() => Error::setup(format!("vSphere: {e}")),
            _ => Error::connect(format!("vSphere: {e}")),
        }
    }
}

/// One complete attempt to get a webmks ticket through the endpoint's [`Api`]: SOAP (RetrieveServiceContent,
/// Login with the cookie `vmware_soap_session`, find the virtual machine, AcquireTicket("webmks"), Logout) or
/// REST (create a session, find the virtual machine, create a WEBMKS console ticket, delete the session).
/// Logging out is always attempted after a successful login, and its errors are ignored. `timeout` bounds the
/// whole attempt; all calls share one HTTPS connection.
///
/// ESXi is reported to refuse a ticket whose API session logged out before it was used: a client that
/// connects right away should use [`acquire_ticket_session`] and log out after connecting.
pub async fn acquire_ticket(endpoint: &Endpoint, vm: &VmSelector, timeout: Duration) -> Result<Ticket, TicketError> {
    let (ticket, api) = acquire_ticket_session(endpoint, vm, timeout).await?;
    api.logout(timeout).await;
    Ok(ticket)
}

/// The API session a ticket was acquired in, still logged in so that the ticket stays usable.
pub struct ApiSession<'a>(Logged<'a>);

enum Logged<'a> {
    Soap { session: Session<'a>, session_manager: String },
    Rest(RestSession<'a>),
}

impl ApiSession<'_> {
    /// Which API gave the ticket: [`Api::Soap`] or [`Api::Rest`].
    pub fn api(&self) -> Api {
        match self.0 {
            Logged::Soap { .. } => Api::Soap,
            Logged::Rest(_) => Api::Rest,
        }
    }

    /// Logs out, within `timeout`; errors are ignored (the session expires on the server anyway).
    pub async fn logout(self, timeout: Duration) {
        let logout = async {
            let _ = match self.0 {
                Logged::Soap { mut session, session_manager } => session.logout(&session_manager).await,
                Logged::Rest(mut session) => session.logout().await,
            };
        };
        let _ = tokio::time::timeout(timeout, logout).await;
    }
}

/// Like [`acquire_ticket`], but leaves the API session logged in (if a ticket was had): the caller logs out
/// once it has used the ticket. Any failure after logging in logs out before returning.
pub async fn acquire_ticket_session<'a>(
    endpoint: &'a Endpoint,
    vm: &VmSelector,
    timeout: Duration,
) -> Result<(Ticket, ApiSession<'a>), TicketError> {
    let attempt = async {
        let mut session = Session::new(endpoint)?;
        if endpoint.api == Api::Rest {
            return rest_ticket(RestSession::login(session.into_connection()).await?, vm).await;
        }
        match session.retrieve_service_content().await {
            Err(TicketError::Http { status: 404, .. }) if endpoint.api == Api::Auto => {
                rest_ticket(RestSession::login(session.into_connection()).await?, vm).await
            }
            Err(TicketError::Http { status: 404, .. }) => Err(TicketError::Unsupported(
                "the endpoint has no SOAP API (/sdk: HTTP 404); a vCenter that offers only its REST API gives \
                 console tickets with VMWARE_VNC_OVER_WS_API=rest or auto (--api)"
                    .into(),
            )),
            content => soap_ticket(session, content?, vm).await,
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result.map_err(|e| e.redact(endpoint.password())),
        Err(_) => Err(TicketError::Timeout(timeout)),
    }
}

/// The SOAP API's ticket, from Login on.
async fn soap_ticket<'a>(
    mut session: Session<'a>,
    content: ServiceContent,
    vm: &VmSelector,
) -> Result<(Ticket, ApiSession<'a>), TicketError> {
    let endpoint = session.endpoint();
    session.login(&content.session_manager, &endpoint.username, endpoint.password()).await?;
    let ticket = match find_vm(&mut session, &content, vm).await {
        Ok(moid) => session.acquire_ticket(&moid).await,
        Err(e) => Err(e),
    };
    match ticket {
        Ok(ticket) => Ok((ticket, ApiSession(Logged::Soap { session, session_manager: content.session_manager }))),
        Err(e) => {
            let _ = session.logout(&content.session_manager).await;
            Err(e)
        }
    }
}

/// The REST API's ticket, in a session that has logged in.
async fn rest_ticket<'a>(
    mut session: RestSession<'a>,
    vm: &VmSelector,
) -> Result<(Ticket, ApiSession<'a>), TicketError> {
    let ticket = match session.find_vm(vm).await {
        Ok(moid) => session.console_ticket(&moid).await,
        Err(e) => Err(e),
    };
    match ticket {
        Ok(ticket) => Ok((ticket, ApiSession(Logged::Rest(session)))),
        Err(e) => {
            let _ = session.logout().await;
            Err(e)
        }
    }
}

/// The managed object id of the virtual machine `vm` names.
async fn find_vm(session: &mut Session<'_>, content: &ServiceContent, vm: &VmSelector) -> Result<String, TicketError> {
    let found = match vm {
        VmSelector::MoId(moid) => return Ok(moid.clone()),
        VmSelector::Name(name) => return find_by_name(session, content, name).await,
        VmSelector::InventoryPath(path) => session.find_by_inventory_path(&content.search_index, path).await?,
        VmSelector::Uuid(uuid) => session.find_by_uuid(&content.search_index, uuid).await?,
    };
    found.ok_or_else(|| match vm {
        VmSelector::InventoryPath(_) if content.about.api_type == "HostAgent" => {
            TicketError::VmNotFound(format!("{vm} (on ESXi, paths look like \"ha-datacenter/vm/NAME\")"))
        }
        VmSelector::InventoryPath(_) => {
            TicketError::VmNotFound(format!("{vm} (on vCenter, paths look like \"DATACENTER/vm/FOLDER/NAME\")"))
        }
        _ => TicketError::VmNotFound(vm.to_string()),
    })
}

/// Lists the names of all virtual machines through a container view and picks the one called `name`.
async fn find_by_name(session: &mut Session<'_>, content: &ServiceContent, name: &str) -> Result<String, TicketError> {
    let view = session.create_container_view(&content.view_manager, &content.root_folder).await?;
    let matches = vms_named(session, &content.property_collector, &view, name).await;
    let _ = session.destroy_view(&view).await;
    let mut matches = matches?;
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(TicketError::VmNotFound(VmSelector::Name(name.to_owned()).to_string())),
        count => Err(TicketError::Ambiguous { selector: VmSelector::Name(name.to_owned()).to_string(), count }),
    }
}

/// The moids of the virtual machines in `view` called `name`, following the result pages. vSphere stores
/// `%`, `/` and `\` in names as `%25`, `%2f` and `%5c`; either spelling matches.
async fn vms_named(
    session: &mut Session<'_>,
    property_collector: &str,
    view: &str,
    name: &str,
) -> Result<Vec<String>, TicketError> {
    let escaped = name.replace('%', "%25").replace('/', "%2f").replace('\\', "%5c");
    let mut found = Vec::new();
    let mut page = session.retrieve_properties_ex(property_collector, view).await?;
    loop {
        found.extend(page.objects.into_iter().filter(|(_, vm)| vm == name || *vm == escaped).map(|(moid, _)| moid));
        match page.token {
            Some(token) => page = session.continue_retrieve_properties_ex(property_collector, &token).await?,
            None => return Ok(found),
        }
    }
}

#[cfg(test)]
mod tests;
