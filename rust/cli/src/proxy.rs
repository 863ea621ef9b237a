//! `nativevnc ticket` and `nativevnc proxy`: webmks consoles for other programs.

use std::net::SocketAddr;
use std::time::Duration;

use nativevnc::config::Limits;
use nativevnc::error::{Error, Result};
use nativevnc::runtime;
use nativevnc::transport;
use nativevnc::webmks::Webmks;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn warn(message: String) {
    eprintln!("nativevnc: {message}");
}

/// Acquires a ticket and prints its wss:// URL. The API session is left logged in, so that the ticket stays
/// usable; it expires on the server.
pub fn print_ticket(webmks: &Webmks) -> Result<()> {
    let (ticket, _api) = runtime::handle().block_on(webmks.ticket(&mut warn))?;
    println!("{}", ticket.wss_url(&webmks.endpoint.host));
    Ok(())
}

/// Listens on `listen` and serves every viewer that connects with its own webmks connection. Runs until
/// killed.
pub fn run(listen: SocketAddr, allow_remote: bool, webmks: Webmks, connect_timeout: Duration) -> Result<()> {
    if !listen.ip().is_loopback() && !allow_remote {
        return Err(Error::usage(format!(
            "{listen} is not a loopback address: anyone who reaches it would see the console; add --allow-remote \
             if that is intended"
        )));
    }
    runtime::handle().block_on(async {
        let listener =
            TcpListener::bind(listen).await.map_err(|e| Error::usage(format!("cannot listen on {listen}: {e}")))?;
        let local = listener.local_addr().map_err(|e| Error::usage(format!("{listen}: {e}")))?;
        println!("nativevnc proxy listening on {local}");
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn(format!("accepting a connection: {e}"));
                    continue;
                }
            };
            let webmks = webmks.clone();
            tokio::spawn(async move {
                warn(format!("{peer}: connected; acquiring a ticket"));
                match serve(socket, &webmks, connect_timeout).await {
                    Ok(()) => warn(format!("{peer}: closed")),
                    Err(e) => warn(format!("{peer}: {e}")),
                }
            });
        }
    })
}

/// Passes bytes between one viewer and a fresh webmks connection until either side ends.
async fn serve(viewer: TcpStream, webmks: &Webmks, connect_timeout: Duration) -> Result<()> {
    let (ticket, api) = webmks.ticket(&mut warn).await?;
    let connect = webmks.open_websocket(&ticket, Limits::default().max_websocket_message, warn);
    let connected = tokio::time::timeout(connect_timeout, connect).await;
    webmks.logout(api).await;
    let (mut from_server, mut to_server) =
        connected.map_err(|_| Error::timeout("the webmks connection did not open in time"))??;
    let _ = viewer.set_nodelay(true);
    let (mut from_viewer, mut to_viewer) = viewer.into_split();
    let upstream = async {
        loop {
            let mut buf = Vec::with_capacity(64 * 1024);
            let n = from_viewer.read_buf(&mut buf).await.map_err(|e| Error::protocol(format!("viewer: {e}")))?;
            if n == 0 {
                to_server.close().await;
                return Ok(());
            }
            to_server.write_all(buf).await?;
        }
    };
    let downstream = async {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            from_server.read_into(&mut buf, transport::READ_SIZE).await?;
            to_viewer.write_all(&buf).await.map_err(|e| Error::protocol(format!("viewer: {e}")))?;
        }
    };
    tokio::select! {
        r = upstream => r,
        r = downstream => r,
    }
}
