//! The WebSocket transport over any byte stream (TLS to a server, an in-memory pipe in the fuzz target): the
//! client handshake offering the `binary` subprotocol, then binary messages each way. tungstenite reassembles
//! fragmented messages, answers pings and enforces the maximum message size; this module turns what it
//! delivers into session input or an error that says how the stream ended.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::error::{Error, Result};

/// The WebSocket subprotocol that carries raw RFB bytes in binary messages (VMware, websockify).
pub const SUBPROTOCOL: &str = "binary";

/// The receiving half of a WebSocket over `S`.
pub struct Reader<S>(SplitStream<WebSocketStream<S>>);

/// The sending half of a WebSocket over `S`.
pub struct Writer<S>(SplitSink<WebSocketStream<S>, Message>);

/// Opens a WebSocket to `url` over `stream`, a connection to its server: the client handshake, offering the
/// `binary` subprotocol, which the server must choose. A single message (and so a single frame) may carry up
/// to `max_message` bytes. Errors name the server as `redacted`, the URL without the ticket.
pub(crate) async fn open<S>(url: &str, redacted: &str, stream: S, max_message: usize) -> Result<(Reader<S>, Writer<S>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = url.into_client_request().map_err(|e| Error::usage(format!("{redacted}: {e}")))?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let config = WebSocketConfig::default().max_message_size(Some(max_message)).max_frame_size(Some(max_message));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| handshake_error(redacted, e))?;
    let chosen = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
    if chosen != Some(SUBPROTOCOL) {
        return Err(Error::protocol(format!(
            "{redacted}: the server chose the WebSocket subprotocol {chosen:?}, not \"{SUBPROTOCOL}\""
        )));
    }
    let (w, r) = ws.split();
    Ok((Reader(r), Writer(w)))
}

/// Why the WebSocket handshake failed, in words that help: a refused ticket is the common case.
fn handshake_error(target: &str, e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let why = match status {
                StatusCode::NOT_FOUND => "the ticket is unknown",
                StatusCode::SERVICE_UNAVAILABLE => "the ticket was already used or has expired (tickets are one-shot)",
                _ => "the server refused the WebSocket",
            };
            Error::connect(format!("{target}: {why} (HTTP {status})"))
        }
        tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)) => Error::protocol(format!(
            "{target}: the server did not agree to the WebSocket subprotocol \"{SUBPROTOCOL}\""
        )),
        tungstenite::Error::Io(io) => Error::connect(format!("{target}: {io}")),
        other => Error::protocol(format!("{target}: WebSocket handshake failed: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Reader<S> {
    /// Appends the payload of the next non-empty binary message to `buf`; returns its length, never 0. A close
    /// frame, a text message, a protocol error and the end of the stream are errors that say which.
    pub async fn read_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        loop {
            let message = match self.0.next().await {
                None => return Err(Error::protocol("the server closed the connection")),
                Some(Err(e)) => return Err(read_error(e)),
                Some(Ok(m)) => m,
            };
            match message {
                Message::Binary(data) if !data.is_empty() => {
                    buf.extend_from_slice(&data);
                    return Ok(data.len());
                }
                Message::Close(frame) => {
                    let how = match frame {
                        Some(f) if f.reason.is_empty() => format!("code {}", u16::from(f.code)),
                        Some(f) => format!("code {}: {}", u16::from(f.code), f.reason),
                        None => "no code".to_string(),
                    };
                    return Err(Error::protocol(format!("the server closed the WebSocket ({how})")));
                }
                Message::Text(_) => return Err(Error::protocol("the server sent a WebSocket text message")),
                // Pings are answered by tungstenite; empty binary messages carry nothing.
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}

fn read_error(e: tungstenite::Error) -> Error {
    let without_close = || Error::protocol("the server closed the connection without a WebSocket close frame");
    match e {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => Error::protocol(format!(
            "the server sent a WebSocket message too large: {size} bytes, more than the {max_size} this client takes"
        )),
        tungstenite::Error::Capacity(c) => {
            Error::protocol(format!("the server sent a WebSocket message too large: {c}"))
        }
        // A TLS connection that ends without close_notify (the server or a middlebox dropped it): the same
        // to the user as a TCP connection that closes, and no WebSocket close frame said why.
        tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => without_close(),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => without_close(),
        tungstenite::Error::Io(io) => Error::protocol(format!("reading from the server: {io}")),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            Error::protocol("the server closed the connection")
        }
        other => Error::protocol(format!("WebSocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Writer<S> {
    /// Sends `bytes` as one binary message.
    pub async fn write_all(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.0.send(Message::Binary(bytes.into())).await.map_err(|e| match e {
            tungstenite::Error::Io(io) => Error::protocol(format!("writing to the server: {io}")),
            other => Error::protocol(format!("WebSocket: {other}")),
        })
    }

    /// Sends a close frame with code 1000 (normal closure); a failure is of no interest any more.
    pub async fn close(&mut self) {
        let _ = self.0.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))).await;
    }
}
