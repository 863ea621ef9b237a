//! What the integration tests share: a scripted VNC server to put behind the consoles, the simulator process,
//! and HTTPS requests and WebSocket connections verified against the simulator's certificate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use nativevnc::codec::{Put, Reader};
use nativevnc::encoding as enc;
use nativevnc::framebuffer::Rect;
use nativevnc::messages::ClientMessage;
use nativevnc::pixel::PixelFormat;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

pub const W: u16 = 96;
pub const H: u16 = 64;
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The scripted VNC server's screen: stripes, a flat block and noise.
pub fn screen() -> Vec<u32> {
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
pub const CHANGED: Rect = Rect::new(40, 8, 20, 12);
pub const CHANGED_COLOUR: u32 = 0x00ff_8000;

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
pub fn scripted_vnc_server() -> (u16, mpsc::Receiver<ClientMessage>) {
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
pub struct Sim {
    child: Child,
    pub port: u16,
    pub cert: CertificateDer<'static>,
    _dir: TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn start_sim(vnc_port: u16, extra: &[&str]) -> Sim {
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
    let cert = CertificateDer::from_pem_file(&cert_path).unwrap();
    Sim { child, port, cert, _dir: TempDir(dir) }
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
pub async fn https(sim: &Sim, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
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

pub type Client = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

pub async fn connect(sim: &Sim, url: &str, subprotocol: Option<&str>) -> Result<Client, WsError> {
    let mut req = url.into_client_request().unwrap();
    if let Some(p) = subprotocol {
        req.headers_mut().insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    tokio_tungstenite::client_async(req, tls_stream(sim).await).await.map(|(ws, _)| ws)
}

pub fn refused_status(r: Result<Client, WsError>) -> u16 {
    match r {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}
