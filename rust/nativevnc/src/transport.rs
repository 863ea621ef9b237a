//! Byte transports under the RFB session: plain TCP, or RFB carried in binary WebSocket messages over TLS
//! (VMware webmks).
//!
//! Both are split into a reading and a writing half so that the connection task can read and write at the
//! same time. The session sees a byte stream either way: WebSocket messages are appended to its input as
//! they arrive, however the server cut the stream into messages, and what the session writes goes out as
//! one binary message per write. Pings are answered by the WebSocket layer while reading.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::error::{Error, Result};
use crate::tls::{self, Verification};

type WsStream = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// The WebSocket subprotocol that carries raw RFB bytes in binary messages (VMware, websockify).
pub const SUBPROTOCOL: &str = "binary";

/// The receiving half of a transport.
pub enum Reader {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    WebSocket(futures_util::stream::SplitStream<WsStream>),
}

/// The sending half of a transport.
pub enum Writer {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    WebSocket(futures_util::stream::SplitSink<WsStream, Message>),
}

/// Connects over plain TCP.
pub async fn tcp(host: &str, port: u16) -> Result<(Reader, Writer)> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| Error::connect(format!("connecting to {}: {e}", host_port(host, port))))?;
    stream.set_nodelay(true).map_err(|e| Error::connect(format!("{}: {e}", host_port(host, port))))?;
    let (r, w) = stream.into_split();
    Ok((Reader::Tcp(r), Writer::Tcp(w)))
}

/// Connects to a `wss://` URL and opens a WebSocket offering the `binary` subprotocol; the server must
/// choose it. `max_message` bounds a single message (VMware sends whole framebuffer updates as one).
/// Errors name the URL without its path, which holds the ticket. The TCP connection goes to `address` (at
/// the URL's port) when given; the TLS server name and the `Host:` header stay the URL's host, as the server
/// expects.
pub async fn websocket(
    url: &str,
    address: Option<&str>,
    verification: &Verification,
    max_message: usize,
) -> Result<(Reader, Writer)> {
    let target = WssUrl::parse(url)?;
    let config = tls::client_config(verification, &[b"http/1.1"])?;
    let tcp = tls::tcp_connect(address.unwrap_or(&target.host), target.port).await?;
    let stream = tls::handshake(tcp, &target.host, target.port, config).await?;
    let mut request = url.into_client_request().map_err(|e| Error::usage(format!("{}: {e}", target.redacted)))?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let ws_config = WebSocketConfig::default().max_message_size(Some(max_message)).max_frame_size(Some(max_message));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config))
        .await
        .map_err(|e| handshake_error(&target.redacted, e))?;
    let chosen = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
    if chosen != Some(SUBPROTOCOL) {
        return Err(Error::protocol(format!(
            "{}: the server chose the WebSocket subprotocol {chosen:?}, not \"{SUBPROTOCOL}\"",
            target.redacted
        )));
    }
    let (w, r) = ws.split();
    Ok((Reader::WebSocket(r), Writer::WebSocket(w)))
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
        tungstenite::Error::Protocol(tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(_)) => {
            Error::protocol(format!(
                "{target}: the server did not agree to the WebSocket subprotocol \"{SUBPROTOCOL}\""
            ))
        }
        tungstenite::Error::Io(io) => Error::connect(format!("{target}: {io}")),
        other => Error::protocol(format!("{target}: WebSocket handshake failed: {other}")),
    }
}

impl Reader {
    /// Appends what arrives next to `buf`; returns the number of bytes, never 0 (the end of the stream is
    /// an error that says how it ended).
    pub async fn read_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        match self {
            Reader::Tcp(r) => {
                buf.reserve(256 * 1024);
                let n = r.read_buf(buf).await.map_err(|e| Error::protocol(format!("reading from the server: {e}")))?;
                if n == 0 {
                    return Err(Error::protocol("the server closed the connection"));
                }
                Ok(n)
            }
            Reader::WebSocket(r) => loop {
                let message = match r.next().await {
                    None => return Err(Error::protocol("the server closed the connection")),
                    Some(Err(e)) => return Err(ws_read_error(e)),
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
            },
        }
    }
}

fn ws_read_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Capacity(c) => {
            Error::protocol(format!("the server sent a WebSocket message too large: {c}"))
        }
        tungstenite::Error::Io(io) => Error::protocol(format!("reading from the server: {io}")),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            Error::protocol("the server closed the connection")
        }
        other => Error::protocol(format!("WebSocket: {other}")),
    }
}

impl Writer {
    pub async fn write_all(&mut self, bytes: Vec<u8>) -> Result<()> {
        match self {
            Writer::Tcp(w) => {
                w.write_all(&bytes).await.map_err(|e| Error::protocol(format!("writing to the server: {e}")))
            }
            Writer::WebSocket(w) => w.send(Message::Binary(bytes.into())).await.map_err(|e| match e {
                tungstenite::Error::Io(io) => Error::protocol(format!("writing to the server: {io}")),
                other => Error::protocol(format!("WebSocket: {other}")),
            }),
        }
    }

    /// Ends the connection politely: a WebSocket close frame (code 1000); TCP just closes when dropped.
    pub async fn close(&mut self) {
        if let Writer::WebSocket(w) = self {
            let frame = tungstenite::protocol::CloseFrame { code: CloseCode::Normal, reason: "".into() };
            let _ = w.send(Message::Close(Some(frame))).await;
        }
    }
}

/// The parts of a `wss://` URL that are needed to connect, and a form of it that is safe to show.
struct WssUrl {
    host: String,
    port: u16,
    /// `wss://host:port/…`: the path holds the ticket, a credential.
    redacted: String,
}

impl WssUrl {
    fn parse(url: &str) -> Result<WssUrl> {
        let parsed = url::Url::parse(url).map_err(|e| Error::usage(format!("invalid WebSocket URL: {e}")))?;
        if parsed.scheme() != "wss" {
            return Err(Error::usage(format!("a WebSocket URL must start with wss://, not {}://", parsed.scheme())));
        }
        let host = host_of(&parsed).ok_or_else(|| Error::usage("the WebSocket URL has no host"))?;
        let port = parsed.port().unwrap_or(443);
        let redacted = format!("wss://{}/…", host_port(&host, port));
        Ok(WssUrl { host, port, redacted })
    }
}

/// A URL's host as connecting and TLS want it: a name, or an IP address (IPv6 without brackets).
pub(crate) fn host_of(url: &url::Url) -> Option<String> {
    match url.host()? {
        url::Host::Ipv6(ip) => Some(ip.to_string()),
        host => Some(host.to_string()),
    }
}

/// The host and port of a `wss://` URL.
pub fn host_and_port(url: &str) -> Result<(String, u16)> {
    WssUrl::parse(url).map(|u| (u.host, u.port))
}

/// A `wss://` URL as it may be shown: `wss://host:port/…`, without the path, which holds the ticket.
pub fn redact(url: &str) -> String {
    WssUrl::parse(url).map_or_else(|_| "an invalid WebSocket URL".to_string(), |u| u.redacted)
}

/// `host:port`, with an IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wss_urls() {
        let u = WssUrl::parse("wss://esx.example:8443/ticket/secret123").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.redacted.as_str()), ("esx.example", 8443, "wss://esx.example:8443/…"));
        let u = WssUrl::parse("wss://[::1]/ticket/secret123").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.redacted.as_str()), ("::1", 443, "wss://[::1]:443/…"));
        let e = WssUrl::parse("ws://h/ticket/secret123").err().unwrap();
        assert_eq!(e.message(), "a WebSocket URL must start with wss://, not ws://");
        let e = WssUrl::parse("wss://bad host/ticket/secret123").err().unwrap();
        assert!(e.message().starts_with("invalid WebSocket URL") && !e.message().contains("secret"), "{e}");
    }
}
