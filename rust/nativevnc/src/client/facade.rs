//! The blocking [`Client`] facade: what the C ABI and the command-line program call. It starts a
//! connection task, reads what the task published, lends it the caller's image to draw updates on, and
//! queues input for it; every call returns within the time the caller allows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::connection::connection;
use super::lend::{self, Drawn};
use super::options::ConnectOptions;
use super::shared::{Input, LogLine, Shared};
use super::show_seconds;
use crate::error::{Error, Result};
use crate::framebuffer::{Canvas, Damage, Framebuffer, Rect};
use crate::handshake::ServerInit;
use crate::image::Image;
use crate::runtime::{self, ProcessOwner};
use crate::session::Counters;

/// Queued input events beyond this many are refused, so a dead server cannot make the queue grow.
const MAX_QUEUED_INPUT: usize = 65536;

/// What [`Client::poll`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poll {
    /// FramebufferUpdates completed since the previous poll.
    pub updates: u64,
    /// Server messages started since the previous poll (any message shows the server is alive).
    pub messages: u64,
    /// The pixels of an update wait to be drawn ([`Client::draw`]).
    pub pending: bool,
}

/// How many times [`Client::update`] draws again when the screen was resized while it drew.
const MAX_RESIZES_PER_UPDATE: usize = 4;

/// How long [`Client::update`] gives an update whose pixels started to arrive to complete, however short the
/// caller's timeout: cutting it off would end the connection.
const FINISH_GRACE: Duration = Duration::from_secs(2);

/// Receives the pixels of damaged rectangles from [`Client::take_damage`].
pub trait PixelSink {
    /// A buffer of exactly `len` bytes for the pixels of `rect`: `rect.w * rect.h` little-endian `u32`
    /// `0x00RRGGBB` values (bytes B, G, R, 0), row after row.
    fn buffer(&mut self, rect: &Rect, len: usize) -> &mut [u8];
}

/// A VNC client connection, driven from one thread that is not a runtime thread.
pub struct Client {
    /// The process that created it; its connection tasks run in that process's runtime.
    owner: ProcessOwner,
    shared: Arc<Shared>,
    /// Dropping it tells the connection task to close.
    stop: Option<oneshot::Sender<()>>,
    /// Disconnects when the connection task has finished and its socket is closed.
    finished: Option<std::sync::mpsc::Receiver<()>>,
    polled_updates: u64,
    polled_messages: u64,
    polled_pixel_updates: u64,
    /// The client's own screen, for callers that do not lend an image ([`Self::update`]); made on first
    /// use.
    screen: Option<Framebuffer>,
    /// The rectangles of `screen` drawn since [`Self::take_damage`] last took them.
    screen_damage: Damage,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        Client {
            owner: ProcessOwner::current(),
            shared: Arc::new(Shared::new()),
            stop: None,
            finished: None,
            polled_updates: 0,
            polled_messages: 0,
            polled_pixel_updates: 0,
            screen: None,
            screen_damage: Damage::default(),
        }
    }

    /// Whether this process created the client: a client created before `fork()` belongs to the parent,
    /// and every call but this, [`Self::is_connected`] and [`Self::disconnect`] fails in the child.
    pub fn in_this_process(&self) -> bool {
        self.owner.is_current()
    }

    /// Opens a connection (closing any previous one) and waits for the handshake to finish. Input queued
    /// before, or left unsent by a broken connection, is sent after the handshake.
    pub fn connect(&mut self, options: ConnectOptions) -> Result<ServerInit> {
        self.owner.check()?;
        self.disconnect();
        let generation = {
            let mut st = self.shared.lock();
            st.generation += 1;
            st.connected = false;
            st.pending = false;
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
    /// is kept for the next connection. In a forked child it only lets go of the parent's connection.
    pub fn disconnect(&mut self) {
        if !self.owner.is_current() {
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(finished) = self.finished.take() {
            let _ = finished.recv_timeout(Duration::from_secs(2));
        }
        let mut st = self.shared.lock();
        st.generation += 1;
        st.connected = false;
        st.pending = false;
    }

    pub fn is_connected(&self) -> bool {
        self.owner.is_current() && self.shared.lock().connected
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

    /// What the current connection received so far.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters
    }

    /// Whether keys go out as scancodes (QEMU extended key events or VMware key events).
    pub fn uses_scancodes(&self) -> bool {
        let st = self.shared.lock();
        st.ext_key_events || st.vmware_keys
    }

    /// Updates and messages since the previous poll; the connection's error if it broke.
    pub fn poll(&mut self) -> Result<Poll> {
        self.owner.check()?;
        let st = self.shared.lock();
        let poll = Poll {
            updates: st.counters.updates - self.polled_updates,
            messages: st.counters.messages - self.polled_messages,
            pending: st.pending,
        };
        let error = st.error.clone();
        self.polled_pixel_updates = st.counters.pixel_updates;
        drop(st);
        self.polled_updates += poll.updates;
        self.polled_messages += poll.messages;
        match error {
            Some(e) if poll.updates == 0 => Err(e),
            _ => Ok(poll),
        }
    }

    /// Draws the updates whose pixels arrived onto `canvas`, an image of the screen's size: straight into
    /// it, one update after another, each complete (the connection reads the rest of an update that is not
    /// all there yet, for up to `timeout`). Returns at once if no update waits, and so after the connection
    /// ended ([`Self::poll`] says why). Fails without touching the canvas if it does not have the screen's
    /// size; after any other failure the canvas may hold part of an update, and the connection has ended.
    pub fn draw(&mut self, canvas: &mut Canvas, timeout: Duration) -> Result<Drawn> {
        self.owner.check()?;
        let st = self.shared.lock();
        let generation = st.generation;
        // Nothing to draw (also once the connection has ended: [`Self::poll`] reports how).
        if !st.pending {
            return Ok(Drawn::default());
        }
        let (width, height) = st.server.as_ref().map_or((0, 0), |s| (s.width, s.height));
        if (canvas.width(), canvas.height()) != (width, height) {
            return Err(Error::usage(format!(
                "the screen is {width}x{height}, the image {}x{}: resize the image first",
                canvas.width(),
                canvas.height()
            )));
        }
        drop(st);
        lend::lend(&self.shared, generation, canvas, timeout)
    }

    /// Draws the updates whose pixels arrived onto the client's own screen (made, or made anew, in the
    /// screen's size: black until drawn on), as [`Self::draw`] does, giving an update that started at least
    /// [`FINISH_GRACE`] to complete; returns how many updates completed.
    pub fn update(&mut self, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout.max(FINISH_GRACE);
        let mut updates = 0;
        for _ in 0..MAX_RESIZES_PER_UPDATE {
            let Some((width, height)) = self.server_init().map(|s| (s.width, s.height)) else {
                return Ok(updates);
            };
            let mut screen = match self.screen.take() {
                Some(screen) if (screen.width(), screen.height()) == (width, height) => screen,
                _ => {
                    self.screen_damage.take();
                    self.screen_damage.add(Rect::new(0, 0, width, height));
                    Framebuffer::new(width, height)
                }
            };
            let drawn = self.draw(&mut screen.canvas(), deadline.saturating_duration_since(Instant::now()));
            self.screen = Some(screen);
            let drawn = drawn?;
            updates += drawn.updates;
            for r in drawn.rects {
                self.screen_damage.add(r);
            }
            let resized = self.server_init().is_some_and(|s| (s.width, s.height) != (width, height));
            if !resized {
                break;
            }
        }
        Ok(updates)
    }

    /// Waits up to `timeout` for an update with pixel data (not only pseudo-encodings, which servers send
    /// on their own after SetEncodings) that completed after the connect, the last [`Self::poll`] or the
    /// last successful wait, drawing updates onto the client's own screen meanwhile ([`Self::update`]: an
    /// update that started may take up to [`FINISH_GRACE`] beyond `timeout`); true if there is one. Fails if
    /// the connection breaks meanwhile.
    pub fn wait_update(&mut self, timeout: Duration) -> Result<bool> {
        self.owner.check()?;
        let deadline = Instant::now() + timeout;
        loop {
            self.update(deadline.saturating_duration_since(Instant::now()))?;
            let mut st = self.shared.lock();
            if st.counters.pixel_updates != self.polled_pixel_updates {
                self.polled_pixel_updates = st.counters.pixel_updates;
                return Ok(true);
            }
            if let Some(e) = &st.error {
                return Err(e.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            if !st.pending {
                st = self.shared.changed.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
            }
            drop(st);
        }
    }

    /// Hands the pixels of every rectangle of the client's own screen drawn since the last call to `sink`,
    /// and returns the rectangles.
    pub fn take_damage(&mut self, sink: &mut dyn PixelSink) -> Result<Vec<Rect>> {
        self.owner.check()?;
        let rects = self.screen_damage.take();
        let Some(screen) = self.screen.as_ref() else {
            return Ok(Vec::new());
        };
        for r in &rects {
            let buf = sink.buffer(r, r.area() as usize * 4);
            for (y, dst) in (r.y..r.y + r.h).zip(buf.chunks_exact_mut(usize::from(r.w) * 4)) {
                for (d, px) in dst.chunks_exact_mut(4).zip(screen.row(r.x, y, r.w).chunks_exact(3)) {
                    d.copy_from_slice(&[px[0], px[1], px[2], 0]);
                }
            }
        }
        Ok(rects)
    }

    /// A copy of the client's own screen ([`Self::update`]), if it has one.
    pub fn snapshot(&self) -> Result<Option<Image>> {
        self.owner.check()?;
        Ok(self.screen.as_ref().map(Image::from_framebuffer))
    }

    fn queue(&self, input: Input) -> Result<()> {
        self.owner.check()?;
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
        if !self.owner.is_current() {
            return Vec::new();
        }
        self.shared.lock().log.drain(..).collect()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

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
