//! The built `webmks-sim` against a scripted VNC server and a webmks client written here: SOAP login and
//! AcquireTicket, the wss upgrade and its refusals, the VMware dialect (ServerCaps, pseudo-encodings,
//! TightPNG), pixels equal to the VNC server's, and VMWKeyEvents arriving as QEMU extended key events.
//!
//! The client drives a `nativevnc::session::Session`; VMware server messages and pseudo-encoding rectangles
//! are taken out of the stream and checked here, since the session does not parse them (yet).

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{
    connect, https, refused_status, screen, scripted_vnc_server, start_sim, Client, Sim, TempDir, CHANGED,
    CHANGED_COLOUR, H, TIMEOUT, W,
};
use futures_util::{SinkExt, StreamExt};
use nativevnc::codec::{Put, Reader};
use nativevnc::config::Config;
use nativevnc::encoding as enc;
use nativevnc::handshake::Credentials;
use nativevnc::messages::ClientMessage;
use nativevnc::pixel::PixelFormat;
use nativevnc::session::Session;
use tokio_tungstenite::tungstenite::Message;

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
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &sim.cert);
    let sha1: Vec<String> = sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(between(&body, "<sslThumbprint>", "<"), sha1.join(":"), "the thumbprint of the served certificate");
    (cookie, between(&body, "<url>", "<").to_string())
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
    pump(&mut ws, &mut session, &mut seen, |s, _| s.counters().updates == 1).await;

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
    pump(&mut ws, &mut session, &mut seen, |s, _| s.counters().updates == 2).await;
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
    pump(&mut ws, &mut session, &mut seen, |s, _| s.counters().updates == 1).await;
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
    pump(&mut ws, &mut session, &mut seen, |s, _| s.counters().updates == 2).await;
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
    pump(&mut ws, &mut session, &mut seen, |s, _| s.counters().updates == 2).await;
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
    assert_eq!(session.counters().updates, 1);
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
