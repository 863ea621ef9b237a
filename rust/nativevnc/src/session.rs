//! The sans-I/O RFB client session.
//!
//! A [`Session`] owns no socket and no clock. The transport appends received bytes to
//! [`Session::input`] (or calls [`Session::feed`]), calls [`Session::process`], writes out what
//! [`Session::take_output`] returns and reacts to [`Session::next_event`]. Pixels land in the session's
//! own [`Framebuffer`] ([`Session::new`]), or, for a session made with [`Session::drawing_elsewhere`], on
//! the [`Canvas`] each call of [`Session::process_on`] lends it: such a session keeps no pixels, and
//! stops before the pixel data of a rectangle until it is given a canvas of the screen's size
//! ([`Session::wants_canvas`]). The touched rectangles are recorded in a [`Damage`] list either way.
//!
//! The messages are parsed by the types of [`crate::server_messages`] (and the handshake by
//! [`Handshake`]); the session dispatches on what they return: it keeps the state between messages, turns
//! them into events, and queues the answers the protocol requires.
//!
//! Short input is never an error: a message cut off at the end of the input waits for the next bytes.
//! Large rectangles are decoded as their bytes arrive (Raw, RRE, Hextile, TRLE, and ZRLE and Zlib through
//! their zlib streams), so the input buffer stays small; Tight rectangles (at most 2048 pixels wide),
//! cursors and colour maps are decoded whole and bounded by [`Limits`].
//!
//! An error is final, as in rustls: once [`Session::process`] (or [`Session::feed`]) has failed, the
//! session keeps that error and does no new work. Every later call that can fail answers with the same
//! error and leaves the input alone, and the calls that queue a client message ([`Session::send`],
//! [`Session::key`], [`Session::wheel`], [`Session::request_update`]) queue nothing and return false. What was
//! decoded before the error (framebuffer, events, output) stays available.

use std::collections::VecDeque;

use crate::codec::{Parse, ReadError, Reader};
use crate::config::{Config, Limits};
use crate::decode::cursor::CursorShape;
use crate::decode::{Ctx, Decoder, Progress, Scratch, Streams};
use crate::error::ProtocolError;
use crate::framebuffer::{Canvas, Damage, Framebuffer, Rect};
use crate::handshake::{Credentials, Handshake, ServerInit};
use crate::messages::{vmw_client_caps, vmw_server_caps, ClientMessage};
use crate::pixel::PixelReader;
use crate::server_messages::{PseudoRect, RectHeader, ServerMessage, VmwServerMessage};

/// Something the server told the client, besides pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished; [`Session::server_init`] has the details.
    Connected,
    /// A FramebufferUpdate message was processed completely.
    Update,
    /// The framebuffer changed size (it is black until the server repaints it).
    Resized {
        width: u16,
        height: u16,
    },
    Bell,
    /// ServerCutText (Latin-1), up to [`Limits::max_cut_text`] bytes; longer text is skipped.
    CutText(Vec<u8>),
    /// QEMU pointer type change: whether the pointer is absolute (tablet) or relative.
    PointerType {
        absolute: bool,
    },
    /// QEMU LED state: bit 0 Scroll Lock, bit 1 Num Lock, bit 2 Caps Lock.
    LedState(u8),
    /// A new cursor shape (Cursor pseudo-encoding).
    Cursor(CursorShape),
    /// The server accepts QEMU extended key events; keys are now sent with scancodes.
    ExtKeyEvents,
    /// VMware server capabilities ([`crate::messages::vmw_server_caps`]); with the key-event bit keys are
    /// sent as VMWKeyEvent scancodes from now on, with the update-ack bit every update is acknowledged.
    VmwareCaps(u32),
    /// VMware cursor state: whether the cursor is shown, and whether the guest uses an absolute pointer.
    CursorState {
        visible: bool,
        absolute: bool,
    },
    /// VMware key repeat settings (times in microseconds): how the client should repeat held keys.
    KeyRepeat {
        enabled: bool,
        period_us: u32,
        delay_us: u32,
    },
    /// VMware session close: the server announces that it ends the session, with its reason code.
    SessionClose(u32),
}

/// Where the session is in the stream of server messages.
#[derive(Debug)]
enum Incoming {
    /// Between messages.
    Idle,
    /// Inside a FramebufferUpdate: rectangles left (LastRect may end it early), and the one being decoded.
    Update { remaining: u16, rect: Option<RectInProgress> },
    /// Discarding the rest of an over-long ServerCutText.
    Skip { left: u64 },
}

#[derive(Debug)]
struct RectInProgress {
    rect: Rect,
    decoder: Decoder,
}

/// The open session, after ServerInit.
struct Open {
    init: ServerInit,
    pixels: PixelReader,
    /// The screen, for a session that keeps its own ([`Session::new`]).
    own: Option<Framebuffer>,
    streams: Streams,
    scratch: Scratch,
    damage: Damage,
    incoming: Incoming,
    ext_key_events: bool,
    /// Keys go out as VMWKeyEvent scancodes (the server announced the VMware key-event capability).
    vmware_keys: bool,
    /// The capabilities of a VMware server, once it announced them.
    vmware_caps: Option<u32>,
    /// Whether the update being received has had a pixel rectangle.
    update_has_pixels: bool,
    /// The second byte of the update being received: VMware's update id, which a server with the UpdateAck
    /// capability wants acknowledged (other servers send 0, RFB's padding).
    update_id: u8,
}

enum Phase {
    Handshake(Handshake),
    Open(Box<Open>),
}

pub struct Session {
    config: Config,
    /// Whether the session keeps its own framebuffer.
    keeps_pixels: bool,
    phase: Phase,
    input: Vec<u8>,
    output: Vec<u8>,
    events: VecDeque<Event>,
    received: Received,
    /// The error that ended the session, answered to every later call.
    error: Option<ProtocolError>,
}

/// What a session received so far: the counters, and the rectangles per encoding (pseudo-encodings
/// included).
#[derive(Debug, Default)]
struct Received {
    counters: Counters,
    rects: std::collections::BTreeMap<i32, u64>,
}

/// What a session received so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Server messages started.
    pub messages: u64,
    /// FramebufferUpdate messages completed.
    pub updates: u64,
    /// Completed updates that carried pixels (not only pseudo-encodings).
    pub pixel_updates: u64,
    /// Pixels of the pixel rectangles decoded (a rectangle counts once it is complete).
    pub pixels: u64,
}

impl Session {
    pub fn new(config: Config, credentials: Credentials) -> Self {
        let handshake = Handshake::new(credentials, config.shared);
        Session {
            config,
            keeps_pixels: true,
            phase: Phase::Handshake(handshake),
            input: Vec::new(),
            output: Vec::new(),
            events: VecDeque::new(),
            received: Received::default(),
            error: None,
        }
    }

    /// A session that keeps no framebuffer: it draws on the canvas [`Self::process_on`] lends it.
    pub fn drawing_elsewhere(config: Config, credentials: Credentials) -> Self {
        Session { keeps_pixels: false, ..Session::new(config, credentials) }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes received and not processed yet.
    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    /// The buffer received bytes go into; call [`Self::process`] after appending.
    pub fn input(&mut self) -> &mut Vec<u8> {
        &mut self.input
    }

    /// Appends `data` and processes it. After an error, only answers with that error.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        self.failed()?;
        self.input.extend_from_slice(data);
        self.process()
    }

    /// Processes the buffered input as far as it goes: without a framebuffer of its own, up to the pixel
    /// data of a rectangle. An error is final: the connection must be closed, and every later call answers
    /// with the same error.
    pub fn process(&mut self) -> Result<(), ProtocolError> {
        self.process_with(None)
    }

    /// Processes the buffered input as far as it goes, drawing on `canvas` (a session that keeps its own
    /// framebuffer draws there instead), up to the end of the first update that completes. Stops before
    /// pixel data while the canvas does not have the screen's size (after a resize).
    pub fn process_on(&mut self, canvas: &mut Canvas) -> Result<(), ProtocolError> {
        self.process_with(Some(canvas))
    }

    fn process_with(&mut self, mut canvas: Option<&mut Canvas>) -> Result<(), ProtocolError> {
        self.failed()?;
        let input = std::mem::take(&mut self.input);
        let mut r = Reader::new(&input);
        let result = self.run(&mut r, &mut canvas);
        let used = r.consumed();
        self.input = input;
        self.input.drain(..used);
        self.release_idle_buffers();
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    /// Gives the input buffer back to the allocator once it is empty, and the decoders' scratch buffers
    /// once no update is being received: an idle console holds no buffers (a read takes up to 64 KiB, a ZRLE
    /// rectangle its 64 KiB window, a Tight one up to its whole inflated data), and many consoles share
    /// what the allocator keeps.
    fn release_idle_buffers(&mut self) {
        if self.input.is_empty() {
            self.input = Vec::new();
        }
        if let Phase::Open(o) = &mut self.phase {
            if matches!(o.incoming, Incoming::Idle) {
                o.scratch = Scratch::default();
            }
        }
    }

    /// The error that ended the session, if one did.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// `Err` with the error that ended the session, if one did.
    fn failed(&self) -> Result<(), ProtocolError> {
        self.error.clone().map_or(Ok(()), Err)
    }

    fn run(&mut self, r: &mut Reader, canvas: &mut Option<&mut Canvas>) -> Result<(), ProtocolError> {
        loop {
            let step = match &mut self.phase {
                Phase::Handshake(hs) => match hs.advance(r, &mut self.output, &self.config.limits) {
                    Ok(init) => {
                        self.open(init)?;
                        continue;
                    }
                    Err(e) => Err(e),
                },
                Phase::Open(open) => {
                    let mut step = r.clone();
                    let updates = self.received.counters.updates;
                    let result = open.step(
                        &mut step,
                        canvas.as_deref_mut(),
                        &self.config,
                        &mut self.events,
                        &mut self.received,
                        &mut self.output,
                    );
                    if result.is_ok() {
                        *r = step;
                        // On a lent canvas every update ends a call, so that its caller decides whether to
                        // draw the next one.
                        if canvas.is_some() && self.received.counters.updates != updates {
                            return Ok(());
                        }
                    }
                    result
                }
            };
            match step {
                Ok(()) => {}
                Err(ReadError::Incomplete) => return Ok(()),
                Err(ReadError::Invalid(e)) => return Err(e),
            }
        }
    }

    fn open(&mut self, init: ServerInit) -> Result<(), ProtocolError> {
        let format = self.config.pixel_format.unwrap_or(init.pixel_format);
        format.validate()?;
        if let Some(pf) = self.config.pixel_format {
            ClientMessage::SetPixelFormat(pf).encode(&mut self.output);
        }
        ClientMessage::SetEncodings(self.config.encodings.clone()).encode(&mut self.output);
        let own = self.keeps_pixels.then(|| Framebuffer::new(init.width, init.height));
        let mut damage = Damage::default();
        damage.add(Rect::new(0, 0, init.width, init.height));
        self.phase = Phase::Open(Box::new(Open {
            init,
            pixels: PixelReader::new(format),
            own,
            streams: Streams::default(),
            scratch: Scratch::default(),
            damage,
            incoming: Incoming::Idle,
            ext_key_events: false,
            vmware_keys: false,
            vmware_caps: None,
            update_has_pixels: false,
            update_id: 0,
        }));
        self.events.push_back(Event::Connected);
        Ok(())
    }

    fn open_ref(&self) -> Option<&Open> {
        match &self.phase {
            Phase::Open(o) => Some(o),
            Phase::Handshake(_) => None,
        }
    }

    /// Whether the handshake is done.
    pub fn is_open(&self) -> bool {
        self.open_ref().is_some()
    }

    pub fn server_init(&self) -> Option<&ServerInit> {
        self.open_ref().map(|o| &o.init)
    }

    /// The session's own framebuffer, if it keeps one and the handshake is done.
    pub fn framebuffer(&self) -> Option<&Framebuffer> {
        self.open_ref().and_then(|o| o.own.as_ref())
    }

    /// The screen's size (after any resize), once the handshake is done.
    pub fn screen_size(&self) -> Option<(u16, u16)> {
        self.open_ref().map(|o| (o.init.width, o.init.height))
    }

    /// Whether processing waits for a canvas: the pixel data of a rectangle comes next, and the session keeps
    /// no framebuffer (or the canvas it was given has another size than the screen).
    pub fn wants_canvas(&self) -> bool {
        self.open_ref().is_some_and(|o| o.own.is_none() && matches!(o.incoming, Incoming::Update { rect: Some(_), .. }))
    }

    /// Whether the session is between server messages (not inside an update, whatever input is buffered).
    pub fn between_messages(&self) -> bool {
        self.open_ref().is_some_and(|o| matches!(o.incoming, Incoming::Idle))
    }

    /// Rectangles changed since the last call.
    pub fn take_damage(&mut self) -> Vec<Rect> {
        match &mut self.phase {
            Phase::Open(o) => o.damage.take(),
            Phase::Handshake(_) => Vec::new(),
        }
    }

    /// Whether keys go out as QEMU extended key events.
    pub fn uses_ext_key_events(&self) -> bool {
        self.open_ref().is_some_and(|o| o.ext_key_events)
    }

    /// Whether keys go out as VMware key events (VMWKeyEvent scancodes).
    pub fn uses_vmware_keys(&self) -> bool {
        self.open_ref().is_some_and(|o| o.vmware_keys)
    }

    /// Whether a server message is partly received (a timeout then means the stream stalled mid-message).
    pub fn is_mid_message(&self) -> bool {
        !self.input.is_empty() || self.open_ref().is_some_and(|o| !matches!(o.incoming, Incoming::Idle))
    }

    /// What was received so far.
    pub fn counters(&self) -> Counters {
        self.received.counters
    }

    /// Rectangles received so far, per encoding number.
    pub fn rects_by_encoding(&self) -> &std::collections::BTreeMap<i32, u64> {
        &self.received.rects
    }

    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to send to the server.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Whether client messages may be queued: the handshake is done and no error ended the session.
    fn can_send(&self) -> bool {
        self.is_open() && self.error.is_none()
    }

    /// Queues a client message. Before the handshake is done and after an error nothing may be sent: returns
    /// false.
    pub fn send(&mut self, msg: &ClientMessage) -> bool {
        if !self.can_send() {
            return false;
        }
        msg.encode(&mut self.output);
        true
    }

    /// A key press or release: with the key's US scancode when the server takes scancodes (a VMware key
    /// event, or a QEMU extended key event) and the key has one, otherwise a plain KeyEvent. Returns false,
    /// sending nothing, when [`Self::send`] would.
    pub fn key(&mut self, keysym: u32, down: bool) -> bool {
        let vmware = self.uses_vmware_keys();
        let scancode = if vmware || self.uses_ext_key_events() { crate::keys::scancode(keysym) } else { None };
        match scancode {
            Some(sc) if vmware => self.send(&ClientMessage::VmwKeyEvent { down, scancode: sc.vscan() }),
            Some(sc) => self.send(&ClientMessage::QemuExtKeyEvent { down, keysym, keycode: sc.qnum() }),
            None => self.send(&ClientMessage::KeyEvent { down, keysym }),
        }
    }

    /// Scrolls the wheel by `steps` (negative: up) with the pointer at `x`, `y` and `buttons` held: one
    /// VMWPointerEvent2 on a VMware server, otherwise a press and release of button 4 (up) or 5 (down)
    /// per step. Returns false, sending nothing, when [`Self::send`] would.
    pub fn wheel(&mut self, steps: i8, buttons: u8, x: u16, y: u16) -> bool {
        if !self.can_send() {
            return false;
        }
        if self.open_ref().is_some_and(|o| o.vmware_caps.is_some()) {
            return self.send(&ClientMessage::VmwPointerEvent2 {
                absolute: true,
                x: x.into(),
                y: y.into(),
                buttons: buttons.into(),
                wheel_y: steps,
                wheel_x: 0,
            });
        }
        let button = if steps < 0 { 0x08 } else { 0x10 };
        for _ in 0..steps.unsigned_abs() {
            self.send(&ClientMessage::PointerEvent { buttons: buttons | button, x, y });
            self.send(&ClientMessage::PointerEvent { buttons, x, y });
        }
        true
    }

    /// A FramebufferUpdateRequest for the whole framebuffer; false, sending nothing, when [`Self::send`]
    /// would.
    pub fn request_update(&mut self, incremental: bool) -> bool {
        let Some((width, height)) = self.screen_size() else {
            return false;
        };
        self.send(&ClientMessage::FramebufferUpdateRequest { incremental, rect: Rect::new(0, 0, width, height) })
    }
}

impl Open {
    /// Processes one unit of input: a message or rectangle header, or part of a rectangle's data. On
    /// `Incomplete` the caller discards the reader's position, so a unit is only consumed when it is whole;
    /// a rectangle that decoded part of its data reports that as `Ok` after consuming it.
    fn step(
        &mut self,
        r: &mut Reader,
        canvas: Option<&mut Canvas>,
        config: &Config,
        events: &mut VecDeque<Event>,
        received: &mut Received,
        output: &mut Vec<u8>,
    ) -> Parse<()> {
        match &mut self.incoming {
            Incoming::Idle => {
                self.message_header(r, config, events, output)?;
                received.counters.messages += 1;
                Ok(())
            }
            Incoming::Skip { left } => {
                let n = (*left).min(r.remaining() as u64);
                if n == 0 {
                    return Err(ReadError::Incomplete);
                }
                r.skip(n as usize)?;
                *left -= n;
                if *left == 0 {
                    self.incoming = Incoming::Idle;
                }
                Ok(())
            }
            Incoming::Update { remaining: 0, rect: None } => {
                self.incoming = Incoming::Idle;
                received.counters.updates += 1;
                if std::mem::take(&mut self.update_has_pixels) {
                    received.counters.pixel_updates += 1;
                }
                // As VMware's client does, but with render time 0: the update is drawn once it is decoded
                // (wmks.js reports its drawing time plus 2 ms).
                if self.vmware_caps.is_some_and(|caps| caps & vmw_server_caps::UPDATE_ACK != 0) {
                    ClientMessage::VmwAck { update_id: self.update_id, render_time: 0 }.encode(output);
                }
                events.push_back(Event::Update);
                Ok(())
            }
            Incoming::Update { rect: None, .. } => {
                let encoding = self.rect_header(r, config, events)?;
                *received.rects.entry(encoding).or_default() += 1;
                Ok(())
            }
            Incoming::Update { rect: Some(_), .. } => self.rect_data(r, canvas, &config.limits, &mut received.counters),
        }
    }

    /// Reads a server message (or the header of one whose rest is streamed) and acts on it.
    fn message_header(
        &mut self,
        r: &mut Reader,
        config: &Config,
        events: &mut VecDeque<Event>,
        output: &mut Vec<u8>,
    ) -> Parse<()> {
        let message = ServerMessage::read(r, &config.limits)?;
        let trailing = message.trailing();
        match message {
            ServerMessage::FramebufferUpdate { update_id, rectangles } => {
                self.update_id = update_id;
                self.incoming = Incoming::Update { remaining: rectangles, rect: None };
            }
            ServerMessage::SetColourMapEntries { first, colours } => {
                for (i, [red, green, blue]) in colours.into_iter().enumerate() {
                    self.pixels.set_colour(usize::from(first) + i, red, green, blue);
                }
            }
            ServerMessage::Bell => events.push_back(Event::Bell),
            ServerMessage::ServerCutText(text) => events.push_back(Event::CutText(text)),
            ServerMessage::LongServerCutText { .. } => {}
            ServerMessage::Vmware(message) => self.vmware_message(message, config, events, output),
        }
        if trailing > 0 {
            self.incoming = Incoming::Skip { left: trailing };
        }
        Ok(())
    }

    fn vmware_message(
        &mut self,
        message: VmwServerMessage,
        config: &Config,
        events: &mut VecDeque<Event>,
        output: &mut Vec<u8>,
    ) {
        match message {
            VmwServerMessage::ServerCaps(caps) => {
                self.vmware_caps = Some(caps);
                if caps & vmw_server_caps::KEY_EVENT != 0 && config.scancode_keys {
                    self.vmware_keys = true;
                }
                if caps & vmw_server_caps::CLIENT_CAPS != 0 {
                    ClientMessage::VmwClientCaps(vmw_client_caps::SESSION_CLOSE).encode(output);
                }
                events.push_back(Event::VmwareCaps(caps));
            }
            VmwServerMessage::SessionClose(reason) => events.push_back(Event::SessionClose(reason)),
            // Audio is not played (its samples are skipped), and heartbeats only show that the server is alive.
            VmwServerMessage::Audio { .. } | VmwServerMessage::Heartbeat | VmwServerMessage::Other { .. } => {}
        }
    }

    /// Reads a rectangle header, and for a pseudo-encoding its data, and acts on it; returns the encoding.
    fn rect_header(&mut self, r: &mut Reader, config: &Config, events: &mut VecDeque<Event>) -> Parse<i32> {
        let header = RectHeader::read(r)?;
        let RectHeader { area, encoding } = header;
        if let Some(decoder) = Decoder::new(encoding).filter(|_| header.has_pixel_data()) {
            area.check_inside(self.init.width, self.init.height, crate::encoding::name(encoding))?;
            self.update_has_pixels = true;
            self.set_current(Some(RectInProgress { rect: area, decoder }));
            return Ok(encoding);
        }
        match PseudoRect::read(area, encoding, r, &self.pixels, &config.limits)? {
            PseudoRect::LastRect => {
                self.incoming = Incoming::Update { remaining: 0, rect: None };
                return Ok(encoding);
            }
            PseudoRect::DesktopSize { width, height }
            | PseudoRect::ExtendedDesktopSize { status: 0, width, height } => self.resize(width, height, events),
            PseudoRect::Cursor(shape) => events.push_back(Event::Cursor(shape)),
            PseudoRect::PointerType { absolute } => events.push_back(Event::PointerType { absolute }),
            PseudoRect::QemuExtKeyEvent => {
                if config.scancode_keys && !self.ext_key_events {
                    self.ext_key_events = true;
                    events.push_back(Event::ExtKeyEvents);
                }
            }
            PseudoRect::LedState(leds) => events.push_back(Event::LedState(leds)),
            PseudoRect::CursorState { visible, absolute } => events.push_back(Event::CursorState { visible, absolute }),
            PseudoRect::KeyRepeat { enabled, period_us, delay_us } => {
                events.push_back(Event::KeyRepeat { enabled, period_us, delay_us })
            }
            // An empty pixel rectangle, a refused resize, where the guest moved its cursor and the server's frame
            // counter: nothing for this client to act on.
            PseudoRect::Empty
            | PseudoRect::ExtendedDesktopSize { .. }
            | PseudoRect::CursorPosition { .. }
            | PseudoRect::FrameStamp(_) => {}
        }
        self.rect_done();
        Ok(encoding)
    }

    /// Decodes pixel data of the current rectangle onto the session's own framebuffer or, if it keeps
    /// none, onto `canvas`; without either (or with a canvas of another size) it waits: `Incomplete`.
    fn rect_data(
        &mut self,
        r: &mut Reader,
        canvas: Option<&mut Canvas>,
        limits: &Limits,
        counters: &mut Counters,
    ) -> Parse<()> {
        let Incoming::Update { rect: Some(current), .. } = &mut self.incoming else {
            unreachable!("rect_data runs only with a rectangle in progress");
        };
        let size = (self.init.width, self.init.height);
        let fb = match (&mut self.own, canvas) {
            (Some(own), _) => own.canvas(),
            (None, Some(lent)) if (lent.width(), lent.height()) == size => lent.reborrow(),
            (None, _) => return Err(ReadError::Incomplete),
        };
        let mut ctx = Ctx { pixels: &self.pixels, fb, streams: &mut self.streams, limits, scratch: &mut self.scratch };
        match current.decoder.decode(&current.rect, r.rest(), &mut ctx)? {
            Progress::Done(used) => {
                r.skip(used)?;
                let rect = current.rect;
                counters.pixels += rect.area();
                self.damage.add(rect);
                self.rect_done();
                Ok(())
            }
            Progress::Partial(0) => Err(ReadError::Incomplete),
            Progress::Partial(used) => r.skip(used).map_err(ReadError::from),
        }
    }

    fn set_current(&mut self, current: Option<RectInProgress>) {
        if let Incoming::Update { rect, .. } = &mut self.incoming {
            *rect = current;
        }
    }

    /// One rectangle of the update is finished.
    fn rect_done(&mut self) {
        if let Incoming::Update { remaining, rect } = &mut self.incoming {
            *remaining = remaining.saturating_sub(1);
            *rect = None;
        }
    }

    /// A new framebuffer size, within the limits ([`PseudoRect::read`] checked them). Servers also announce
    /// the unchanged size (TigerVNC answers every full update request with ExtendedDesktopSize): then nothing
    /// happens.
    fn resize(&mut self, w: u16, h: u16, events: &mut VecDeque<Event>) {
        if (w, h) == (self.init.width, self.init.height) {
            return;
        }
        if self.own.is_some() {
            self.own = Some(Framebuffer::new(w, h));
        }
        self.damage.take();
        self.damage.add(Rect::new(0, 0, w, h));
        self.init.width = w;
        self.init.height = h;
        events.push_back(Event::Resized { width: w, height: h });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Put;
    use crate::encoding as enc;
    use crate::messages::server_type;
    use crate::pixel::PixelFormat;

    /// A server's side of a 3.8 security-None handshake with a `w x h` framebuffer.
    fn handshake(w: u16, h: u16) -> Vec<u8> {
        let mut v = b"RFB 003.008\n".to_vec();
        v.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        v.put_u16(w);
        v.put_u16(h);
        PixelFormat::BGRX.encode(&mut v);
        v.put_u32(4);
        v.extend_from_slice(b"test");
        v
    }

    fn rect(v: &mut Vec<u8>, x: u16, y: u16, w: u16, h: u16, encoding: i32) {
        for n in [x, y, w, h] {
            v.put_u16(n);
        }
        v.put_i32(encoding);
    }

    fn update_header(v: &mut Vec<u8>, n: u16) {
        v.extend_from_slice(&[0, 0]);
        v.put_u16(n);
    }

    fn events(s: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| s.next_event()).collect()
    }

    /// A transcript touching every message type and pseudo-encoding the session handles itself.
    fn transcript() -> Vec<u8> {
        let mut v = handshake(8, 4);
        update_header(&mut v, 5);
        rect(&mut v, 0, 0, 8, 4, enc::RAW);
        for i in 0..32u32 {
            v.extend_from_slice(&(i * 0x010101).to_le_bytes());
        }
        rect(&mut v, 4, 2, 2, 2, enc::COPY_RECT);
        v.extend_from_slice(&[0, 0, 0, 0]);
        rect(&mut v, 1, 0, 0, 0, enc::QEMU_POINTER_TYPE_CHANGE);
        rect(&mut v, 0, 0, 0, 0, enc::QEMU_LED_STATE);
        v.push(4);
        rect(&mut v, 0, 0, 0, 0, enc::QEMU_EXT_KEY_EVENT);
        v.push(server_type::BELL);
        v.extend_from_slice(&[server_type::SERVER_CUT_TEXT, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        v.extend_from_slice(&[server_type::SET_COLOUR_MAP_ENTRIES, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0]);
        update_header(&mut v, 0xffff);
        rect(&mut v, 0, 0, 1, 1, enc::RAW);
        v.extend_from_slice(&[9, 9, 9, 0]);
        rect(&mut v, 0, 0, 0, 0, enc::LAST_RECT);
        v
    }

    fn expected_events() -> Vec<Event> {
        vec![
            Event::Connected,
            Event::PointerType { absolute: true },
            Event::LedState(4),
            Event::ExtKeyEvents,
            Event::Update,
            Event::Bell,
            Event::CutText(b"hi".to_vec()),
            Event::Update,
        ]
    }

    fn check_pixels(s: &Session) {
        let fb = s.framebuffer().unwrap();
        assert_eq!(fb.get(0, 0), 0x090909);
        assert_eq!(fb.get(7, 3), 31 * 0x010101);
        assert_eq!(fb.get(4, 2), 0);
        assert_eq!(fb.get(5, 3), 9 * 0x010101);
    }

    #[test]
    fn whole_transcript_at_once() {
        let mut s = Session::new(Config::default(), Credentials::default());
        s.feed(&transcript()).unwrap();
        assert_eq!(events(&mut s), expected_events());
        check_pixels(&s);
        assert_eq!(s.counters(), Counters { messages: 5, updates: 2, pixel_updates: 2, pixels: 8 * 4 + 2 * 2 + 1 });
        let counts: Vec<(i32, u64)> = s.rects_by_encoding().iter().map(|(e, n)| (*e, *n)).collect();
        assert_eq!(
            counts,
            [
                (enc::QEMU_LED_STATE, 1),
                (enc::QEMU_EXT_KEY_EVENT, 1),
                (enc::QEMU_POINTER_TYPE_CHANGE, 1),
                (enc::LAST_RECT, 1),
                (enc::RAW, 2),
                (enc::COPY_RECT, 1)
            ]
        );
        assert!(s.uses_ext_key_events());
        assert!(!s.is_mid_message());
        let out = s.take_output();
        assert!(out.starts_with(b"RFB 003.008\n\x01\x01\x00\x00\x00\x00"), "version, None, shared, SetPixelFormat");
        let mut set_encodings = Vec::new();
        ClientMessage::SetEncodings(Config::default_encodings()).encode(&mut set_encodings);
        assert!(out.ends_with(&set_encodings));
    }

    #[test]
    fn an_idle_session_holds_no_buffers() {
        let buffers = |s: &Session| (s.input.capacity(), s.open_ref().unwrap().scratch.bytes.capacity());
        let mut s = Session::new(Config::default(), Credentials::default());
        let mut v = handshake(8, 4);
        update_header(&mut v, 2);
        let mut z = crate::decode::testutil::Deflater::default();
        // Solid tiles of the cpixels 30 20 10, then 60 50 40.
        for (y, cpixel) in [(0, [0x30, 0x20, 0x10]), (2, [0x60, 0x50, 0x40])] {
            rect(&mut v, 0, y, 8, 2, enc::ZRLE);
            let chunk = z.chunk(&[&[1][..], &cpixel].concat());
            v.put_u32(chunk.len() as u32);
            v.extend_from_slice(&chunk);
        }
        let second = v.len() - (v.len() - handshake(8, 4).len() - 4) / 2;
        // The first rectangle decoded, half of the second's header buffered: the window waits in the
        // scratch buffer for the next rectangle, the input buffer holds the half header.
        s.feed(&v[..second + 6]).unwrap();
        assert!(buffers(&s).0 > 0 && buffers(&s).1 > 0, "{:?}", buffers(&s));
        s.feed(&v[second + 6..]).unwrap();
        assert_eq!(buffers(&s), (0, 0));
        assert_eq!(events(&mut s), [Event::Connected, Event::Update]);
        let fb = s.framebuffer().unwrap();
        assert_eq!((fb.get(7, 1), fb.get(0, 2)), (0x102030, 0x405060));
    }

    #[test]
    fn transcript_trickled_byte_by_byte() {
        let mut s = Session::new(Config::default(), Credentials::default());
        for b in transcript() {
            s.feed(&[b]).unwrap();
        }
        assert_eq!(events(&mut s), expected_events());
        check_pixels(&s);
        assert!(s.input().len() < 64, "the input buffer does not hold what was decoded");
    }

    #[test]
    fn keys_use_scancodes_only_after_the_server_agrees() {
        let mut s = Session::new(Config::default(), Credentials::default());
        assert!(!s.key(0x61, true), "nothing is sent before the handshake");
        s.feed(&handshake(8, 8)).unwrap();
        s.take_output();
        s.key(0xff0d, true);
        assert_eq!(s.take_output(), [4, 1, 0, 0, 0, 0, 0xff, 0x0d]);
        let mut v = Vec::new();
        update_header(&mut v, 1);
        rect(&mut v, 0, 0, 0, 0, enc::QEMU_EXT_KEY_EVENT);
        s.feed(&v).unwrap();
        let config = Config { scancode_keys: false, ..Config::default() };
        let mut plain = Session::new(config, Credentials::default());
        plain.feed(&handshake(8, 8)).unwrap();
        plain.feed(&v).unwrap();
        assert!(!plain.uses_ext_key_events());
        assert!(s.uses_ext_key_events());
    }

    #[test]
    fn desktop_size_resizes_and_damages_everything() {
        let mut s = Session::new(Config::default(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        s.take_damage();
        let mut v = Vec::new();
        update_header(&mut v, 2);
        rect(&mut v, 0, 0, 16, 2, enc::DESKTOP_SIZE);
        rect(&mut v, 0, 0, 32, 2, enc::EXTENDED_DESKTOP_SIZE);
        v.extend_from_slice(&[1, 0, 0, 0]);
        v.extend_from_slice(&[0; 16]);
        s.feed(&v).unwrap();
        assert_eq!((s.counters().updates, s.counters().pixel_updates), (1, 0), "a resize alone carries no pixels");
        assert_eq!(s.framebuffer().unwrap().bounds(), Rect::new(0, 0, 32, 2));
        assert_eq!(s.take_damage(), [Rect::new(0, 0, 32, 2)]);
        assert_eq!(s.server_init().unwrap().width, 32);
        let e = events(&mut s);
        assert!(
            e.contains(&Event::Resized { width: 16, height: 2 })
                && e.contains(&Event::Resized { width: 32, height: 2 })
        );
    }

    #[test]
    fn the_same_size_again_keeps_the_screen() {
        let mut s = Session::new(Config::default(), Credentials::default());
        s.feed(&handshake(2, 1)).unwrap();
        let mut v = Vec::new();
        update_header(&mut v, 2);
        rect(&mut v, 0, 0, 2, 1, enc::RAW);
        v.extend_from_slice(&[1, 2, 3, 0, 4, 5, 6, 0]);
        rect(&mut v, 0, 0, 2, 1, enc::EXTENDED_DESKTOP_SIZE);
        v.extend_from_slice(&[1, 0, 0, 0]);
        v.extend_from_slice(&[0; 16]);
        s.feed(&v).unwrap();
        assert_eq!(s.framebuffer().unwrap().pixels(), [0x030201, 0x060504]);
        assert!(!events(&mut s).iter().any(|e| matches!(e, Event::Resized { .. })));
    }

    #[test]
    fn long_cut_text_is_skipped_without_buffering() {
        let mut s = Session::new(Config::default(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        s.feed(&[server_type::SERVER_CUT_TEXT, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]).unwrap();
        for _ in 0..64 {
            s.feed(&[b'x'; 4096]).unwrap();
            assert!(s.input().is_empty());
        }
        assert!(s.is_mid_message());
    }

    #[test]
    fn hostile_messages_are_errors() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![77], "unknown server message type 77"),
            (
                {
                    let mut v = Vec::new();
                    update_header(&mut v, 1);
                    rect(&mut v, 4, 4, 8, 8, enc::RAW);
                    v
                },
                "Raw rectangle at 4,4 size 8x8 lies outside the 8x8 framebuffer",
            ),
            (
                {
                    let mut v = Vec::new();
                    update_header(&mut v, 1);
                    rect(&mut v, 0, 0, 1, 1, 12345);
                    v
                },
                "the server used encoding 12345",
            ),
            (
                {
                    let mut v = Vec::new();
                    update_header(&mut v, 1);
                    rect(&mut v, 0, 0, 60000, 60000, enc::DESKTOP_SIZE);
                    v
                },
                "framebuffer size 60000x60000 exceeds the limit",
            ),
        ];
        for (bytes, message) in cases {
            let mut s = Session::new(Config::default(), Credentials::default());
            s.feed(&handshake(8, 8)).unwrap();
            let e = s.feed(&bytes).unwrap_err();
            assert!(e.to_string().contains(message), "{e} should contain {message}");
        }
    }

    #[test]
    fn the_first_error_is_final() {
        let mut s = Session::new(Config::default(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        s.take_output();
        events(&mut s);
        let mut bad = vec![server_type::BELL, 77];
        update_header(&mut bad, 1);
        let first = s.feed(&bad).unwrap_err();
        assert_eq!(first.to_string(), "unknown server message type 77");
        assert_eq!(s.error(), Some(&first));
        assert_eq!(events(&mut s), [Event::Bell], "what came before the error was processed");
        let mut valid = vec![server_type::BELL];
        update_header(&mut valid, 1);
        rect(&mut valid, 0, 0, 1, 1, enc::RAW);
        valid.extend_from_slice(&[1, 2, 3, 0]);
        assert_eq!(s.feed(&valid), Err(first.clone()), "valid bytes after the error");
        s.input().extend_from_slice(&valid);
        assert_eq!(s.process(), Err(first.clone()));
        assert!(events(&mut s).is_empty(), "no new work after the error");
        assert_eq!(s.framebuffer().unwrap().get(0, 0), 0);
        assert!(!s.key(0x61, true));
        assert!(!s.send(&ClientMessage::PointerEvent { buttons: 0, x: 1, y: 1 }));
        assert!(!s.wheel(2, 0, 1, 1));
        assert!(!s.request_update(true));
        assert!(!s.has_output(), "nothing is queued after the error");
    }

    #[test]
    fn no_acknowledgement_after_an_error() {
        let mut s = Session::new(Config::webmks(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        s.feed(&[127, 0, 0, 8, 0, 0, 0, 0x22]).unwrap();
        s.take_output();
        let first = s.feed(&[127, 9, 0, 3]).unwrap_err();
        for b in vmware_update(9) {
            assert_eq!(s.feed(&[b]), Err(first.clone()));
        }
        assert!(s.take_output().is_empty(), "a valid update after the error is not acknowledged");
        assert_eq!(s.framebuffer().unwrap().get(7, 7), 0);
    }

    #[test]
    fn keeps_the_server_format_when_asked() {
        let config = Config { pixel_format: None, ..Config::default() };
        let mut s = Session::new(config, Credentials::default());
        let mut v = b"RFB 003.008\n".to_vec();
        v.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        v.put_u16(2);
        v.put_u16(1);
        let pf = PixelFormat { big_endian: true, red_shift: 0, blue_shift: 16, ..PixelFormat::BGRX };
        pf.encode(&mut v);
        v.put_u32(0);
        update_header(&mut v, 1);
        rect(&mut v, 0, 0, 2, 1, enc::RAW);
        v.extend_from_slice(&[0, 3, 2, 1, 0, 6, 5, 4]);
        s.feed(&v).unwrap();
        assert_eq!(s.framebuffer().unwrap().pixels(), [0x010203, 0x040506]);
        let out = s.take_output();
        assert_eq!(out[14], crate::messages::client_type::SET_ENCODINGS, "SetEncodings follows ClientInit directly");
    }

    /// A VMware server's side: ServerCaps, an unknown VMware message, a heartbeat, audio with samples, then
    /// an update with every VMware pseudo-encoding and a TightPNG fill, then SessionClose.
    fn vmware_transcript() -> Vec<u8> {
        let mut v = handshake(4, 2);
        v.extend_from_slice(&[127, server_type::VMW_SERVER_CAPS, 0, 8, 0, 2, 0, 0x0a]);
        v.extend_from_slice(&[127, 200, 0, 7, 1, 2, 3]);
        v.extend_from_slice(&[127, server_type::VMW_HEARTBEAT, 0, 6, 0, 5]);
        v.extend_from_slice(&[127, server_type::VMW_AUDIO, 0, 36, 0, 0, 0, 3]);
        v.extend_from_slice(&[0; 28]);
        v.extend_from_slice(&[7, 7, 7]);
        update_header(&mut v, 7);
        rect(&mut v, 1, 1, 1, 1, enc::VMW_DEFINE_CURSOR);
        v.extend_from_slice(&[1, 0, 0, 0, 0xff, 0xff]);
        rect(&mut v, 0, 0, 0, 0, enc::VMW_CURSOR_STATE);
        v.extend_from_slice(&[0, 3]);
        rect(&mut v, 2, 1, 0, 0, enc::VMW_CURSOR_POSITION);
        rect(&mut v, 0, 0, 0, 0, enc::VMW_TYPEMATIC_INFO);
        v.extend_from_slice(&[0, 1, 0, 0, 0x82, 0x35, 0, 7, 0xa1, 0x20]);
        rect(&mut v, 0, 0, 0, 0, enc::VMW_LED_STATE);
        v.extend_from_slice(&[0, 0, 0, 2]);
        rect(&mut v, 0, 0, 0, 0, enc::VMW_FRAME_STAMP);
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        rect(&mut v, 0, 0, 4, 2, enc::TIGHT_PNG);
        v.extend_from_slice(&[0x80, 0x12, 0x34, 0x56]);
        v.extend_from_slice(&[127, server_type::VMW_SESSION_CLOSE, 0, 8, 0, 0, 0, 23]);
        v
    }

    fn vmware_events() -> Vec<Event> {
        vec![
            Event::Connected,
            Event::VmwareCaps(0x2000a),
            Event::Cursor(CursorShape {
                hotspot_x: 1,
                hotspot_y: 1,
                width: 1,
                height: 1,
                pixels: vec![0xff0000],
                mask: vec![0x80],
            }),
            Event::CursorState { visible: true, absolute: true },
            Event::KeyRepeat { enabled: true, period_us: 33333, delay_us: 500000 },
            Event::LedState(2),
            Event::Update,
            Event::SessionClose(23),
        ]
    }

    #[test]
    fn vmware_dialect() {
        let mut whole = Session::new(Config::webmks(), Credentials::default());
        whole.feed(&vmware_transcript()).unwrap();
        assert_eq!(events(&mut whole), vmware_events());
        assert_eq!(whole.framebuffer().unwrap().get(3, 1), 0x123456);
        assert_eq!(whole.counters().messages, 6);
        let mut out = whole.take_output();
        // No SetPixelFormat: SetEncodings first, then ClientCaps (SessionClose) for the server's ClientCaps bit.
        assert_eq!(&out[..15], b"RFB 003.008\n\x01\x01\x02");
        let caps = out.split_off(out.len() - 8);
        assert_eq!(caps, [127, 3, 0, 8, 0, 0, 0x80, 0]);
        let mut trickled = Session::new(Config::webmks(), Credentials::default());
        for b in vmware_transcript() {
            trickled.feed(&[b]).unwrap();
        }
        assert_eq!(events(&mut trickled), vmware_events());
    }

    #[test]
    fn vmware_keys_and_wheel() {
        let mut s = Session::new(Config::webmks(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        s.take_output();
        s.key(u32::from(b'Z'), true);
        s.wheel(-2, 0, 3, 4);
        assert_eq!(
            s.take_output(),
            [4, 1, 0, 0, 0, 0, 0, b'Z', 5, 8, 0, 3, 0, 4, 5, 0, 0, 3, 0, 4, 5, 8, 0, 3, 0, 4, 5, 0, 0, 3, 0, 4]
        );
        s.feed(&[127, 0, 0, 8, 0, 0, 0, 2]).unwrap();
        assert!(s.uses_vmware_keys());
        s.key(u32::from(b'Z'), true);
        s.key(0xff51, false);
        s.wheel(1, 1, 3, 4);
        let mut expected = vec![127, 0, 0, 8, 0, 0x2c, 1, 0, 127, 0, 0, 8, 1, 0x4b, 0, 0];
        expected.extend_from_slice(&[127, 2, 0, 19, 1, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1, 1, 0]);
        assert_eq!(s.take_output(), expected);
        let config = Config { scancode_keys: false, ..Config::webmks() };
        let mut plain = Session::new(config, Credentials::default());
        plain.feed(&handshake(8, 8)).unwrap();
        plain.feed(&[127, 0, 0, 8, 0, 0, 0, 2]).unwrap();
        assert!(!plain.uses_vmware_keys());
    }

    /// An update with id `id` and one TightPNG fill of the 8x8 screen.
    fn vmware_update(id: u8) -> Vec<u8> {
        let mut v = vec![server_type::FRAMEBUFFER_UPDATE, id, 0, 1];
        rect(&mut v, 0, 0, 8, 8, enc::TIGHT_PNG);
        v.extend_from_slice(&[0x80, 1, 2, 3]);
        v
    }

    #[test]
    fn updates_are_acknowledged_only_when_the_server_asks() {
        let mut s = Session::new(Config::webmks(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        s.feed(&[127, 0, 0, 8, 0, 0, 0, 0x02]).unwrap();
        s.take_output();
        s.feed(&vmware_update(9)).unwrap();
        assert!(s.take_output().is_empty(), "without UpdateAck the caller's requests pace the updates");
        let mut s = Session::new(Config::webmks(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        s.feed(&[127, 0, 0, 8, 0, 0, 0, 0x22]).unwrap();
        s.take_output();
        let mut v = vmware_update(9);
        v.extend_from_slice(&vmware_update(0xff));
        for b in v {
            s.feed(&[b]).unwrap();
        }
        assert_eq!(s.take_output(), [127, 4, 0, 8, 9, 0, 0, 0, 127, 4, 0, 8, 0xff, 0, 0, 0]);
        assert_eq!(s.framebuffer().unwrap().get(7, 7), 0x010203);
        let mut plain = Session::new(Config::default(), Credentials::default());
        plain.feed(&handshake(8, 8)).unwrap();
        plain.take_output();
        plain.feed(&vmware_update(5)).unwrap();
        assert!(plain.take_output().is_empty(), "an RFB server's padding byte is not an update id");
    }

    #[test]
    fn vmware_message_shorter_than_its_header_is_an_error() {
        let mut s = Session::new(Config::webmks(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        let e = s.feed(&[127, 9, 0, 3]).unwrap_err();
        assert_eq!(e.to_string(), "VMware server message: 9 of length 3");
        let mut s = Session::new(Config::webmks(), Credentials::default());
        s.feed(&handshake(8, 8)).unwrap();
        let e = s.feed(&[127, 0, 0, 6, 0, 0]).unwrap_err();
        assert_eq!(e.to_string(), "VMware server message: 0 too short");
    }
}
