//! A SOAP session with one vSphere endpoint: one HTTP/1.1 connection over TLS, re-opened only if the server
//! closed it, and the `vmware_soap_session` cookie. One method per SOAP call.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, HOST, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::soap::{self, NamePage, ServiceContent};
use super::ticket::Ticket;
use super::xml::Element;
use super::{Endpoint, TicketError};
use crate::error::Error;
use crate::tls;

/// The name of the session cookie vSphere sets on Login.
const SESSION_COOKIE: &str = "vmware_soap_session";
/// Responses larger than this are refused; the largest expected one, a page of VM names, is far smaller.
const MAX_RESPONSE: usize = 16 << 20;

pub(crate) struct Session<'a> {
    endpoint: &'a Endpoint,
    config: Arc<rustls::ClientConfig>,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookie: Option<String>,
}

impl<'a> Session<'a> {
    /// A session that connects on its first call.
    pub(crate) fn new(endpoint: &'a Endpoint) -> Result<Self, TicketError> {
        let config = tls::client_config(&endpoint.tls, &[b"http/1.1"]).map_err(TicketError::Tls)?;
        Ok(Session { endpoint, config, sender: None, cookie: None })
    }

    pub(crate) async fn retrieve_service_content(&mut self) -> Result<ServiceContent, TicketError> {
        soap::parse_service_content(&self.call(soap::retrieve_service_content()).await?)
    }

    /// Logs in; afterwards the session has its cookie.
    pub(crate) async fn login(&mut self, session_manager: &str, user: &str, password: &str) -> Result<(), TicketError> {
        soap::parse_login(&self.call(soap::login(session_manager, user, password)).await?)?;
        match self.cookie {
            Some(_) => Ok(()),
            None => Err(TicketError::Malformed(format!("no {SESSION_COOKIE} cookie after Login"))),
        }
    }

    pub(crate) async fn logout(&mut self, session_manager: &str) -> Result<(), TicketError> {
        self.call(soap::logout(session_manager)).await.map(drop)
    }

    pub(crate) async fn find_by_inventory_path(
        &mut self,
        search_index: &str,
        path: &str,
    ) -> Result<Option<String>, TicketError> {
        Ok(soap::parse_found_vm(&self.call(soap::find_by_inventory_path(search_index, path)).await?))
    }

    pub(crate) async fn find_by_uuid(&mut self, search_index: &str, uuid: &str) -> Result<Option<String>, TicketError> {
        Ok(soap::parse_found_vm(&self.call(soap::find_by_uuid(search_index, uuid)).await?))
    }

    /// A container view of all virtual machines below `root_folder`; returns its moid.
    pub(crate) async fn create_container_view(
        &mut self,
        view_manager: &str,
        root_folder: &str,
    ) -> Result<String, TicketError> {
        soap::parse_moref(&self.call(soap::create_container_view(view_manager, root_folder)).await?)
    }

    pub(crate) async fn retrieve_properties_ex(
        &mut self,
        property_collector: &str,
        view: &str,
    ) -> Result<NamePage, TicketError> {
        Ok(soap::parse_name_page(&self.call(soap::retrieve_properties_ex(property_collector, view)).await?))
    }

    pub(crate) async fn continue_retrieve_properties_ex(
        &mut self,
        property_collector: &str,
        token: &str,
    ) -> Result<NamePage, TicketError> {
        Ok(soap::parse_name_page(&self.call(soap::continue_retrieve_properties_ex(property_collector, token)).await?))
    }

    pub(crate) async fn destroy_view(&mut self, view: &str) -> Result<(), TicketError> {
        self.call(soap::destroy_view(view)).await.map(drop)
    }

    pub(crate) async fn acquire_ticket(&mut self, vm: &str) -> Result<Ticket, TicketError> {
        Ticket::from_response(&self.call(soap::acquire_ticket(vm)).await?)
    }

    /// POSTs one envelope to `/sdk` and returns the method response inside the answer.
    async fn call(&mut self, envelope: String) -> Result<Element, TicketError> {
        let request = self.request(envelope)?;
        let sender = self.connection().await?;
        let response = sender.send_request(request).await.map_err(|e| self.io_error("sending a request to", e))?;
        let status = response.status().as_u16();
        self.keep_cookie(response.headers());
        let body = Limited::new(response.into_body(), MAX_RESPONSE).collect().await.map_err(|e| match e
            .downcast_ref::<LengthLimitError>()
        {
            Some(_) => TicketError::Malformed(format!("a response is larger than {MAX_RESPONSE} bytes")),
            None => self.io_error("reading a response from", e),
        })?;
        soap::parse_response(status, &String::from_utf8_lossy(&body.to_bytes()))
    }

    fn request(&self, envelope: String) -> Result<Request<Full<Bytes>>, TicketError> {
        let authority = tls::host_port(&self.endpoint.host, self.endpoint.port);
        let host = authority.strip_suffix(":443").unwrap_or(&authority);
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/sdk")
            .header(HOST, host)
            .header(CONTENT_TYPE, r#"text/xml; charset="utf-8""#)
            .header("SOAPAction", soap::SOAP_ACTION)
            .header(USER_AGENT, concat!("nativevnc/", env!("CARGO_PKG_VERSION")));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, format!("{SESSION_COOKIE}={cookie}"));
        }
        // Only the host name or the server's own cookie can make this fail; neither is worth quoting.
        request
            .body(Full::new(Bytes::from(envelope)))
            .map_err(|_| TicketError::Malformed("the host name or the session cookie cannot be sent in HTTP".into()))
    }

    /// The open connection, or a new one if there is none or the server has closed it.
    async fn connection(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, TicketError> {
        if let Some(sender) = self.sender.as_mut() {
            if sender.ready().await.is_err() {
                self.sender = None;
            }
        }
        let sender = match self.sender.take() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        Ok(self.sender.insert(sender))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, TicketError> {
        let Endpoint { host, port, .. } = self.endpoint;
        let tcp = tls::tcp_connect(host, *port).await.map_err(TicketError::Connect)?;
        let stream = tls::handshake(tcp, host, *port, self.config.clone()).await.map_err(TicketError::Tls)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.io_error("the HTTP handshake with", e))?;
        // The connection runs until the server closes it or the session drops its sender; a failure shows up
        // in the next request on it.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    fn keep_cookie(&mut self, headers: &HeaderMap) {
        let session = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|cookie| cookie.split(';').next()?.split_once('='))
            .find(|(name, _)| name.trim() == SESSION_COOKIE);
        if let Some((_, value)) = session {
            self.cookie = Some(value.trim().to_owned());
        }
    }

    fn io_error(&self, what: &str, e: impl std::fmt::Display) -> TicketError {
        let at = tls::host_port(&self.endpoint.host, self.endpoint.port);
        TicketError::Connect(Error::connect(format!("{what} {at} failed: {e}")))
    }
}
