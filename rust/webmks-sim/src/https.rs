//! The one HTTPS port: TLS, HTTP/1.1 and routing. `/sdk` takes SOAP, `/sdk/vimServiceVersions.xml` lists the
//! API versions (both 404 with `--no-soap`), `/api/…` and `/rest/…` are vCenter's REST API (vCenter flavour
//! only), `/folder/…` serves datastore files, `/ticket/<ticket>` upgrades to the webmks WebSocket, `/_sim/…` is
//! the test control (loopback clients only).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::control::bump;
use crate::mks::Console;
use crate::sessions::session_from_cookie;
use crate::sim::{lock, Sim};
use crate::soap::{self, Fault};
use crate::tickets::short;
use crate::{folder, mks, rest, version, vim};

/// The largest SOAP request body read.
const MAX_BODY: usize = 4 << 20;
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
const BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Reply = Response<Full<Bytes>>;

/// Accepts connections for ever.
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, sim: Arc<Sim>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (tls, sim) = (tls.clone(), sim.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(TLS_TIMEOUT, tls.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return log!("{peer} TLS handshake failed: {e}"),
                Err(_) => return log!("{peer} TLS handshake timed out"),
            };
            let service = service_fn(move |req| {
                let sim = sim.clone();
                async move { Ok::<_, Infallible>(route(req, peer, sim).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades().await
            {
                log!("{peer} HTTP connection: {e}");
            }
        });
    }
}

fn text(status: u16, body: impl Into<String>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn xml(status: u16, body: String) -> Reply {
    let mut r = text(status, body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    r
}

async fn route(req: Request<Incoming>, peer: SocketAddr, sim: Arc<Sim>) -> Reply {
    let path = req.uri().path().to_string();
    let shown = match path.strip_prefix("/ticket/") {
        Some(t) => format!("/ticket/{}", short(t)),
        None => path.clone(),
    };
    let method = req.method().clone();
    let started = Instant::now();
    let reply = match (&method, path.as_str()) {
        (_, "/sdk" | "/sdk/vimServiceVersions.xml") if !sim.settings.soap => {
            text(404, "webmks-sim: no SOAP API here (--no-soap)\n")
        }
        (&Method::POST, "/sdk") => soap_call(req, &sim).await,
        (&Method::GET, "/sdk/vimServiceVersions.xml") => {
            xml(200, version::service_versions_xml(sim.inventory.about().api_version))
        }
        (_, p) if p.starts_with("/folder/") => folder::serve(req, &sim).await,
        (_, p) if p.starts_with("/ticket/") => ticket(req, peer, &sim).await,
        (_, p) if p.starts_with("/_sim/") => control(req, peer, &sim),
        (_, p) => match rest::face_of(&sim, p) {
            Some(face) => rest::serve(req, face, &sim).await,
            None => text(404, format!("webmks-sim: nothing at {method} {shown}\n")),
        },
    };
    log!("{peer} {method} {shown} -> {} ({} ms)", reply.status().as_u16(), started.elapsed().as_millis());
    reply
}

async fn soap_call(req: Request<Incoming>, sim: &Arc<Sim>) -> Reply {
    let header = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let cookie = header(header::COOKIE);
    let action = req.headers().get("soapaction").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(400, format!("cannot read the request body: {e}\n")),
    };
    if !sim.settings.slow.is_zero() {
        tokio::time::sleep(sim.settings.slow).await;
    }
    let call = match soap::Request::parse(&body) {
        Ok(c) => c,
        Err(e) => return xml(500, Fault::invalid_request(&e).to_xml()),
    };
    let session = cookie.as_deref().and_then(session_from_cookie);
    let reply = vim::call(sim, &call, session, action.as_deref()).await;
    let mut r = xml(reply.status, reply.body);
    if let Some(c) = reply.set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn lists(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The webmks WebSocket upgrade: checks the request and the ticket, connects to the VNC server, answers 101
/// and hands the upgraded connection to [`mks::serve`].
async fn ticket(mut req: Request<Incoming>, peer: SocketAddr, sim: &Arc<Sim>) -> Reply {
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes().to_vec());
    let websocket = req.method() == Method::GET
        && lists(&req, header::CONNECTION, "upgrade")
        && lists(&req, header::UPGRADE, "websocket")
        && req.headers().get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    let Some(key) = key.filter(|_| websocket) else {
        return text(
            400,
            "webmks-sim: /ticket/<ticket> is a WebSocket endpoint (GET with Upgrade: websocket, version 13)\n",
        );
    };
    if !lists(&req, header::SEC_WEBSOCKET_PROTOCOL, "binary") {
        return text(
            400,
            "webmks-sim: webmks needs the WebSocket subprotocol 'binary' (Sec-WebSocket-Protocol: binary); \
             ESXi drops connections without it\n",
        );
    }
    let id = req.uri().path().trim_start_matches("/ticket/").to_string();
    let redeemed = {
        let sessions = lock(&sim.sessions);
        lock(&sim.tickets).redeem(&id, &sessions, Instant::now())
    };
    let vm = match redeemed {
        Ok(vm) => vm,
        Err(refusal) => {
            bump(&sim.stats.tickets_rejected);
            return text(refusal.status(), format!("webmks-sim: {}\n", refusal.reason()));
        }
    };
    bump(&sim.stats.tickets_used);
    let (name, console) = match console_of(sim, &vm).await {
        Ok(c) => c,
        Err(e) => return text(502, format!("webmks-sim: {e}\n")),
    };
    let upgrade = hyper::upgrade::on(&mut req);
    let sim = sim.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                mks::serve(sim, name, ws, console, peer.to_string()).await;
            }
            Err(e) => log!("{peer} WebSocket upgrade failed: {e}"),
        }
    });
    let mut r = text(101, "");
    let h = r.headers_mut();
    h.remove(header::CONTENT_TYPE);
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("binary"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(&key)) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    r
}

/// The VNC server behind a VM's console, connected: `--vnc` for `--vm` VMs, the running guest's for registered
/// ones. Returns the VM's name with it.
async fn console_of(sim: &Sim, moid: &str) -> Result<(String, Console), String> {
    let (name, registered) = {
        let model = lock(&sim.model);
        let vm = model.vms.by_moid(moid).ok_or_else(|| format!("VM {moid} no longer exists"))?;
        (vm.name.clone(), vm.vmx.is_some())
    };
    let (addr, password) = if registered {
        let guest = lock(&sim.guests).get(moid).map(|g| g.console());
        let console = guest.ok_or_else(|| format!("VM {name} is powered off"))?;
        (console.addr, console.password)
    } else {
        let vnc = sim.settings.vnc.clone().ok_or("no VNC server configured (--vnc HOST:PORT)")?;
        (vnc, sim.settings.vnc_password.clone())
    };
    let stream = match tokio::time::timeout(BACKEND_CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot connect to the VNC server {addr}: {e}")),
        Err(_) => return Err(format!("connecting to the VNC server {addr} timed out")),
    };
    let _ = stream.set_nodelay(true);
    Ok((name, Console { stream, password }))
}

fn json(body: String) -> Reply {
    let mut r = text(200, body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The running guests: `{"MOID": {"pid": N, "qmp": "DIR/MOID.sock", "log": "DIR/MOID.log"}, …}`.
fn guests_json(sim: &Sim) -> String {
    let guests = lock(&sim.guests);
    let map: serde_json::Map<String, serde_json::Value> = guests
        .iter()
        .map(|(moid, g)| {
            let info = serde_json::json!({
                "pid": g.pid(),
                "qmp": g.qmp_path().display().to_string(),
                "log": g.log_path().display().to_string(),
            });
            (moid.clone(), info)
        })
        .collect();
    format!("{}\n", serde_json::Value::Object(map))
}

fn control(req: Request<Incoming>, peer: SocketAddr, sim: &Sim) -> Reply {
    if !peer.ip().is_loopback() {
        return text(403, "webmks-sim: the control endpoint only answers loopback clients\n");
    }
    let action = req.uri().path().trim_start_matches("/_sim/");
    let query = req.uri().query().unwrap_or_default();
    match (req.method(), action) {
        (&Method::GET, "stats") => json(sim.stats.to_json()),
        (&Method::GET, "guests") => json(guests_json(sim)),
        (&Method::POST, action) => match sim.control.act(action, query) {
            Ok(msg) => {
                log!("control: {msg}");
                text(200, format!("{msg}\n"))
            }
            Err(e) => text(400, format!("webmks-sim: {e}\n")),
        },
        _ => text(
            405,
            "webmks-sim: GET /_sim/stats|guests, POST /_sim/close|stall|freeze|thaw|refuse-tickets?n=N|close-after-keys?n=N|\
             fault?close=CODE[&reason=TEXT]|oversize=BYTES[&next=1]\n",
        ),
    }
}
