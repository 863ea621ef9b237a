//! The connection task: acquires a webmks ticket if the target needs one, connects, runs the handshake,
//! then reads and processes the server's messages until stopped or broken, sending queued input. The pixels
//! of an update wait in the socket until the caller lends an image to draw them on ([`super::lend`]). For a webmks target every connection logs in to vSphere for a fresh ticket and logs out once
//! the ticket is used.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::lend::{self, Drawn, Lend};
use super::options::{ConnectOptions, Target};
use super::publish::publish;
use super::shared::{Input, Shared};
use super::show_seconds;
use crate::error::{Error, Result};
use crate::handshake::ServerInit;
use crate::messages::ClientMessage;
use crate::session::Session;
use crate::tls::Verification;
use crate::transport::{self, Reader, Writer};

/// How long a draw goes on to the next update whose bytes are already here.
const DRAW_BUDGET: Duration = Duration::from_millis(20);

/// How much one read takes outside a draw, and how much is read ahead while the pixels of an update wait
/// for an image to be drawn on: a console that waits holds no more. A draw reads in larger pieces
/// ([`transport::READ_SIZE`]).
const READ_AHEAD: usize = 16 * 1024;

/// What the connection task hands its writer.
enum Outgoing {
    /// The bytes of batch number `batch`.
    Bytes {
        bytes: Vec<u8>,
        batch: u64,
    },
    Flushed(std::sync::mpsc::SyncSender<()>),
}

/// The input events of a connection that the server has not yet shown it received, by batch. When the
/// connection ends (broken or stopped) they go back to the front of the queue, so the next connection sends
/// them: nothing the caller queued is lost with a connection. RFB acknowledges no input, so a batch counts
/// as received once the server sent something after the batch was handed to the kernel; until then it may
/// sit unread in the buffers of a server that stopped reading (a half-open connection, a frozen server).
/// A batch written in part goes back whole: its beginning reached a server that is gone. The price is that
/// a server that takes input and then closes the connection without sending anything gets that input again
/// on the next connection.
struct InFlight {
    batches: VecDeque<(u64, Vec<Input>)>,
    next: u64,
    /// Batches below this number are handed to the kernel; the writer task raises it.
    written: Arc<AtomicU64>,
    /// Events the session refused to encode (it was not open), newer than every batch.
    refused: Vec<Input>,
}

impl InFlight {
    fn new() -> Self {
        InFlight { batches: VecDeque::new(), next: 0, written: Arc::new(AtomicU64::new(0)), refused: Vec::new() }
    }

    /// Numbers a batch of encoded bytes and remembers the events they carry.
    fn push(&mut self, inputs: Vec<Input>) -> u64 {
        let batch = self.next;
        self.next += 1;
        if !inputs.is_empty() {
            self.batches.push_back((batch, inputs));
        }
        batch
    }

    /// How many batches were handed to the kernel so far.
    fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// The server sent something after the first `written` batches were handed to the kernel: it has them.
    fn received(&mut self, written: u64) {
        while self.batches.front().is_some_and(|(batch, _)| *batch < written) {
            self.batches.pop_front();
        }
    }

    /// Puts the events the server has not shown it received back at the front of the queue, in order.
    fn requeue(self, shared: &Shared) {
        let unsent: Vec<Input> = self.batches.into_iter().flat_map(|(_, inputs)| inputs).chain(self.refused).collect();
        if unsent.is_empty() {
            return;
        }
        let mut st = shared.lock();
        for input in unsent.into_iter().rev() {
            st.input.push_front(input);
        }
    }
}

/// The connection task: connect, handshake, then read, decode and publish until stopped or broken.
/// `finished` is dropped last, after the socket: [`Client::disconnect`](super::Client::disconnect) waits for that.
pub(super) async fn connection(
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
        st.pending = false;
        st.counters = Default::default();
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
        st.pending = false;
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
        let mut session = Session::drawing_elsewhere(options.config.clone(), options.credentials.clone());
        while !session.is_open() {
            read(&mut reader, &mut session, READ_AHEAD)
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

/// Reads once, at most `max` bytes over TCP, into the session and processes what arrived.
async fn read(reader: &mut Reader, session: &mut Session, max: usize) -> Result<()> {
    reader.read_into(session.input(), max).await?;
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
    let mut in_flight = InFlight::new();
    let written = in_flight.written.clone();
    let mut write_task = tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            let (bytes, batch) = match out {
                Outgoing::Bytes { bytes, batch } => (bytes, batch),
                Outgoing::Flushed(done) => {
                    let _ = done.try_send(());
                    continue;
                }
            };
            match tokio::time::timeout(io_timeout, writer.write_all(bytes)).await {
                Ok(Ok(())) => written.store(batch + 1, Ordering::Release),
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
        if take_input(shared, &mut session, &out_tx, &mut in_flight).is_err() {
            break Err(Error::protocol("the connection's writer stopped"));
        }
        if let Some((lend, drawing)) = lend::take(shared, generation) {
            let mut io = Io { reader: &mut reader, stop: &mut stop, in_flight: &mut in_flight, io_timeout };
            match draw(shared, generation, &mut session, &mut io, lend, drawing).await {
                Ok(Finished::Stopped) => break Ok(()),
                Ok(Finished::Drawn) => continue,
                Err(e) => break Err(e),
            }
        }
        // Pixels waiting for an image stay in the socket until the caller lends one; only a little is read
        // ahead meanwhile, so that the server's bytes still show which input it has received.
        let waits_for_image = session.wants_canvas();
        let room = if waits_for_image { READ_AHEAD.saturating_sub(session.buffered()) } else { READ_AHEAD };
        let may_read = room > 0;
        // Whatever the server has sent may be here already: no time limit on reading ahead.
        let mid_message = session.is_mid_message() && !waits_for_image;
        let written = in_flight.written();
        tokio::select! {
            _ = &mut stop => break Ok(()),
            e = &mut write_task => {
                writer_done = true;
                break Err(e.unwrap_or_else(|_| Error::protocol("the connection's writer failed")));
            }
            _ = shared.wake.notified() => {}
            r = async {
                if mid_message {
                    tokio::time::timeout(io_timeout, read(&mut reader, &mut session, room)).await.unwrap_or_else(|_| {
                        Err(Error::timeout(format!("the server stopped sending in the middle of a message for {} s", io_timeout.as_secs())))
                    })
                } else {
                    read(&mut reader, &mut session, room).await
                }
            }, if may_read => {
                if let Err(e) = r {
                    break Err(e);
                }
                in_flight.received(written);
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
    in_flight.requeue(shared);
    result
}

/// What a draw needs of the connection besides the session: the socket to read the rest of an update
/// from, the stop signal, and the input in flight (which the server's bytes acknowledge).
struct Io<'a> {
    reader: &'a mut Reader,
    stop: &'a mut oneshot::Receiver<()>,
    in_flight: &'a mut InFlight,
    io_timeout: Duration,
}

/// How a draw ended, when it did not fail.
enum Finished {
    Drawn,
    /// The connection was asked to stop meanwhile.
    Stopped,
}

/// Draws on the caller's image: processes what is buffered onto it, reading more while an update is
/// incomplete, until the session is between messages (or, after a resize, needs an image of another size).
/// A caller that wants its image back before the update is complete gets an error, and so does the
/// connection: the rest of the update cannot be drawn anywhere.
async fn draw(
    shared: &Shared,
    generation: u64,
    session: &mut Session,
    io: &mut Io<'_>,
    lend: Lend,
    mut drawing: lend::Drawing<'_>,
) -> Result<Finished> {
    let updates = session.counters().updates;
    // SAFETY: this task took the lend; `canvas` is not used after `drawing` ends it (it is dropped first).
    let mut canvas = unsafe { lend.canvas() };
    let size = Some((canvas.width(), canvas.height()));
    session.take_damage();
    let started = std::time::Instant::now();
    loop {
        let before = (session.buffered(), session.counters().updates);
        let processed = session.process_on(&mut canvas);
        publish(shared, generation, session);
        if let Err(e) = processed {
            let e = Error::from(e);
            failed(shared, generation, &e);
            drawing.finish(Err(e.clone()));
            return Err(e);
        }
        if session.screen_size() != size {
            break;
        }
        if session.between_messages() {
            // The next update, if its bytes are here and the draw has not taken long: a server that sends
            // without end (unasked updates) must not keep the caller waiting.
            let progressed = (session.buffered(), session.counters().updates) != before;
            if session.buffered() == 0 || !progressed || started.elapsed() >= DRAW_BUDGET {
                break;
            }
            continue;
        }
        if drawing.revoked() {
            let e = Error::timeout("the server did not complete a framebuffer update in time");
            failed(shared, generation, &e);
            drawing.finish(Err(e.clone()));
            return Err(e);
        }
        let written = io.in_flight.written();
        tokio::select! {
            _ = &mut *io.stop => {
                drawing.finish(Err(Error::protocol("the connection was closed")));
                return Ok(Finished::Stopped);
            }
            _ = shared.wake.notified() => {}
            r = tokio::time::timeout(io.io_timeout, io.reader.read_into(session.input(), transport::READ_SIZE)) => {
                let r = r.unwrap_or_else(|_| {
                    Err(Error::timeout(format!(
                        "the server stopped sending in the middle of a message for {} s",
                        io.io_timeout.as_secs()
                    )))
                });
                if let Err(e) = r {
                    failed(shared, generation, &e);
                    drawing.finish(Err(e.clone()));
                    return Err(e);
                }
                io.in_flight.received(written);
            }
        }
    }
    drawing.finish(Ok(Drawn { updates: session.counters().updates - updates, rects: session.take_damage() }));
    Ok(Finished::Drawn)
}

/// Records the error that ends the connection before a draw hands it to the caller, so that the caller's
/// next poll already reports it.
fn failed(shared: &Shared, generation: u64, e: &Error) {
    let mut st = shared.lock();
    if st.generation == generation && st.error.is_none() {
        st.error = Some(e.clone());
    }
}

/// Moves queued input into the session and its output to the writer, remembering which events each batch
/// of bytes carries. Fails if the writer is gone.
fn take_input(
    shared: &Shared,
    session: &mut Session,
    out: &mpsc::UnboundedSender<Outgoing>,
    in_flight: &mut InFlight,
) -> Result<(), ()> {
    let mut batch = Vec::new();
    let mut st = shared.lock();
    while let Some(input) = st.input.pop_front() {
        match input {
            Input::Key { keysym, down } => {
                session.key(keysym, down);
                batch.push(input);
            }
            Input::Pointer { buttons, x, y } => {
                session.send(&ClientMessage::PointerEvent { buttons, x, y });
                batch.push(input);
            }
            Input::UpdateRequest { incremental, rect: None } => {
                session.request_update(incremental);
            }
            Input::UpdateRequest { incremental, rect: Some(rect) } => {
                session.send(&ClientMessage::FramebufferUpdateRequest { incremental, rect });
            }
            Input::Flush(done) => {
                send_batch(session, out, in_flight, std::mem::take(&mut batch))?;
                out.send(Outgoing::Flushed(done)).map_err(drop)?;
            }
        }
    }
    drop(st);
    send_batch(session, out, in_flight, batch)
}

/// Hands the session's output, carrying the events `inputs`, to the writer.
fn send_batch(
    session: &mut Session,
    out: &mpsc::UnboundedSender<Outgoing>,
    in_flight: &mut InFlight,
    inputs: Vec<Input>,
) -> Result<(), ()> {
    if !session.has_output() {
        in_flight.refused.extend(inputs);
        return Ok(());
    }
    let batch = in_flight.push(inputs);
    out.send(Outgoing::Bytes { bytes: session.take_output(), batch }).map_err(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(st: &super::super::shared::State) -> Vec<u32> {
        st.input
            .iter()
            .map(|i| match i {
                Input::Key { keysym, .. } => *keysym,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn key(keysym: u32) -> Input {
        Input::Key { keysym, down: true }
    }

    #[test]
    fn batches_the_server_has_not_answered_go_back_to_the_front_of_the_queue_in_order() {
        let shared = Shared::new();
        shared.lock().input.push_back(key(9));
        let mut in_flight = InFlight::new();
        assert_eq!(in_flight.push(vec![key(1), key(2)]), 0);
        assert_eq!(in_flight.push(vec![]), 1);
        assert_eq!(in_flight.push(vec![key(3)]), 2);
        in_flight.written.store(2, Ordering::Release);
        in_flight.received(in_flight.written());
        assert_eq!(in_flight.push(vec![key(4), key(5)]), 3);
        // Written, but the server has sent nothing since: it may never have read them.
        in_flight.written.store(4, Ordering::Release);
        assert_eq!(in_flight.batches.len(), 2, "only the answered batches are forgotten");
        in_flight.refused.push(key(6));
        in_flight.requeue(&shared);
        assert_eq!(keys(&shared.lock()), [3, 4, 5, 6, 9]);
    }

    #[test]
    fn nothing_goes_back_once_the_server_answered_everything() {
        let shared = Shared::new();
        let mut in_flight = InFlight::new();
        in_flight.push(vec![key(1)]);
        in_flight.push(vec![key(2)]);
        in_flight.written.store(2, Ordering::Release);
        in_flight.received(2);
        in_flight.requeue(&shared);
        assert!(shared.lock().input.is_empty());
    }
}
