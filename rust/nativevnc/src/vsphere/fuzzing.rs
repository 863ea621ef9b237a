//! What the fuzz targets ([`crate::fuzzing`]) need from the private parsers of this module; built only with
//! `--cfg fuzzing` and for tests.

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use super::connection::Response;
use super::rest::{self, Generation};
use super::xml::Element;
use super::{soap, Ticket, TicketError};

/// [`soap::parse_response`].
pub(crate) fn parse_response(status: u16, body: &str) -> Result<Element, TicketError> {
    soap::parse_response(status, body)
}

/// Every parser of a SOAP method response, results ignored.
pub(crate) fn parse_method_response(response: &Element) {
    let _ = soap::parse_service_content(response);
    let _ = soap::parse_login(response);
    let _ = soap::parse_moref(response);
    soap::parse_found_vm(response);
    soap::parse_name_page(response);
}

/// A REST answer of `/rest` (else `/api`) with `status` and `body`, through the REST session's parser.
pub(crate) fn rest_answer(rest: bool, status: u16, body: &[u8]) -> Result<Value, TicketError> {
    let generation = if rest { Generation::Rest } else { Generation::Api };
    rest::parse(generation, Response { status, headers: HeaderMap::new(), body: Bytes::copy_from_slice(body) })
}

/// [`Ticket::from_url`], for REST console tickets.
pub(crate) fn ticket_from_url(url: &str) -> Result<Ticket, TicketError> {
    Ticket::from_url(url)
}
