//! The I/O edge: a connection task in the runtime, and the blocking [`Client`] facade.
//!
//! The task owns the transport and the [`Session`]. It reads whenever the server sends, decodes in the
//! background, and at the end of every FramebufferUpdate copies the damaged rectangles into the
//! *published* framebuffer, so a caller never sees half an update. Input events (keys, pointer, update
//! requests) go the other way through a queue that outlives connections: events queued while no
//! connection is open are sent once the next one is.
//!
//! Every blocking call has a timeout; nothing here blocks the caller longer than it asked for.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::framebuffer::{Damage, Framebuffer, Rect};
use crate::handshake::{Credentials, ServerInit};
use crate::image::Image;
use crate::messages::ClientMessage;
use crate::pixel::pack_bgr;
use crate::runtime;
use crate::session::{Event, Session};
use crate::tls::Verification;
use crate::transport::{self, host_port, Reader, Writer};
use crate::webmks::Webmks;

/// Where the VNC server is.
#[derive(Debug, Clone)]
pub enum Target {
    /// Plain RFB over TCP.
    Tcp { host: String, port: u16 },
    /// RFB over a WebSocket at a `wss://` URL (a webmks ticket URL, which works once).
    WebSocket { url: String, verification: Verification },
    /// A vSphere VM's console: a fresh webmks ticket for every connection.
    Webmks(Box<Webmks>),
}

impl Target {
    /// Where it is, for messages: never a password or a ticket.
    pub fn describe(&self) -> String {
        match self {
            Target::Tcp { host, port } => host_port(host, *port),
            Target::WebSocket { url, .. } => transport::redact(url),
            Target::Webmks(w) => {
                format!("webmks console of the VM with {} via {}", w.vm, host_port(&w.endpoint.host, w.endpoint.port))
            }
        }
    }
}

/// Where to connect and how.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub target: Target,
    pub credentials: Credentials,
    pub config: Config,
    /// Time allowed to connect and finish the handshake (after a webmks ticket was acquired).
    pub connect_timeout: Duration,
    /// Time a partly received message or a write may stall before the connection counts as broken.
    pub io_timeout: Duration,
}

impl ConnectOptions {
    /// A VNC server on TCP, with the default settings.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self::with_target(Target::Tcp { host: host.into(), port }, Config::default())
    }

    /// A VMware webmks console, with the webmks settings ([`Config::webmks`]).
    pub fn webmks(webmks: Webmks) -> Self {
        Self::with_target(Target::Webmks(Box::new(webmks)), Config::webmks())
    }

    pub fn with_target(target: Target, config: Config) -> Self {
        ConnectOptions {
            target,
            credentials: Credentials::default(),
            config,
            connect_timeout: Duration::from_secs(20),
            io_timeout: Duration::from_secs(60),
        }
    }

    /// The longest a connect can take: acquiring a ticket (webmks), then connecting and the handshake.
    pub fn max_connect_time(&self) -> Duration {
        match &self.target {
            Target::Webmks(w) => w.max_ticket_time() + self.connect_timeout,
            _ => self.connect_timeout,
        }
    }
}

/// An input event waiting to be sent.
#[derive(Debug)]
enum Input {
    Key {
        keysym: u32,
        down: bool,
    },
    Pointer {
        buttons: u8,
        x: u16,
        y: u16,
    },
    /// `None` asks for the whole framebuffer.
    UpdateRequest {
        incremental: bool,
        rect: Option<Rect>,
    },
    /// Signalled once everything queued before it has been written to the socket.
    Flush(std::sync::mpsc::SyncSender<()>),
}

impl Input {
    /// Whether it still means something on a new connection (update requests do not: the new
    /// connection starts with a full update; a flush waiter has given up with the old connection).
    fn survives_reconnect(&self) -> bool {
        matches!(self, Input::Key { .. } | Input::Pointer { .. })
    }
}

/// What the connection task hands its writer.
enum Outgoing {
    Bytes(Vec<u8>),
    Flushed(std::sync::mpsc::SyncSender<()>),
}

/// Queued input events beyond this many are refused, so a dead server cannot make the queue grow.
const MAX_QUEUED_INPUT: usize = 65536;
/// Log lines beyond this many are dropped, oldest first.
const MAX_LOG_LINES: usize = 256;

/// A message for the caller's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub warning: bool,
    pub message: String,
}

/// What the caller sees of the connection.
struct State {
    /// Bumped for every connection, so a task that was replaced cannot publish into its successor.
    generation: u64,
    connected: bool,
    error: Option<Error>,
    server: Option<ServerInit>,
    published: Option<Framebuffer>,
    damage: Damage,
    updates: u64,
    /// Updates that carried pixels.
    pixel_updates: u64,
    messages: u64,
    rects: std::collections::BTreeMap<i32, u64>,
    absolute: bool,
    ext_key_events: bool,
    vmware_keys: bool,
    /// The reason code of a VMware SessionClose message, once the server sent one.
    session_close: Option<u32>,
    input: VecDeque<Input>,
    log: VecDeque<LogLine>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever an update is published or the connection ends.
    changed: Condvar,
    /// Wakes the task when input is queued.
    wake: Notify,
}

impl Shared {
    fn new() -> Self {
        Shared {
            state: Mutex::new(State {
                generation: 0,
                connected: false,
                error: None,
                server: None,
                published: None,
                damage: Damage::default(),
                updates: 0,
                pixel_updates: 0,
                messages: 0,
                rects: Default::default(),
                absolute: false,
                ext_key_events: false,
                vmware_keys: false,
                session_close: None,
                input: VecDeque::new(),
                log: VecDeque::new(),
            }),
            changed: Condvar::new(),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn log(&mut self, warning: bool, message: String) {
        if self.log.len() == MAX_LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(LogLine { warning, message });
    }
}

/// What [`Client::poll`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poll {
    /// FramebufferUpdates completed since the previous poll.
    pub updates: u64,
    /// Server messages started since the previous poll (any message shows the server is alive).
    pub messages: u64,
}

/// Receives the pixels of damaged rectangles from [`Client::take_damage`].
pub trait PixelSink {
    /// A buffer of exactly `len` bytes for the pixels of `rect`: `rect.w * rect.h` little-endian `u32`
    /// `0x00RRGGBB` values (bytes B, G, R, 0), row after row.
    fn buffer(&mut self, rect: &Rect, len: usize) -> &mut [u8];
}

/// A VNC client connection, driven from one thread that is not a runtime thread.
pub struct Client {
    pid: u32,
    shared: Arc<Shared>,
    /// Dropping it tells the connection task to close.
    stop: Option<oneshot::Sender<()>>,
    /// Disconnects when the connection task has finished and its socket is closed.
    finished: Option<std::sync::mpsc::Receiver<()>>,
    polled_updates: u64,
    polled_messages: u64,
    polled_pixel_updates: u64,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        Client {
            pid: std::process::id(),
            shared: Arc::new(Shared::new()),
            stop: None,
            finished: None,
            polled_updates: 0,
            polled_messages: 0,
            polled_pixel_updates: 0,
        }
    }

    /// A client created before `fork()` cannot be used in the child: its task runs in the parent.
    fn check_process(&self) -> Result<()> {
        if std::process::id() != self.pid {
            return Err(Error::usage(
                "this VNC connection was opened by the parent process; connect again in the child",
            ));
        }
        Ok(())
    }

    /// Opens a connection (closing any previous one) and waits for the handshake to finish. Input queued
    /// before, or left unsent by a broken connection, is sent after the handshake.
    pub fn connect(&mut self, options: ConnectOptions) -> Result<ServerInit> {
        self.check_process()?;
        self.disconnect();
        let generation = {
            let mut st = self.shared.lock();
            st.generation += 1;
            st.connected = false;
            st.error = None;
            st.input.retain(Input::survives_reconnect);
            st.generation
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (finished_tx, finished_rx) = std::sync::mpsc::sync_channel(1);
        let wait = options.max_connect_time() + Duration::from_secs(1);
        let description = options.target.describe();
        runtime::handle().spawn(connection(self.shared.clone(), generation, options, ready_tx, stop_rx, finished_tx));
        self.stop = Some(stop_tx);
        self.finished = Some(finished_rx);
        let result = match ready_rx.recv_timeout(wait) {
            Ok(result) => result,
            Err(_) => Err(Error::timeout(format!("connecting to {description} did not finish in time"))),
        };
        match &result {
            Ok(_) => {
                self.polled_updates = 0;
                self.polled_messages = 0;
                self.polled_pixel_updates = 0;
            }
            Err(_) => self.disconnect(),
        }
        result
    }

    /// Closes the connection, if any, and waits (a moment at most) until its socket is closed. Queued input
    /// is kept for the next connection.
    pub fn disconnect(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(finished) = self.finished.take() {
            if std::process::id() == self.pid {
                let _ = finished.recv_timeout(Duration::from_secs(2));
            }
        }
        if std::process::id() == self.pid {
            let mut st = self.shared.lock();
            st.generation += 1;
            st.connected = false;
        }
    }

    pub fn is_connected(&self) -> bool {
        self.check_process().is_ok() && self.shared.lock().connected
    }

    /// What ServerInit said (with the current size after any resize).
    pub fn server_init(&self) -> Option<ServerInit> {
        self.shared.lock().server.clone()
    }

    /// Whether the server reported an absolute pointer (QEMU pointer type change).
    pub fn absolute_pointer(&self) -> bool {
        self.shared.lock().absolute
    }

    /// Rectangles received on the current connection, per encoding number (pseudo-encodings included).
    pub fn rects_by_encoding(&self) -> Vec<(i32, u64)> {
        self.shared.lock().rects.iter().map(|(e, n)| (*e, *n)).collect()
    }

    /// Whether keys go out as scancodes (QEMU extended key events or VMware key events).
    pub fn uses_scancodes(&self) -> bool {
        let st = self.shared.lock();
        st.ext_key_events || st.vmware_keys
    }

    /// Updates and messages since the previous poll; the connection's error if it broke.
    pub fn poll(&mut self) -> Result<Poll> {
        self.check_process()?;
        let st = self.shared.lock();
        let poll = Poll { updates: st.updates - self.polled_updates, messages: st.messages - self.polled_messages };
        let error = st.error.clone();
        self.polled_pixel_updates = st.pixel_updates;
        drop(st);
        self.polled_updates += poll.updates;
        self.polled_messages += poll.messages;
        match error {
            Some(e) if poll.updates == 0 => Err(e),
            _ => Ok(poll),
        }
    }

    /// Waits up to `timeout` for an update with pixel data (not only pseudo-encodings, which servers send
    /// on their own after SetEncodings) that arrived after the connect, the last [`Self::poll`] or the last
    /// successful wait; true if there is one. Fails if the connection breaks meanwhile.
    pub fn wait_update(&mut self, timeout: Duration) -> Result<bool> {
        self.check_process()?;
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while st.pixel_updates == self.polled_pixel_updates {
            if let Some(e) = &st.error {
                return Err(e.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            st = self.shared.changed.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        self.polled_pixel_updates = st.pixel_updates;
        Ok(true)
    }

    /// Hands the pixels of every rectangle damaged since the last call to `sink`, and returns the
    /// rectangles. The published framebuffer only changes between complete updates.
    pub fn take_damage(&self, sink: &mut dyn PixelSink) -> Result<Vec<Rect>> {
        self.check_process()?;
        let mut st = self.shared.lock();
        let rects = st.damage.take();
        let Some(fb) = st.published.as_ref() else {
            return Ok(Vec::new());
        };
        for r in &rects {
            let buf = sink.buffer(r, r.area() as usize * 4);
            for (y, dst) in (r.y..r.y + r.h).zip(buf.chunks_exact_mut(usize::from(r.w) * 4)) {
                for (d, px) in dst.chunks_exact_mut(4).zip(fb.row(r.x, y, r.w)) {
                    d.copy_from_slice(&px.to_le_bytes());
                }
            }
        }
        Ok(rects)
    }

    /// Copies every rectangle damaged since the last call into `dst`, a `width x height` image of 3-byte
    /// B,G,R pixels whose rows start `stride` bytes apart (tinycv's layout), and returns the rectangles.
    /// Fails without taking the damage if the screen no longer has that size.
    pub fn take_damage_bgr(&self, dst: &mut [u8], width: u16, height: u16, stride: usize) -> Result<Vec<Rect>> {
        self.check_process()?;
        if stride < usize::from(width) * 3 || dst.len() < stride * usize::from(height) {
            return Err(Error::usage(format!(
                "a buffer of {} bytes with rows of {stride} bytes cannot hold {width}x{height} pixels",
                dst.len()
            )));
        }
        let mut st = self.shared.lock();
        let Some(fb) = st.published.as_ref() else {
            return Ok(Vec::new());
        };
        check_size(fb, width, height)?;
        let rects = st.damage.take();
        let fb = st.published.as_ref().expect("checked above");
        for r in &rects {
            for y in r.y..r.y + r.h {
                let start = usize::from(y) * stride + usize::from(r.x) * 3;
                pack_bgr(fb.row(r.x, y, r.w), &mut dst[start..start + usize::from(r.w) * 3]);
            }
        }
        Ok(rects)
    }

    /// Copies every rectangle damaged since the last call into `image`, which must have the screen's size,
    /// and returns the rectangles.
    pub fn take_damage_into_image(&self, image: &mut Image) -> Result<Vec<Rect>> {
        self.check_process()?;
        let mut st = self.shared.lock();
        let Some(fb) = st.published.as_ref() else {
            return Ok(Vec::new());
        };
        check_size(fb, image.width(), image.height())?;
        let rects = st.damage.take();
        let fb = st.published.as_ref().expect("checked above");
        for r in &rects {
            image.copy_from(fb, r);
        }
        Ok(rects)
    }

    /// Runs `f` on the published framebuffer, if there is one.
    pub fn with_framebuffer<T>(&self, f: impl FnOnce(&Framebuffer) -> T) -> Result<Option<T>> {
        self.check_process()?;
        Ok(self.shared.lock().published.as_ref().map(f))
    }

    fn queue(&self, input: Input) -> Result<()> {
        self.check_process()?;
        let mut st = self.shared.lock();
        // The next connection would drop it anyway; not keeping it means a long outage (a reboot with stall
        // detection off) cannot fill the queue with update requests.
        if !st.connected && matches!(input, Input::UpdateRequest { .. }) {
            return Ok(());
        }
        if st.input.len() >= MAX_QUEUED_INPUT {
            return Err(Error::usage(format!(
                "{MAX_QUEUED_INPUT} input events are waiting for a connection; refusing more"
            )));
        }
        st.input.push_back(input);
        drop(st);
        self.shared.wake.notify_one();
        Ok(())
    }

    pub fn key(&self, keysym: u32, down: bool) -> Result<()> {
        self.queue(Input::Key { keysym, down })
    }

    pub fn pointer(&self, buttons: u8, x: u16, y: u16) -> Result<()> {
        self.queue(Input::Pointer { buttons, x, y })
    }

    /// Asks for an update of `rect`, or of the whole framebuffer.
    pub fn request_update(&self, incremental: bool, rect: Option<Rect>) -> Result<()> {
        self.queue(Input::UpdateRequest { incremental, rect })
    }

    /// Waits until all input queued so far has been written to the server, for at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.queue(Input::Flush(tx))?;
        match rx.recv_timeout(timeout) {
            Ok(()) => Ok(()),
            Err(_) => {
                let st = self.shared.lock();
                Err(st.error.clone().unwrap_or_else(|| {
                    Error::timeout(format!("queued input was not sent within {}", show_seconds(timeout)))
                }))
            }
        }
    }

    /// Log lines the connection produced since the last call.
    pub fn take_log(&self) -> Vec<LogLine> {
        if self.check_process().is_err() {
            return Vec::new();
        }
        self.shared.lock().log.drain(..).collect()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            // In a forked child the task, its runtime and any lock holders live in the parent. Waking the
            // task could touch the parent's runtime state, so the stop signal is forgotten, not sent.
            if let Some(stop) = self.stop.take() {
                std::mem::forget(stop);
            }
            if let Some(finished) = self.finished.take() {
                std::mem::forget(finished);
            }
            return;
        }
        self.disconnect();
    }
}

/// The error for a caller whose image no longer has the screen's size.
fn check_size(fb: &Framebuffer, width: u16, height: u16) -> Result<()> {
    if (fb.width(), fb.height()) != (width, height) {
        return Err(Error::usage(format!(
            "the screen is {}x{}, the image {width}x{height}: resize the image first",
            fb.width(),
            fb.height()
        )));
    }
    Ok(())
}

/// The connection task: connect, handshake, then read, decode and publish until stopped or broken.
/// `finished` is dropped last, after the socket: [`Client::disconnect`] waits for that.
async fn connection(
    shared: Arc<Shared>,
    generation: u64,
    options: ConnectOptions,
    ready: std::sync::mpsc::SyncSender<Result<ServerInit>>,
    stop: oneshot::Receiver<()>,
    finished: std::sync::mpsc::SyncSender<()>,
) {
    let _finished = finished;
    let (reader, writer, session) = match open(&shared, generation, &options).await {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let init = session.server_init().cloned().expect("open returns an open session");
    {
        let mut st = shared.lock();
        if st.generation != generation {
            return;
        }
        st.connected = true;
        st.server = Some(init.clone());
        st.published = Some(Framebuffer::new(init.width, init.height));
        st.damage = Damage::default();
        st.updates = 0;
        st.pixel_updates = 0;
        st.messages = 0;
        st.rects.clear();
        st.absolute = false;
        st.ext_key_events = false;
        st.vmware_keys = false;
        st.session_close = None;
    }
    if ready.send(Ok(init)).is_err() {
        return;
    }
    let result = run(&shared, generation, session, reader, writer, stop, options.io_timeout).await;
    let mut st = shared.lock();
    if st.generation == generation {
        st.connected = false;
        if let Err(e) = result {
            st.error = Some(match st.session_close {
                Some(reason) => e.context(format!("the server ended the session (VMware reason {reason})")),
                None => e,
            });
        }
    }
    drop(st);
    shared.changed.notify_all();
}

/// Logs a line for the caller, unless the connection was replaced meanwhile.
fn log(shared: &Shared, generation: u64, warning: bool, message: String) {
    let mut st = shared.lock();
    if st.generation == generation {
        st.log(warning, message);
    }
}

/// Acquires a webmks ticket if the target needs one, then connects and runs the handshake within the
/// connect timeout.
async fn open(shared: &Shared, generation: u64, options: &ConnectOptions) -> Result<(Reader, Writer, Session)> {
    let description = options.target.describe();
    let mut api = None;
    let websocket = match &options.target {
        Target::Tcp { .. } => None,
        Target::WebSocket { url, verification } => Some((url.clone(), verification.clone(), None)),
        Target::Webmks(webmks) => {
            let (ticket, session) = webmks.ticket(&mut |m| log(shared, generation, true, m)).await?;
            api = Some((webmks, session));
            Some((ticket.wss_url(&webmks.endpoint.host), webmks.websocket_verification(&ticket), Some(webmks)))
        }
    };
    if let Some((_, Verification::Insecure, _)) = &websocket {
        log(shared, generation, true, format!("{description}: TLS certificates are not verified (insecure mode)"));
    }
    let timeout = options.connect_timeout;
    let connect = async {
        let (mut reader, mut writer) = match (&options.target, &websocket) {
            (Target::Tcp { host, port }, _) => transport::tcp(host, *port).await?,
            (_, Some((url, verification, webmks))) => {
                let reroute = match webmks {
                    Some(webmks) => webmks.reroute(url, verification).await?,
                    None => None,
                };
                let address = reroute.map(|r| {
                    log(shared, generation, true, format!("{description}: {}", r.log));
                    r.address
                });
                let max_message = options.config.limits.max_websocket_message;
                transport::websocket(url, address.as_deref(), verification, max_message).await?
            }
            (_, None) => unreachable!("every target but TCP has a WebSocket URL"),
        };
        let mut session = Session::new(options.config.clone(), options.credentials.clone());
        while !session.is_open() {
            read(&mut reader, &mut session)
                .await
                .map_err(|e| e.context(format!("VNC handshake with {description}")))?;
            let out = session.take_output();
            writer.write_all(out).await.map_err(|e| e.context(format!("VNC handshake with {description}")))?;
        }
        Ok((reader, writer, session))
    };
    let result = match tokio::time::timeout(timeout, connect).await {
        Ok(result) => result,
        Err(_) => {
            Err(Error::timeout(format!("connecting to {description} did not finish within {}", show_seconds(timeout))))
        }
    };
    // The ticket is used (or failed): the API session is not needed any more.
    if let Some((webmks, session)) = api {
        webmks.logout(session).await;
    }
    result
}

/// A duration for messages, rounded: "3 s", "2.5 s", "20 s".
fn show_seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    let shown = if s >= 10.0 { format!("{s:.0}") } else { format!("{s:.1}") };
    format!("{} s", shown.strip_suffix(".0").unwrap_or(&shown))
}

/// Reads once into the session and processes what arrived.
async fn read(reader: &mut Reader, session: &mut Session) -> Result<()> {
    reader.read_into(session.input()).await?;
    session.process().map_err(Error::from)
}

async fn run(
    shared: &Shared,
    generation: u64,
    mut session: Session,
    mut reader: Reader,
    mut writer: Writer,
    mut stop: oneshot::Receiver<()>,
    io_timeout: Duration,
) -> Result<()> {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
    let mut write_task = tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            let bytes = match out {
                Outgoing::Bytes(bytes) => bytes,
                Outgoing::Flushed(done) => {
                    let _ = done.try_send(());
                    continue;
                }
            };
            match tokio::time::timeout(io_timeout, writer.write_all(bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return e,
                Err(_) => {
                    return Error::timeout(format!("the server did not accept data for {} s", io_timeout.as_secs()))
                }
            }
        }
        // Asked to stop: say goodbye (a WebSocket close frame), briefly.
        let _ = tokio::time::timeout(Duration::from_secs(1), writer.close()).await;
        Error::protocol("the connection was closed")
    });
    publish(shared, generation, &mut session);
    let mut writer_done = false;
    let result = loop {
        if take_input(shared, &mut session, &out_tx).is_err() {
            break Err(Error::protocol("the connection's writer stopped"));
        }
        let mid_message = session.is_mid_message();
        tokio::select! {
            _ = &mut stop => break Ok(()),
            e = &mut write_task => {
                writer_done = true;
                break Err(e.unwrap_or_else(|_| Error::protocol("the connection's writer failed")));
            }
            _ = shared.wake.notified() => {}
            r = async {
                if mid_message {
                    tokio::time::timeout(io_timeout, read(&mut reader, &mut session)).await.unwrap_or_else(|_| {
                        Err(Error::timeout(format!("the server stopped sending in the middle of a message for {} s", io_timeout.as_secs())))
                    })
                } else {
                    read(&mut reader, &mut session).await
                }
            } => {
                if let Err(e) = r {
                    break Err(e);
                }
                publish(shared, generation, &mut session);
            }
        }
    };
    // The writer owns half of the socket: the socket is closed once the writer task is gone. On a stop it
    // gets a moment to close the connection politely.
    if !writer_done {
        drop(out_tx);
        if result.is_err() || tokio::time::timeout(Duration::from_secs(1), &mut write_task).await.is_err() {
            write_task.abort();
            let _ = write_task.await;
        }
    }
    result
}

/// Moves queued input into the session and its output to the writer. Fails if the writer is gone.
fn take_input(shared: &Shared, session: &mut Session, out: &mpsc::UnboundedSender<Outgoing>) -> Result<(), ()> {
    let mut st = shared.lock();
    while let Some(input) = st.input.pop_front() {
        match input {
            Input::Key { keysym, down } => session.key(keysym, down),
            Input::Pointer { buttons, x, y } => session.send(&ClientMessage::PointerEvent { buttons, x, y }),
            Input::UpdateRequest { incremental, rect: None } => session.request_update(incremental),
            Input::UpdateRequest { incremental, rect: Some(rect) } => {
                session.send(&ClientMessage::FramebufferUpdateRequest { incremental, rect })
            }
            Input::Flush(done) => {
                if session.has_output() {
                    out.send(Outgoing::Bytes(session.take_output())).map_err(drop)?;
                }
                out.send(Outgoing::Flushed(done)).map_err(drop)?;
                true
            }
        };
    }
    drop(st);
    if session.has_output() {
        out.send(Outgoing::Bytes(session.take_output())).map_err(drop)?;
    }
    Ok(())
}

/// Handles the session's events; at the end of each update copies the damage into the published
/// framebuffer.
fn publish(shared: &Shared, generation: u64, session: &mut Session) {
    let mut st = shared.lock();
    if st.generation != generation {
        return;
    }
    let mut updated = false;
    while let Some(event) = session.next_event() {
        match event {
            Event::Update => {
                let damage = session.take_damage();
                let fb = session.framebuffer().expect("updates come after the handshake");
                match st.published.as_mut() {
                    Some(published) if published.bounds() == fb.bounds() => {
                        for r in &damage {
                            for y in r.y..r.y + r.h {
                                published.row_mut(r.x, y, r.w).copy_from_slice(fb.row(r.x, y, r.w));
                            }
                        }
                        for r in damage {
                            st.damage.add(r);
                        }
                    }
                    // The first screen, or a new size: all of it is new, and damage not yet taken belongs to a
                    // screen that is gone.
                    _ => {
                        st.published = Some(fb.clone());
                        st.damage.take();
                        st.damage.add(fb.bounds());
                    }
                }
                st.updates += 1;
                updated = true;
            }
            Event::Resized { width, height } => {
                if let Some(server) = st.server.as_mut() {
                    server.width = width;
                    server.height = height;
                }
                st.log(false, format!("the server resized the screen to {width}x{height}"));
            }
            Event::PointerType { absolute } => {
                st.absolute = absolute;
                st.log(false, format!("pointer type {}", if absolute { "absolute" } else { "relative" }));
            }
            Event::LedState(leds) => st.log(false, format!("led state {leds}")),
            Event::ExtKeyEvents => {
                st.ext_key_events = true;
                st.log(false, "the server accepts scancodes (QEMU extended key events); typing uses them".into());
            }
            Event::VmwareCaps(caps) => {
                st.vmware_keys = session.uses_vmware_keys();
                let keys = if st.vmware_keys { "; typing uses VMware key events (scancodes)" } else { "" };
                st.log(false, format!("VMware server capabilities {caps:#x}{keys}"));
            }
            Event::CursorState { absolute, .. } => {
                if st.absolute != absolute {
                    st.absolute = absolute;
                    st.log(false, format!("pointer type {}", if absolute { "absolute" } else { "relative" }));
                }
            }
            Event::KeyRepeat { enabled, period_us, delay_us } => st.log(
                false,
                format!(
                    "server key repeat {}: delay {delay_us} us, period {period_us} us",
                    if enabled { "on" } else { "off" }
                ),
            ),
            Event::SessionClose(reason) => {
                st.log(true, format!("the server announced the end of the session (reason {reason})"));
                st.session_close = Some(reason);
            }
            Event::Connected | Event::Bell | Event::CutText(_) | Event::Cursor(_) => {}
        }
    }
    st.messages = session.messages_received();
    st.pixel_updates = session.pixel_updates_received();
    st.rects.clone_from(session.rects_by_encoding());
    drop(st);
    if updated {
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn durations_are_shown_rounded() {
        assert_eq!(show_seconds(Duration::from_nanos(2_999_994_589)), "3 s");
        assert_eq!(show_seconds(Duration::from_millis(2_500)), "2.5 s");
        assert_eq!(show_seconds(Duration::from_millis(19_700)), "20 s");
        assert_eq!(show_seconds(Duration::from_millis(40)), "0 s");
    }

    /// `w` x `h` raw pixels of value `px` at 0,0, as one FramebufferUpdate, after a DesktopSize if `resize`.
    fn full_update(w: u16, h: u16, px: u8, resize: bool) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1 + u8::from(resize)];
        let rect = |v: &mut Vec<u8>, encoding: i32| {
            for n in [0, 0, w, h] {
                v.extend_from_slice(&n.to_be_bytes());
            }
            v.extend_from_slice(&encoding.to_be_bytes());
        };
        if resize {
            rect(&mut v, crate::encoding::DESKTOP_SIZE);
        }
        rect(&mut v, crate::encoding::RAW);
        v.extend(std::iter::repeat_n([px, px, px, 0], usize::from(w) * usize::from(h)).flatten());
        v
    }

    #[test]
    fn a_resize_replaces_damage_not_yet_taken() {
        let shared = Shared::new();
        let mut session = Session::new(Config::default(), Credentials::default());
        let mut server = b"RFB 003.008\n".to_vec();
        server.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 32, 0, 16]);
        crate::pixel::PixelFormat::BGRX.encode(&mut server);
        server.extend_from_slice(&[0, 0, 0, 0]);
        server.extend(full_update(32, 16, 1, false));
        session.feed(&server).unwrap();
        publish(&shared, 0, &mut session);
        // The screen shrinks before anyone took the damage of the big one.
        session.feed(&full_update(8, 4, 2, true)).unwrap();
        publish(&shared, 0, &mut session);
        let mut st = shared.lock();
        assert_eq!(st.damage.take(), vec![Rect::new(0, 0, 8, 4)]);
        let published = st.published.as_ref().unwrap();
        assert_eq!((published.width(), published.height(), published.get(7, 3)), (8, 4, 0x020202));
    }

    #[test]
    fn without_a_connection_keys_wait_and_update_requests_do_not() {
        let client = Client::new();
        for _ in 0..MAX_QUEUED_INPUT + 10 {
            client.request_update(true, None).unwrap();
        }
        for i in 0..MAX_QUEUED_INPUT {
            client.key(0x61, i % 2 == 0).unwrap();
        }
        let e = client.pointer(0, 1, 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert_eq!(e.message(), "65536 input events are waiting for a connection; refusing more");
    }
}
