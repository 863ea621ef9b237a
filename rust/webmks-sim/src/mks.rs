//! The webmks console behind a ticket: the VMware dialect of RFB 3.8 over a WebSocket, re-encoding what the
//! real VNC server ([`Backend`]) shows.
//!
//! As ESXi does it: `RFB 003.008\n`, the security types (only None), SecurityResult and ServerInit each go
//! out as their own WebSocket message, and every FramebufferUpdate as one binary message however large.
//! SetPixelFormat is ignored (the format stays B,G,R,X). Updates answer FramebufferUpdateRequests: a full
//! request gets the whole screen at once, an incremental one waits for the backend's next change. A client
//! that takes pushed updates (VMWServerPush2, as VMware's own does) is told UpdateAck: it then acknowledges
//! each update by its id (VMWAck) instead of requesting the next, and an acknowledgement counts as an
//! incremental request for the whole screen.
//!
//! Faults (`POST /_sim/fault`, see [`crate::control`]) end a connection with a WebSocket close frame of a given
//! code, or with the header of a message larger than any client accepts.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use nativevnc::codec::{Put, ReadError, Reader};
use nativevnc::framebuffer::{Damage, Rect};
use nativevnc::messages::{client_type, vmw_client_caps, ClientMessage};
use nativevnc::pixel::PixelFormat;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::backend::{Backend, Change};
use crate::control::{bump, Fault, Switches, OVERSIZE_SENT};
use crate::sessions::random_hex;
use crate::sim::{lock, Sim};
use crate::update::{clip, next_update_id, ClientEncodings, UpdateBuilder, CURSOR_VISIBLE_ABSOLUTE};
use crate::vmw;

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How long the client and the VNC server each get for their handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Heartbeat period for clients that announced the Heartbeat capability, in seconds.
const HEARTBEAT_SECS: u16 = 3;
/// The longest client message accepted (ClientCutText).
const MAX_CLIENT_MESSAGE: usize = 1 << 20;
/// How long a connection closed by a fault waits for the client's close frame.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection ends.
#[derive(Debug)]
enum End {
    /// The client went away or broke the protocol; the message says how.
    Client(String),
    Backend(String),
    /// The connection was dropped on purpose in the middle of an update.
    MidUpdate(&'static str),
    /// A fault asked for by `POST /_sim/fault` ended it.
    Fault(Fault),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Client(why) => write!(f, "client: {why}"),
            End::Backend(why) => write!(f, "VNC server: {why}"),
            End::MidUpdate(why) => write!(f, "dropped mid-update ({why})"),
            End::Fault(fault) => write!(f, "ended by {fault} (POST /_sim/fault)"),
        }
    }
}

/// The VNC server behind one webmks connection: a connected stream and the server's password.
pub struct Console {
    pub stream: TcpStream,
    pub password: Option<String>,
}

/// One webmks connection to VM `name`: serves it until it ends, counting it in the stats.
pub async fn serve(sim: Arc<Sim>, name: String, ws: Ws, console: Console, peer: String) {
    bump(&sim.stats.sessions_total);
    bump(&sim.stats.sessions_open);
    log!("{peer} webmks session on VM {name} opened");
    let end = run(&sim, &name, ws, console).await;
    sim.stats.sessions_open.fetch_sub(1, Relaxed);
    log!("{peer} webmks session on VM {name} ended: {end}");
}

async fn run(sim: &Arc<Sim>, name: &str, ws: Ws, console: Console) -> End {
    let backend = match Backend::start(console.stream, console.password, HANDSHAKE_TIMEOUT).await {
        Ok(b) => b,
        Err(e) => {
            let mut ws = ws;
            let _ = ws.close(None).await;
            return End::Backend(e);
        }
    };
    log!("VNC server '{}' ({}x{})", backend.name(), backend.framebuffer().width(), backend.framebuffer().height());
    let switches = sim.control.subscribe();
    let Switches { close_generation, stall_generation, fault_generation, frozen } = *switches.borrow();
    let mut conn = Conn {
        sim: sim.clone(),
        ws,
        input: Vec::new(),
        backend,
        encodings: ClientEncodings::default(),
        request: None,
        damage: Damage::default(),
        size: (0, 0),
        resized: false,
        sent_first: false,
        leds_sent: None,
        server_caps_sent: false,
        acks: false,
        update_id: 0,
        client_caps: 0,
        last_pointer: (0, 0),
        updates: 0,
        frozen,
        stalled: false,
        close_generation,
        stall_generation,
        fault_generation,
    };
    if let Err(e) = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.handshake(name))
        .await
        .unwrap_or_else(|_| Err(End::Client(format!("no RFB handshake from the client within {HANDSHAKE_TIMEOUT:?}"))))
    {
        return e;
    }
    conn.serve(switches).await
}

/// A pending FramebufferUpdateRequest.
#[derive(Debug, Clone, Copy)]
struct Request {
    incremental: bool,
}

struct Conn {
    sim: Arc<Sim>,
    ws: Ws,
    input: Vec<u8>,
    backend: Backend,
    encodings: ClientEncodings,
    request: Option<Request>,
    /// What changed on the backend since the last update sent.
    damage: Damage,
    /// The framebuffer size the client knows.
    size: (u16, u16),
    resized: bool,
    sent_first: bool,
    leds_sent: Option<u8>,
    server_caps_sent: bool,
    /// The client was told UpdateAck: its acknowledgements stand for incremental requests.
    acks: bool,
    /// The id of the last update sent (0 before the first).
    update_id: u8,
    client_caps: u32,
    last_pointer: (u16, u16),
    updates: u64,
    frozen: bool,
    /// Set by `stall` for good: this connection sends no more updates.
    stalled: bool,
    close_generation: u64,
    stall_generation: u64,
    fault_generation: u64,
}

impl Conn {
    async fn send(&mut self, bytes: Vec<u8>) -> Result<(), End> {
        self.ws.send(Message::binary(bytes)).await.map_err(|e| End::Client(format!("sending: {e}")))
    }

    /// Waits until `n` bytes from the client are buffered.
    async fn want(&mut self, n: usize) -> Result<(), End> {
        while self.input.len() < n {
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => self.input.extend_from_slice(&b),
                Some(Ok(Message::Close(_))) | None => return Err(End::Client("closed during the handshake".into())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(End::Client(format!("during the handshake: {e}"))),
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        self.input.drain(..n).collect()
    }

    async fn handshake(&mut self, name: &str) -> Result<(), End> {
        self.send(b"RFB 003.008\n".to_vec()).await?;
        self.want(12).await?;
        let version = self.take(12);
        let minor = match &version[..] {
            b"RFB 003.003\n" => 3,
            b"RFB 003.007\n" => 7,
            v if v.starts_with(b"RFB 003.") => 8,
            v => return Err(End::Client(format!("not an RFB client: {:?}", String::from_utf8_lossy(v)))),
        };
        if minor == 3 {
            self.send(1u32.to_be_bytes().to_vec()).await?;
        } else {
            self.send(vec![1, 1]).await?;
            self.want(1).await?;
            let choice = self.take(1)[0];
            if choice != 1 {
                return Err(End::Client(format!("the client chose security type {choice}; only None (1) is offered")));
            }
            if minor == 8 {
                self.send(0u32.to_be_bytes().to_vec()).await?;
            }
        }
        self.want(1).await?;
        self.take(1);
        let fb = self.backend.framebuffer();
        self.size = (fb.width(), fb.height());
        let mut init = Vec::new();
        init.put_u16(self.size.0);
        init.put_u16(self.size.1);
        PixelFormat::BGRX.encode(&mut init);
        init.put_u32(name.len() as u32);
        init.extend_from_slice(name.as_bytes());
        self.send(init).await
    }

    async fn serve(mut self, mut switches: tokio::sync::watch::Receiver<Switches>) -> End {
        let mut heartbeat = tokio::time::interval(Duration::from_secs(u64::from(HEARTBEAT_SECS)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(end) = self.handle_client_input().await {
                return end;
            }
            if let Err(end) = self.maybe_update().await {
                return end;
            }
            let heartbeats = self.client_caps & vmw_client_caps::HEARTBEAT != 0;
            let step = tokio::select! {
                msg = self.ws.next() => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        self.input.extend_from_slice(&b);
                        Ok(())
                    }
                    Some(Ok(Message::Close(_))) | None => Err(End::Client("closed the connection".into())),
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(End::Client(e.to_string())),
                },
                n = self.backend.read() => self.backend_input(n).await,
                _ = heartbeat.tick(), if heartbeats => self.send(vmw::heartbeat(HEARTBEAT_SECS)).await,
                changed = switches.changed() => match changed {
                    Ok(()) => {
                        let s = *switches.borrow_and_update();
                        self.frozen = s.frozen;
                        if s.stall_generation != self.stall_generation && !self.stalled {
                            self.stalled = true;
                            log!("stalled by POST /_sim/stall: no more updates on this connection");
                        }
                        if s.close_generation != self.close_generation {
                            Err(self.close_mid_update(vmw::CLOSE_REASON_ADMIN, "closed by POST /_sim/close").await)
                        } else if s.fault_generation != self.fault_generation {
                            self.fault_generation = s.fault_generation;
                            match self.sim.control.fault() {
                                Some(fault) => Err(self.suffer(fault).await),
                                None => Ok(()),
                            }
                        } else {
                            Ok(())
                        }
                    }
                    Err(_) => Err(End::Backend("the simulator is shutting down".into())),
                },
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn backend_input(&mut self, n: std::io::Result<usize>) -> Result<(), End> {
        let n = n.map_err(|e| End::Backend(format!("reading from the VNC server: {e}")))?;
        if n == 0 {
            if self.client_caps & vmw_client_caps::SESSION_CLOSE != 0 {
                self.send(vmw::session_close(vmw::CLOSE_REASON_BACKEND_GONE)).await?;
            }
            let _ = self.ws.close(None).await;
            return Err(End::Backend("the VNC server closed the connection".into()));
        }
        for change in self.backend.absorb(n).map_err(End::Backend)? {
            match change {
                Change::Update => {
                    for r in self.backend.take_damage() {
                        self.damage.add(r);
                    }
                }
                Change::Resized => {
                    self.resized = true;
                    self.backend.take_damage();
                    self.damage.add(self.backend.framebuffer().bounds());
                }
                Change::Leds(_) => {}
            }
        }
        self.backend.flush().await.map_err(|e| End::Backend(format!("writing to the VNC server: {e}")))
    }

    /// Parses and handles every complete client message in the input.
    async fn handle_client_input(&mut self) -> Result<(), End> {
        loop {
            let input = std::mem::take(&mut self.input);
            let mut r = Reader::new(&input);
            let parsed = self.skip_unknown_vmware(&mut r).and_then(|skipped| match skipped {
                true => Ok(None),
                false => ClientMessage::read(&mut r, MAX_CLIENT_MESSAGE).map(Some),
            });
            let used = r.consumed();
            self.input = input;
            match parsed {
                Err(ReadError::Incomplete) => break,
                Err(ReadError::Invalid(e)) => return Err(End::Client(format!("protocol error: {e}"))),
                Ok(msg) => {
                    self.input.drain(..used);
                    if let Some(msg) = msg {
                        self.handle(msg).await?;
                    }
                }
            }
        }
        self.backend.flush().await.map_err(|e| End::Backend(format!("writing to the VNC server: {e}")))
    }

    /// VMware client messages this server does not act on (RequestResolution, KeyEvent2, …) are
    /// skipped by their length. Returns whether one was.
    fn skip_unknown_vmware(&self, r: &mut Reader) -> Result<bool, ReadError> {
        let mut peek = r.clone();
        if peek.u8()? != client_type::VMWARE {
            return Ok(false);
        }
        let sub = peek.u8()?;
        if matches!(
            sub,
            client_type::VMW_KEY_EVENT
                | client_type::VMW_POINTER_EVENT2
                | client_type::VMW_CLIENT_CAPS
                | client_type::VMW_ACK
        ) {
            return Ok(false);
        }
        let len = usize::from(peek.u16()?).max(4);
        r.skip(len)?;
        log!("skipped VMware client message 127/{sub} ({len} bytes)");
        Ok(true)
    }

    async fn handle(&mut self, msg: ClientMessage) -> Result<(), End> {
        let stats = &self.sim.stats;
        match msg {
            ClientMessage::SetPixelFormat(pf) => {
                bump(&stats.set_pixel_format_ignored);
                log!("SetPixelFormat ignored ({} bpp, depth {}), as VMware servers do", pf.bits_per_pixel, pf.depth);
            }
            ClientMessage::SetEncodings(list) => {
                log!("SetEncodings {list:?}");
                self.encodings = ClientEncodings::from_list(&list);
                *lock(&stats.last_set_encodings) = list;
                if self.encodings.vmw_server_caps && !self.server_caps_sent {
                    self.server_caps_sent = true;
                    self.acks = self.encodings.vmw_server_push2;
                    self.send(vmw::server_caps(vmw::server_caps_for(self.acks))).await?;
                    if self.sim.settings.extra_vmware_messages {
                        self.send(vmw::message(vmw::UNKNOWN_SUBTYPE, b"webmks-sim unknown message")).await?;
                        self.send(vmw::heartbeat(HEARTBEAT_SECS)).await?;
                        self.send(vmw::set_reconnect_token(&random_hex(16))).await?;
                    }
                }
            }
            ClientMessage::FramebufferUpdateRequest { incremental, .. } => {
                let incremental = incremental && !matches!(self.request, Some(Request { incremental: false }));
                self.request = Some(Request { incremental });
            }
            ClientMessage::KeyEvent { down, keysym } => {
                bump(&stats.key_events);
                self.backend.send(&ClientMessage::KeyEvent { down, keysym });
                self.after_key(down).await?;
            }
            ClientMessage::QemuExtKeyEvent { down, keysym, keycode } => {
                bump(&stats.key_events);
                self.backend.send(&ClientMessage::QemuExtKeyEvent { down, keysym, keycode });
                self.after_key(down).await?;
            }
            ClientMessage::VmwKeyEvent { down, scancode } => {
                bump(&stats.vmw_key_events);
                let keycode = u32::from(scancode & 0x7f) | if scancode & 0x100 != 0 { 0x80 } else { 0 };
                if self.backend.ext_keys() {
                    self.backend.send(&ClientMessage::QemuExtKeyEvent { down, keysym: 0, keycode });
                } else {
                    log!("error: VMWKeyEvent {scancode:#x} dropped: the VNC server has no QEMU extended key events");
                }
                self.after_key(down).await?;
            }
            ClientMessage::PointerEvent { buttons, x, y } => {
                bump(&stats.pointer_events);
                self.last_pointer = (x, y);
                self.backend.send(&ClientMessage::PointerEvent { buttons, x, y });
            }
            ClientMessage::VmwPointerEvent2 { absolute, x, y, buttons, wheel_y, .. } => {
                bump(&stats.pointer_events);
                let coord = |base: u16, v: i32, relative: bool| {
                    let v = if relative { i64::from(base) + i64::from(v) } else { i64::from(v) };
                    v.clamp(0, i64::from(u16::MAX)) as u16
                };
                let (x, y) = (coord(self.last_pointer.0, x, !absolute), coord(self.last_pointer.1, y, !absolute));
                self.last_pointer = (x, y);
                let buttons = buttons as u8;
                self.backend.send(&ClientMessage::PointerEvent { buttons, x, y });
                if wheel_y != 0 {
                    bump(&stats.wheel_events);
                    let wheel = if wheel_y < 0 { 0x08 } else { 0x10 };
                    for _ in 0..wheel_y.unsigned_abs() {
                        self.backend.send(&ClientMessage::PointerEvent { buttons: buttons | wheel, x, y });
                        self.backend.send(&ClientMessage::PointerEvent { buttons, x, y });
                    }
                }
            }
            ClientMessage::VmwClientCaps(caps) => {
                log!("VMware client caps {caps:#x}");
                self.client_caps = caps;
            }
            ClientMessage::VmwAck { update_id, .. } => {
                if !self.acks {
                    log!("VMWAck for update {update_id} ignored: UpdateAck was not announced");
                } else if update_id != self.update_id {
                    log!("error: VMWAck for update {update_id}, the last one sent was {}", self.update_id);
                } else if self.request.is_none() {
                    self.request = Some(Request { incremental: true });
                }
            }
            ClientMessage::CutText(text) => self.backend.send(&ClientMessage::CutText(text)),
        }
        Ok(())
    }

    /// After a key release went to the VNC server: drops the connection if it was the one `close-after-keys`
    /// waited for. The key itself is delivered first.
    async fn after_key(&mut self, down: bool) -> Result<(), End> {
        if down || !self.sim.control.key_released() {
            return Ok(());
        }
        self.backend.flush().await.map_err(|e| End::Backend(format!("writing to the VNC server: {e}")))?;
        Err(self.close_mid_update(vmw::CLOSE_REASON_ADMIN, "closed by POST /_sim/close-after-keys").await)
    }

    /// Builds the update a pending request gets now, if there is anything to send.
    fn build_update(&mut self, force_full: bool) -> Option<UpdateBuilder> {
        let request = self.request?;
        let enc = self.encodings;
        let fb = self.backend.framebuffer();
        let mut b = UpdateBuilder::default();
        if !self.sent_first {
            if enc.vmw_cursor {
                b.vmw_cursor();
            }
            if enc.vmw_cursor_state {
                b.vmw_cursor_state(CURSOR_VISIBLE_ABSOLUTE);
            }
            if enc.vmw_typematic {
                b.vmw_typematic();
            }
        }
        let leds = self.backend.leds().unwrap_or(0);
        if enc.vmw_led_state && (!self.sent_first || self.leds_sent != Some(leds)) {
            b.vmw_led_state(u32::from(leds));
        }
        if self.resized && enc.desktop_size {
            b.desktop_size(fb.width(), fb.height());
        }
        let (w, h) = if enc.desktop_size { (fb.width(), fb.height()) } else { self.size };
        let rects: Vec<Rect> = if !request.incremental || force_full || (self.resized && enc.desktop_size) {
            vec![fb.bounds()]
        } else {
            self.damage.rects().to_vec()
        };
        for r in rects {
            b.pixels(fb, clip(r, w, h), enc.tight_png);
        }
        if b.is_empty() && request.incremental && !force_full {
            return None;
        }
        self.leds_sent = Some(leds);
        Some(b)
    }

    /// Everything an update went out for is no longer pending.
    fn update_done(&mut self) {
        let fb = self.backend.framebuffer();
        if self.encodings.desktop_size {
            self.size = (fb.width(), fb.height());
        }
        self.resized = false;
        self.sent_first = true;
        self.update_id = next_update_id(self.update_id);
        self.request = None;
        self.damage.take();
        self.updates += 1;
        bump(&self.sim.stats.updates_sent);
    }

    async fn maybe_update(&mut self) -> Result<(), End> {
        // Nothing is shown before the VNC server sent its screen (QEMU's first update after SetEncodings
        // carries only pseudo-encodings): a client must never see a screen the guest did not show.
        if self.frozen || self.stalled || !self.backend.has_screen() {
            return Ok(());
        }
        let Some(update) = self.build_update(false) else {
            return Ok(());
        };
        let msg = update.finish(next_update_id(self.update_id));
        if self.sim.settings.close_mid_update_after.is_some_and(|limit| self.updates >= limit) {
            return Err(self.cut(msg, vmw::CLOSE_REASON_ADMIN, "--close-mid-update-after").await);
        }
        self.send(msg).await?;
        self.update_done();
        if self.updates == 1 {
            if let Some(fault) = self.sim.control.take_next_fault() {
                return Err(self.suffer(fault).await);
            }
        }
        Ok(())
    }

    /// Ends the connection with `fault`: a close frame (then a moment for the client's reply), or the header
    /// and the first bytes of an over-size message written straight to the connection, then nothing more.
    async fn suffer(&mut self, fault: Fault) -> End {
        log!("fault: {fault}");
        match &fault {
            Fault::Close { code, reason } => {
                let frame = CloseFrame { code: CloseCode::from(*code), reason: reason.clone().into() };
                if self.ws.close(Some(frame)).await.is_ok() {
                    let reply = async { while let Some(Ok(_)) = self.ws.next().await {} };
                    let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, reply).await;
                }
            }
            Fault::Oversize(bytes) => {
                let mut frame = vec![0x82, 127];
                frame.put_u32((bytes >> 32) as u32);
                frame.put_u32(*bytes as u32);
                frame.resize(frame.len() + (*bytes).min(OVERSIZE_SENT) as usize, 0);
                if self.ws.flush().await.is_ok() {
                    let raw = self.ws.get_mut();
                    let _ = raw.write_all(&frame).await;
                    let _ = raw.flush().await;
                }
            }
        }
        End::Fault(fault)
    }

    /// Sends the first part of a full-screen update and drops the connection.
    async fn close_mid_update(&mut self, reason: u32, why: &'static str) -> End {
        if self.request.is_none() {
            self.request = Some(Request { incremental: false });
        }
        let id = next_update_id(self.update_id);
        let msg = self.build_update(true).map(|u| u.finish(id)).unwrap_or_default();
        self.cut(msg, reason, why).await
    }

    /// Sends SessionClose (if the client takes it), then the first half of `msg`, then drops the connection
    /// without a WebSocket close: the client sees the stream end in the middle of a message.
    async fn cut(&mut self, msg: Vec<u8>, reason: u32, why: &'static str) -> End {
        if self.client_caps & vmw_client_caps::SESSION_CLOSE != 0 {
            let _ = self.send(vmw::session_close(reason)).await;
        }
        let part = msg.len() / 2;
        if part > 0 {
            let _ = self.send(msg[..part].to_vec()).await;
        }
        End::MidUpdate(why)
    }
}
