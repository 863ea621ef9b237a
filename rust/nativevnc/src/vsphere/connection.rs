//! One HTTP/1.1 connection over TLS to a vSphere endpoint, re-opened only if the server closed it. The SOAP
//! and the REST session both send their calls through it.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::{Endpoint, TicketError};
use crate::error::Error;
use crate::{tls, transport};

/// Responses larger than this are refused; the largest expected one, a page of VM names, is far smaller.
const MAX_RESPONSE: usize = 16 << 20;

/// A response, read completely.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Response {
    /// The body as text, invalid UTF-8 replaced.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(crate) struct Connection<'a> {
    endpoint: &'a Endpoint,
    config: Arc<rustls::ClientConfig>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl<'a> Connection<'a> {
    /// A connection that connects on its first request.
    pub(crate) fn new(endpoint: &'a Endpoint) -> Result<Self, TicketError> {
        let config = tls::client_config(&endpoint.tls, &[b"http/1.1"]).map_err(TicketError::Tls)?;
        Ok(Connection { endpoint, config, sender: None })
    }

    pub(crate) fn endpoint(&self) -> &'a Endpoint {
        self.endpoint
    }

    /// A request to `path` with the `Host` and `User-Agent` headers set.
    pub(crate) fn request(&self, method: Method, path: &str) -> http::request::Builder {
        let authority = transport::host_port(&self.endpoint.host, self.endpoint.port);
        let host = authority.strip_suffix(":443").unwrap_or(&authority);
        Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host)
            .header(USER_AGENT, concat!("nativevnc/", env!("CARGO_PKG_VERSION")))
    }

    /// Sends a request built with [`Self::request`] and reads the whole response.
    pub(crate) async fn send(
        &mut self,
        request: Result<Request<Full<Bytes>>, http::Error>,
    ) -> Result<Response, TicketError> {
        // Only the host name or a value the server sent (cookie, token) can make a request invalid; neither is
        // worth quoting.
        let request = request.map_err(|_| {
            TicketError::Malformed("the host name or the session's cookie or token cannot be sent in HTTP".into())
        })?;
        let sender = self.connection().await?;
        let response = sender.send_request(request).await.map_err(|e| self.io_error("sending a request to", e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), MAX_RESPONSE).collect().await.map_err(|e| match e
            .downcast_ref::<LengthLimitError>()
        {
            Some(_) => TicketError::Malformed(format!("a response is larger than {MAX_RESPONSE} bytes")),
            None => self.io_error("reading a response from", e),
        })?;
        Ok(Response { status, headers, body: body.to_bytes() })
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
        let tcp = transport::connect_tcp(host, *port).await.map_err(TicketError::Connect)?;
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

    fn io_error(&self, what: &str, e: impl std::fmt::Display) -> TicketError {
        let at = transport::host_port(&self.endpoint.host, self.endpoint.port);
        TicketError::Connect(Error::connect(format!("{what} {at} failed: {e}")))
    }
}
