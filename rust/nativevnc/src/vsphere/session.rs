//! A SOAP session with one vSphere endpoint: its [`Connection`] and the `vmware_soap_session` cookie. One
//! method per SOAP call.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderMap, Method};
use http_body_util::Full;

use super::connection::Connection;
use super::soap::{self, NamePage, ServiceContent};
use super::ticket::Ticket;
use super::xml::Element;
use super::{Endpoint, TicketError};

/// The name of the session cookie vSphere sets on Login.
const SESSION_COOKIE: &str = "vmware_soap_session";

pub(crate) struct Session<'a> {
    connection: Connection<'a>,
    cookie: Option<String>,
}

impl<'a> Session<'a> {
    /// A session that connects on its first call.
    pub(crate) fn new(endpoint: &'a Endpoint) -> Result<Self, TicketError> {
        Ok(Session { connection: Connection::new(endpoint)?, cookie: None })
    }

    pub(crate) fn endpoint(&self) -> &'a Endpoint {
        self.connection.endpoint()
    }

    /// The session's connection, for another API on the same endpoint.
    pub(crate) fn into_connection(self) -> Connection<'a> {
        self.connection
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
        let mut request = self
            .connection
            .request(Method::POST, "/sdk")
            .header(CONTENT_TYPE, r#"text/xml; charset="utf-8""#)
            .header("SOAPAction", soap::SOAP_ACTION);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, format!("{SESSION_COOKIE}={cookie}"));
        }
        let response = self.connection.send(request.body(Full::new(Bytes::from(envelope)))).await?;
        self.keep_cookie(&response.headers);
        soap::parse_response(response.status, &response.text())
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
}
