//! The built `webmks-sim` against a scripted VNC server and a webmks client written here: SOAP login and
//! AcquireTicket, the wss upgrade and its refusals, the VMware dialect (ServerCaps, pseudo-encodings,
//! TightPNG), pixels equal to the VNC server's, and VMWKeyEvents arriving as QEMU extended key events.
//!
//! The client drives a `nativevnc::session::Session`; VMware server messages and pseudo-encoding rectangles
//! are taken out of the stream and checked here, since the session does not parse them (yet).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nativevnc::codec::{Put, Reader};
use nativevnc::config::Config;
use nativevnc::encoding as enc;
use nativevnc::framebuffer::Rect;
use nativevnc::handshake::Credentials;
use nativevnc::messages::ClientMessage;
use nativevnc::pixel::PixelFormat;
use nativevnc::session::Session;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const W: u16 = 96;
const H: u16 = 64;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The scripted VNC server's screen: stripes, a flat block and noise.
fn screen() -> Vec<u32> {
    let mut seed = 7u32;
    (0..u32::from(W) * u32::from(H))
        .map(|i| {
            let (x, y) = (i % u32::from(W), i / u32::from(W));
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            match (x < 32, y < 32) {
                (true, _) => ((y * 4) << 16) | (x * 8),
                (false, true) => 0x0033_6699,
                (false, false) => seed >> 8 & 0xff_ffff,
            }
        })
        .collect()
}

/// The area the scripted server repaints when it receives a key.
const CHANGED: Rect = Rect::new(40, 8, 20, 12);
const CHANGED_COLOUR: u32 = 0x00ff_8000;

fn raw_update(pixels: &[u32], r: Rect, ext_key: bool) -> Vec<u8> {
    let mut v = vec![0, 0];
    v.put_u16(1 + u16::from(ext_key));
    if ext_key {
        v.extend_from_slice(&[0; 8]);
        v.put_i32(enc::QEMU_EXT_KEY_EVENT);
    }
    for n in [r.x, r.y, r.w, r.h] {
        v.put_u16(n);
    }
    v.put_i32(enc::RAW);
    for y in r.y..r.y + r.h {
        for x in r.x..r.x + r.w {
            v.extend_from_slice(&pixels[usize::from(y) * usize::from(W) + usize::from(x)].to_le_bytes());
        }
    }
    v
}

/// A VNC server speaking RFB 3.8 with security None and Raw, announcing QEMU extended key events. It reports
/// the key events it receives and repaints [`CHANGED`] on the first one.
fn scripted_vnc_server() -> (u16, mpsc::Receiver<ClientMessage>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let tx = tx.clone();
            std::thread::spawn(move || serve_vnc(conn.unwrap(), tx));
        }
    });
    (port, rx)
}

fn serve_vnc(mut s: TcpStream, keys: mpsc::Sender<ClientMessage>) -> std::io::Result<()> {
    let mut pixels = screen();
    s.write_all(b"RFB 003.008\n")?;
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf)?;
    s.write_all(&[1, 1])?;
    s.read_exact(&mut buf[..1])?;
    s.write_all(&[0, 0, 0, 0])?;
    s.read_exact(&mut buf[..1])?;
    let mut init = Vec::new();
    init.put_u16(W);
    init.put_u16(H);
    PixelFormat::BGRX.encode(&mut init);
    init.put_u32(7);
    init.extend_from_slice(b"scripts");
    s.write_all(&init)?;
    let (mut input, mut chunk) = (Vec::new(), [0u8; 4096]);
    let (mut ext_key, mut incremental_pending, mut repainted) = (false, false, false);
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&chunk[..n]);
        loop {
            let mut r = Reader::new(&input);
            let Ok(msg) = ClientMessage::read(&mut r, 1 << 16) else { break };
            let used = r.consumed();
            input.drain(..used);
            match msg {
                ClientMessage::SetEncodings(list) => ext_key = list.contains(&enc::QEMU_EXT_KEY_EVENT),
                ClientMessage::FramebufferUpdateRequest { incremental: false, .. } => {
                    s.write_all(&raw_update(&pixels, Rect::new(0, 0, W, H), std::mem::take(&mut ext_key)))?;
                }
                ClientMessage::FramebufferUpdateRequest { incremental: true, .. } => incremental_pending = true,
                key @ (ClientMessage::QemuExtKeyEvent { .. } | ClientMessage::KeyEvent { .. }) => {
                    if !repainted {
                        repainted = true;
                        for y in CHANGED.y..CHANGED.y + CHANGED.h {
                            for x in CHANGED.x..CHANGED.x + CHANGED.w {
                                pixels[usize::from(y) * usize::from(W) + usize::from(x)] = CHANGED_COLOUR;
                            }
                        }
                        if std::mem::take(&mut incremental_pending) {
                            s.write_all(&raw_update(&pixels, CHANGED, false))?;
                        }
                    }
                    let _ = keys.send(key);
                }
                _ => {}
            }
        }
    }
}

/// The simulator process; killed when dropped.
struct Sim {
    child: Child,
    port: u16,
    sha1: String,
    cert: CertificateDer<'static>,
    _dir: TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_sim(vnc_port: u16, extra: &[&str]) -> Sim {
    let dir = std::env::temp_dir().join(format!("webmks-sim-test-{}-{vnc_port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_webmks-sim"))
        .args(["--password", "pw", "--vnc", &format!("127.0.0.1:{vnc_port}"), "--cert-out"])
        .arg(&cert_path)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let rest = line.strip_prefix("webmks-sim listening on https://127.0.0.1:").unwrap_or_else(|| panic!("{line}"));
    let port = rest.split('/').next().unwrap().parse().unwrap();
    let sha1 = rest.split(" sha1=").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let cert = CertificateDer::from_pem_file(&cert_path).unwrap();
    Sim { child, port, sha1, cert, _dir: TempDir(dir) }
}

fn tls(sim: &Sim) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(sim.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_stream(sim: &Sim) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", sim.port)).await.unwrap();
    tls(sim).connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap()
}

/// One HTTP/1.1 request over TLS (verified against the simulator's certificate); returns status, headers
/// and body.
async fn https(sim: &Sim, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    let mut s = tls_stream(sim).await;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    let resp = String::from_utf8(resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_string(), body.to_string())
}

async fn soap(sim: &Sim, cookie: &str, call: &str) -> (u16, String, String) {
    let envelope = format!(
        "<?xml version=\"1.0\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <soapenv:Body>{call}</soapenv:Body></soapenv:Envelope>"
    );
    let headers = format!("SOAPAction: \"urn:vim25/8.0.2.0\"\r\nContent-Type: text/xml\r\n{cookie}");
    https(sim, "POST", "/sdk", &headers, &envelope).await
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let start = s.find(open).unwrap_or_else(|| panic!("{open} in {s}")) + open.len();
    &s[start..start + s[start..].find(close).unwrap()]
}

/// Logs in; returns the cookie header.
async fn login(sim: &Sim) -> String {
    let login = "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">ha-sessionmgr</_this>\
                 <userName>root</userName><password>pw</password></Login>";
    let (status, head, _) = soap(sim, "", login).await;
    assert_eq!(status, 200);
    format!("Cookie: vmware_soap_session=\"{}\"\r\n", between(&head, "vmware_soap_session=\"", "\""))
}

/// Logs in and acquires a webmks ticket for VM 1; returns the cookie header and the ticket's url.
async fn login_and_ticket(sim: &Sim) -> (String, String) {
    let cookie = login(sim).await;
    let (status, _, body) = soap(
        sim,
        &cookie,
        "<AcquireTicket xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">1</_this><ticketType>webmks</ticketType></AcquireTicket>",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(between(&body, "<sslThumbprint>", "<"), sim.sha1);
    (cookie, between(&body, "<url>", "<").to_string())
}

type Client = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn connect(sim: &Sim, url: &str, subprotocol: Option<&str>) -> Result<Client, WsError> {
    let mut req = url.into_client_request().unwrap();
    if let Some(p) = subprotocol {
        req.headers_mut().insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    tokio_tungstenite::client_async(req, tls_stream(sim).await).await.map(|(ws, _)| ws)
}

fn refused_status(r: Result<Client, WsError>) -> u16 {
    match r {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// What the client saw besides pixels.
#[derive(Debug, Default)]
struct Seen {
    /// VMware server messages: (id, payload).
    vmw_messages: Vec<(u8, Vec<u8>)>,
    /// VMware pseudo-encoding rectangles: (encoding, payload).
    pseudo: Vec<(i32, Vec<u8>)>,
    updates: usize,
    /// The id in each FramebufferUpdate's header.
    update_ids: Vec<u8>,
}

/// Takes the VMware parts out of one WebSocket message from the simulator (each message holds whole server
/// messages) and returns the rest for the session.
fn strip_vmware(msg: &[u8], seen: &mut Seen) -> Vec<u8> {
    let mut r = Reader::new(msg);
    let mut rest = Vec::new();
    while r.remaining() > 0 {
        match r.u8().unwrap() {
            127 => {
                let id = r.u8().unwrap();
                let len = usize::from(r.u16().unwrap());
                seen.vmw_messages.push((id, r.take(len - 4).unwrap().to_vec()));
            }
            0 => {
                seen.updates += 1;
                seen.update_ids.push(r.u8().unwrap());
                let n = r.u16().unwrap();
                let mut body = Vec::new();
                let mut kept = 0u16;
                for _ in 0..n {
                    let header = r.take(12).unwrap();
                    let (w, h) = (
                        usize::from(u16::from_be_bytes([header[4], header[5]])),
                        usize::from(u16::from_be_bytes([header[6], header[7]])),
                    );
                    let encoding = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
                    let len = match encoding {
                        enc::VMW_DEFINE_CURSOR => 2 + w * h * 4,
                        enc::VMW_CURSOR_STATE => 2,
                        enc::VMW_LED_STATE => 4,
                        enc::VMW_TYPEMATIC_INFO => 10,
                        enc::DESKTOP_SIZE => 0,
                        enc::RAW => w * h * 4,
                        enc::TIGHT_PNG => {
                            let rest = r.rest();
                            match rest[0] {
                                0x80 => 4,
                                0xa0 => {
                                    let mut lr = Reader::new(&rest[1..]);
                                    let b0 = usize::from(lr.u8().unwrap());
                                    let mut l = b0 & 0x7f;
                                    if b0 & 0x80 != 0 {
                                        let b1 = usize::from(lr.u8().unwrap());
                                        l |= (b1 & 0x7f) << 7;
                                        if b1 & 0x80 != 0 {
                                            l |= usize::from(lr.u8().unwrap()) << 14;
                                        }
                                    }
                                    1 + lr.consumed() + l
                                }
                                c => panic!("TightPNG control {c:#x}: the simulator sends only fill and PNG"),
                            }
                        }
                        e => panic!("unexpected encoding {e}"),
                    };
                    let payload = r.take(len).unwrap();
                    if (enc::VMWARE_BASE..enc::VMWARE_BASE + 256).contains(&encoding) {
                        seen.pseudo.push((encoding, payload.to_vec()));
                    } else {
                        body.extend_from_slice(header);
                        body.extend_from_slice(payload);
                        kept += 1;
                    }
                }
                rest.extend_from_slice(&[0, 0]);
                rest.put_u16(kept);
                rest.extend_from_slice(&body);
            }
            t => panic!("unexpected server message type {t}"),
        }
    }
    rest
}

/// Reads messages until `done` says the session and what was seen are as wanted.
async fn pump(ws: &mut Client, session: &mut Session, seen: &mut Seen, done: impl Fn(&Session, &Seen) -> bool) {
    tokio::time::timeout(TIMEOUT, async {
        while !done(session, seen) {
            let msg = ws.next().await.expect("the simulator closed the WebSocket").unwrap();
            let Message::Binary(data) = msg else { continue };
            let data = if session.is_open() { strip_vmware(&data, seen) } else { data.to_vec() };
            session.feed(&data).unwrap();
            if session.has_output() {
                ws.send(Message::binary(session.take_output())).await.unwrap();
            }
        }
    })
    .await
    .expect("the expected messages did not arrive in time");
}

fn assert_screen(session: &Session, expected: &[u32]) {
    let fb = session.framebuffer().unwrap();
    assert_eq!((fb.width(), fb.height()), (W, H));
    let wrong = fb.pixels().iter().zip(expected).filter(|(a, b)| a != b).count();
    assert_eq!(wrong, 0, "pixels differ from the VNC server's");
}

async fn send(ws: &mut Client, msg: ClientMessage) {
    let mut v = Vec::new();
    msg.encode(&mut v);
    ws.send(Message::binary(v)).await.unwrap();
}

fn next_key(keys: &mpsc::Receiver<ClientMessage>) -> ClientMessage {
    keys.recv_timeout(TIMEOUT).expect("the VNC server received no key")
}

#[tokio::test(flavor = "multi_thread")]
async fn webmks_session_through_the_simulator() {
    let (vnc_port, keys) = scripted_vnc_server();
    let sim = start_sim(vnc_port, &["--extra-vmware-messages"]);
    let (_cookie, url) = login_and_ticket(&sim).await;
    assert!(url.starts_with(&format!("wss://127.0.0.1:{}/ticket/", sim.port)), "{url}");

    let mut ws = connect(&sim, &url, Some("binary")).await.unwrap();
    let config = Config {
        encodings: vec![
            enc::TIGHT_PNG,
            enc::DESKTOP_SIZE,
            enc::VMW_DEFINE_CURSOR,
            enc::VMW_CURSOR_STATE,
            enc::VMW_TYPEMATIC_INFO,
            enc::VMW_LED_STATE,
            enc::VMW_SERVER_CAPS,
        ],
        pixel_format: None,
        ..Config::default()
    };
    let mut session = Session::new(config, Credentials::default());
    let mut seen = Seen::default();
    pump(&mut ws, &mut session, &mut seen, |s, _| s.is_open()).await;
    assert_eq!(session.server_init().unwrap().name, "sut", "ServerInit carries the VM's name");
    assert_eq!(session.server_init().unwrap().pixel_format, PixelFormat::BGRX);
    session.request_update(false);
    ws.send(Message::binary(session.take_output())).await.unwrap();
    pump(&mut ws, &mut session, &mut seen, |s, _| s.updates_received() == 1).await;

    let ids: Vec<u8> = seen.vmw_messages.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [0, 0xc8, 4, 6], "ServerCaps, then the extra messages, before the first update");
    assert_eq!(seen.vmw_messages[0].1, 0x0002_000au32.to_be_bytes(), "KEY_EVENT | CLIENT_CAPS | SESSION_CLOSE");
    let pseudo: Vec<i32> = seen.pseudo.iter().map(|(e, _)| *e).collect();
    assert_eq!(pseudo, [enc::VMW_DEFINE_CURSOR, enc::VMW_CURSOR_STATE, enc::VMW_TYPEMATIC_INFO, enc::VMW_LED_STATE]);
    assert_eq!(seen.pseudo[0].1[0], 1, "an alpha cursor");
    assert_eq!(seen.pseudo[1].1, [0, 3], "cursor visible and absolute");
    assert!(session.rects_by_encoding().contains_key(&enc::TIGHT_PNG));
    assert_screen(&session, &screen());

    send(&mut ws, ClientMessage::VmwKeyEvent { down: true, scancode: 0x1e }).await;
    assert_eq!(next_key(&keys), ClientMessage::QemuExtKeyEvent { down: true, keysym: 0, keycode: 0x1e });
    send(&mut ws, ClientMessage::VmwKeyEvent { down: false, scancode: 0x11c }).await;
    assert_eq!(
        next_key(&keys),
        ClientMessage::QemuExtKeyEvent { down: false, keysym: 0, keycode: 0x9c },
        "an E0-prefixed key (keypad Enter) gets QEMU's 0x80 bit"
    );

    let mut expected = screen();
    for y in CHANGED.y..CHANGED.y + CHANGED.h {
        for x in CHANGED.x..CHANGED.x + CHANGED.w {
            expected[usize::from(y) * usize::from(W) + usize::from(x)] = CHANGED_COLOUR;
        }
    }
    session.request_update(true);
    ws.send(Message::binary(session.take_output())).await.unwrap();
    pump(&mut ws, &mut session, &mut seen, |s, _| s.updates_received() == 2).await;
    assert_screen(&session, &expected);

    let (status, _, stats) = https(&sim, "GET", "/_sim/stats", "", "").await;
    assert_eq!(status, 200);
    assert!(stats.contains("\"vmw_key_events\":2"), "{stats}");
    assert!(stats.contains("\"sessions_open\":1"), "{stats}");
    assert!(stats.contains("\"last_set_encodings\":[-260,-223,"), "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_refusals() {
    let (vnc_port, _keys) = scripted_vnc_server();
    let sim = start_sim(vnc_port, &[]);
    let (_, url) = login_and_ticket(&sim).await;
    assert_eq!(refused_status(connect(&sim, &url, None).await), 400, "no subprotocol");
    assert_eq!(refused_status(connect(&sim, &url, Some("base64")).await), 400, "not binary");
    let ws = connect(&sim, &url, Some("binary")).await.expect("the ticket survives a refused upgrade");
    drop(ws);
    assert_eq!(refused_status(connect(&sim, &url, Some("binary")).await), 503, "a used ticket");
    let unknown = format!("wss://127.0.0.1:{}/ticket/0123456789abcdef", sim.port);
    assert_eq!(refused_status(connect(&sim, &unknown, Some("binary")).await), 404, "an unknown ticket");

    let (cookie2, url2) = login_and_ticket(&sim).await;
    let logout = "<Logout xmlns=\"urn:vim25\"><_this type=\"SessionManager\">ha-sessionmgr</_this></Logout>";
    assert_eq!(soap(&sim, &cookie2, logout).await.0, 200);
    assert_eq!(refused_status(connect(&sim, &url2, Some("binary")).await), 503, "the session logged out first");
    let acquire = "<AcquireTicket xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">1</_this>\
                   <ticketType>webmks</ticketType></AcquireTicket>";
    let (status, _, fault) = soap(&sim, &cookie2, acquire).await;
    assert_eq!(status, 500);
    assert!(fault.contains("<NotAuthenticatedFault xmlns=\"urn:vim25\" xsi:type=\"NotAuthenticated\">"), "{fault}");
    let (status, _, stats) = https(&sim, "GET", "/_sim/stats", "", "").await;
    assert_eq!(status, 200);
    assert!(stats.contains("\"tickets_rejected\":3,") && stats.contains("\"logouts\":1,"), "{stats}");
}

/// Connects, handshakes with VMware extensions and receives the first full update.
async fn open_console(sim: &Sim) -> (Client, Session, Seen) {
    open_console_with(sim, vec![enc::TIGHT_PNG, enc::VMW_SERVER_CAPS]).await
}

/// [`open_console`] offering `encodings`.
async fn open_console_with(sim: &Sim, encodings: Vec<i32>) -> (Client, Session, Seen) {
    let (_, url) = login_and_ticket(sim).await;
    let mut ws = connect(sim, &url, Some("binary")).await.unwrap();
    let config = Config { encodings, pixel_format: None, ..Config::default() };
    let mut session = Session::new(config, Credentials::default());
    let mut seen = Seen::default();
    pump(&mut ws, &mut session, &mut seen, |s, _| s.is_open()).await;
    session.request_update(false);
    ws.send(Message::binary(session.take_output())).await.unwrap();
    pump(&mut ws, &mut session, &mut seen, |s, _| s.updates_received() == 1).await;
    (ws, session, seen)
}

/// Reads until the connection ends; returns the VMware messages and whether the stream stopped inside a
/// FramebufferUpdate without a WebSocket close.
async fn read_to_end(ws: &mut Client, session: &mut Session, seen: &mut Seen) -> bool {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(data))) if data[0] == 127 => {
                    strip_vmware(&data, seen);
                }
                Some(Ok(Message::Binary(data))) => session.feed(&data).unwrap(),
                Some(Ok(Message::Close(_))) => return false,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return session.is_mid_message(),
            }
        }
    })
    .await
    .expect("the connection did not end")
}

#[tokio::test(flavor = "multi_thread")]
async fn freeze_thaw_and_close_mid_update() {
    let (vnc_port, keys) = scripted_vnc_server();
    let sim = start_sim(vnc_port, &[]);
    let (mut ws, mut session, mut seen) = open_console(&sim).await;
    send(&mut ws, ClientMessage::VmwClientCaps(0x8000)).await;
    assert_eq!(https(&sim, "POST", "/_sim/freeze", "", "").await.0, 200);
    send(&mut ws, ClientMessage::KeyEvent { down: true, keysym: 0x61 }).await;
    assert_eq!(next_key(&keys), ClientMessage::KeyEvent { down: true, keysym: 0x61 });
    session.request_update(true);
    ws.send(Message::binary(session.take_output())).await.unwrap();
    let frozen = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
    assert!(frozen.is_err(), "no update while frozen: {frozen:?}");
    assert_eq!(https(&sim, "POST", "/_sim/thaw", "", "").await.0, 200);
    pump(&mut ws, &mut session, &mut seen, |s, _| s.updates_received() == 2).await;
    assert_eq!(session.framebuffer().unwrap().get(CHANGED.x, CHANGED.y), CHANGED_COLOUR);

    assert_eq!(https(&sim, "POST", "/_sim/close", "", "").await.0, 200);
    assert!(read_to_end(&mut ws, &mut session, &mut seen).await, "the stream ends inside an update");
    assert_eq!(seen.vmw_messages.last().unwrap(), &(7, vec![0, 0, 0, 2]), "SessionClose first");
}

/// A client that takes pushed updates, as VMware's wmks.js does, is told UpdateAck; updates carry ids from 1,
/// and an acknowledgement of the last one, not a request, brings the next.
#[tokio::test(flavor = "multi_thread")]
async fn pushed_updates_paced_by_acknowledgements() {
    let (vnc_port, keys) = scripted_vnc_server();
    let sim = start_sim(vnc_port, &[]);
    let encodings = vec![enc::TIGHT_PNG, enc::VMW_SERVER_PUSH2, enc::VMW_SERVER_CAPS];
    let (mut ws, mut session, mut seen) = open_console_with(&sim, encodings).await;
    assert_eq!(seen.vmw_messages, [(0, vec![0, 2, 0, 0x2a])], "ServerCaps with UpdateAck (0x20)");
    assert_eq!(seen.update_ids, [1]);

    send(&mut ws, ClientMessage::KeyEvent { down: true, keysym: 0x61 }).await;
    assert_eq!(next_key(&keys), ClientMessage::KeyEvent { down: true, keysym: 0x61 });
    let unasked = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
    assert!(unasked.is_err(), "nothing before the acknowledgement: {unasked:?}");
    send(&mut ws, ClientMessage::VmwAck { update_id: 1, render_time: 20 }).await;
    pump(&mut ws, &mut session, &mut seen, |s, _| s.updates_received() == 2).await;
    assert_eq!(seen.update_ids, [1, 2]);
    assert_eq!(session.framebuffer().unwrap().get(CHANGED.x, CHANGED.y), CHANGED_COLOUR);
}

#[tokio::test(flavor = "multi_thread")]
async fn close_mid_update_after_n_updates() {
    let (vnc_port, _keys) = scripted_vnc_server();
    let sim = start_sim(vnc_port, &["--close-mid-update-after", "1"]);
    let (mut ws, mut session, mut seen) = open_console(&sim).await;
    session.request_update(false);
    ws.send(Message::binary(session.take_output())).await.unwrap();
    assert!(read_to_end(&mut ws, &mut session, &mut seen).await, "the second update is cut");
    assert_eq!(session.updates_received(), 1);
}

/// Datastore files as libvirt moves them: /folder with the SOAP session's cookie (or basic authentication),
/// uploads that make directories, paths that stay inside the datastore.
#[tokio::test]
async fn datastore_files_over_https() {
    let dir = TempDir(std::env::temp_dir().join(format!("webmks-sim-datastore-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let sim = start_sim(9, &["--datastore", &format!("datastore1={}", dir.0.display())]);
    let q = "?dcPath=ha-datacenter&dsName=datastore1";
    let file = format!("/folder/openQA%2Fvm.vmx{q}");
    let (status, head, _) = https(&sim, "GET", &file, "", "").await;
    assert_eq!(status, 401, "no session, no credentials");
    assert!(head.to_ascii_lowercase().contains("www-authenticate: basic realm="), "{head}");
    let cookie = login(&sim).await;
    let vmx = "displayName = \"vm\"\n";
    assert_eq!(https(&sim, "PUT", &file, &cookie, vmx).await.0, 201, "created, with its directory");
    assert_eq!(std::fs::read_to_string(dir.0.join("openQA/vm.vmx")).unwrap(), vmx);
    assert_eq!(https(&sim, "PUT", &file, &cookie, vmx).await.0, 200, "replaced");
    assert_eq!(https(&sim, "GET", &file, &cookie, "").await.2, vmx);
    let (status, _, body) = https(&sim, "GET", &file, "Authorization: Basic cm9vdDpwdw==\r\n", "").await;
    assert_eq!((status, body.as_str()), (200, vmx), "basic authentication as root:pw");
    assert_eq!(https(&sim, "GET", &file, "Authorization: Basic cm9vdDp4\r\n", "").await.0, 401, "root:x");
    for escape in ["/folder/..%2Fescape", "/folder/openQA/../../escape", "/folder/%2Fetc%2Fpasswd"] {
        assert_eq!(https(&sim, "GET", &format!("{escape}{q}"), &cookie, "").await.0, 400, "{escape}");
    }
    let other_dc = "/folder/openQA/vm.vmx?dcPath=DC0&dsName=datastore1";
    assert_eq!(https(&sim, "GET", other_dc, &cookie, "").await.0, 404);
    let other_ds = "/folder/openQA/vm.vmx?dcPath=ha-datacenter&dsName=datastore2";
    assert_eq!(https(&sim, "GET", other_ds, &cookie, "").await.0, 404);
    assert_eq!(https(&sim, "DELETE", &file, &cookie, "").await.0, 204);
    assert!(!dir.0.join("openQA/vm.vmx").exists());
    assert_eq!(https(&sim, "GET", &file, &cookie, "").await.0, 404);
}
