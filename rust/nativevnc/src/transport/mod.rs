//! Byte transports under the RFB session: plain TCP, or RFB carried in binary WebSocket messages over TLS
//! (VMware webmks).
//!
//! Both are split into a reading and a writing half so that the connection task can read and write at the
//! same time. The session sees a byte stream either way: WebSocket messages are appended to its input as
//! they arrive, however the server cut the stream into messages, and what the session writes goes out as
//! one binary message per write. Pings are answered by the WebSocket layer while reading.
//!
//! This module owns the one TCP connect of the crate ([`connect_tcp`]), which the vSphere API connection and
//! [`crate::tls::connect`] use too, and the URLs of both transports (`urls`).

mod urls;
pub(crate) mod websocket;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, Result};
use crate::tls::{self, Verification};
use urls::WssUrl;
pub use urls::{host_and_port, host_port, redact, VncUrl};
pub(crate) use urls::{host_of, unbracket};
pub use websocket::SUBPROTOCOL;

/// The most one read from a TCP socket takes while the caller waits for pixels.
pub const READ_SIZE: usize = 64 * 1024;

/// The receiving half of a transport.
pub enum Reader {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    WebSocket(websocket::Reader<TlsStream<TcpStream>>),
}

/// The sending half of a transport.
pub enum Writer {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    WebSocket(websocket::Writer<TlsStream<TcpStream>>),
}

/// Opens a TCP connection to `host` (a name or an IP address, IPv6 with or without brackets) at `port`; errors
/// read "connecting to HOST:PORT: …". There is no timeout here: the caller wraps the call in
/// `tokio::time::timeout`.
pub(crate) async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream> {
    let tcp = TcpStream::connect((unbracket(host), port))
        .await
        .map_err(|e| Error::connect(format!("connecting to {}: {e}", host_port(host, port))))?;
    // RFB input events and API calls are small and wait for their answers: Nagle's algorithm could only delay
    // them. Harmless if it fails.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Connects over plain TCP.
pub async fn tcp(host: &str, port: u16) -> Result<(Reader, Writer)> {
    let (r, w) = connect_tcp(host, port).await?.into_split();
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
    let tcp = connect_tcp(address.unwrap_or(&target.host), target.port).await?;
    let stream = tls::handshake(tcp, &target.host, target.port, config).await?;
    let (r, w) = websocket::open(url, &target.redacted, stream, max_message).await?;
    Ok((Reader::WebSocket(r), Writer::WebSocket(w)))
}

impl Reader {
    /// Appends what arrives next to `buf`: over TCP at most `max` bytes (at least 1), over a WebSocket the
    /// next message whole. Returns the number of bytes, never 0 (the end of the stream is an error that says
    /// how it ended).
    pub async fn read_into(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<usize> {
        match self {
            Reader::Tcp(r) => {
                let max = max.max(1);
                buf.reserve(max);
                let n = r
                    .read_buf(&mut bytes::BufMut::limit(&mut *buf, max))
                    .await
                    .map_err(|e| Error::protocol(format!("reading from the server: {e}")))?;
                if n == 0 {
                    return Err(Error::protocol("the server closed the connection"));
                }
                Ok(n)
            }
            Reader::WebSocket(r) => r.read_into(buf).await,
        }
    }
}

impl Writer {
    pub async fn write_all(&mut self, bytes: Vec<u8>) -> Result<()> {
        match self {
            Writer::Tcp(w) => {
                w.write_all(&bytes).await.map_err(|e| Error::protocol(format!("writing to the server: {e}")))
            }
            Writer::WebSocket(w) => w.write_all(bytes).await,
        }
    }

    /// Ends the connection politely: a WebSocket close frame (code 1000); TCP just closes when dropped.
    pub async fn close(&mut self) {
        if let Writer::WebSocket(w) = self {
            w.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tcp_read_takes_at_most_what_it_is_asked() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (connected, accepted) = tokio::join!(tcp("127.0.0.1", port), listener.accept());
        let (mut reader, _writer) = connected.unwrap();
        let (mut server, _) = accepted.unwrap();
        server.write_all(b"0123456789").await.unwrap();
        let mut buf = b"x".to_vec();
        let mut got = 0;
        while got < 4 {
            got += reader.read_into(&mut buf, 4 - got).await.unwrap();
        }
        assert_eq!(buf, b"x0123");
        assert!(buf.capacity() < 64, "a small read reserves little: {}", buf.capacity());
        while buf.len() < 11 {
            reader.read_into(&mut buf, READ_SIZE).await.unwrap();
        }
        assert_eq!(buf, b"x0123456789");
        drop(server);
        let e = reader.read_into(&mut buf, READ_SIZE).await.unwrap_err();
        assert_eq!(e.to_string(), "the server closed the connection");
    }
}
