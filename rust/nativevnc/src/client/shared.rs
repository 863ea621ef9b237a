//! The state the blocking facade and the connection task share: counters, whether an update waits for an
//! image to be drawn on and the image lent for that, the queue of input events waiting to be sent, and the
//! log for the caller.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::lend::LendState;
use crate::error::Error;
use crate::framebuffer::Rect;
use crate::handshake::ServerInit;
use crate::session::Counters;

/// An input event waiting to be sent.
#[derive(Debug)]
pub(super) enum Input {
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
    pub(super) fn survives_reconnect(&self) -> bool {
        matches!(self, Input::Key { .. } | Input::Pointer { .. })
    }
}

/// Log lines beyond this many are dropped, oldest first.
const MAX_LOG_LINES: usize = 256;

/// A message for the caller's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub warning: bool,
    pub message: String,
}

/// What the caller sees of the connection.
pub(super) struct State {
    /// Bumped for every connection, so a task that was replaced cannot publish into its successor.
    pub(super) generation: u64,
    pub(super) connected: bool,
    pub(super) error: Option<Error>,
    pub(super) server: Option<ServerInit>,
    /// The pixels of an update wait for an image to be drawn on (the task stopped reading).
    pub(super) pending: bool,
    /// The image the caller lends for drawing, and where that lend is.
    pub(super) lend: LendState,
    /// The caller wants its image back.
    pub(super) revoke: bool,
    /// What the current connection's session received.
    pub(super) counters: Counters,
    pub(super) rects: std::collections::BTreeMap<i32, u64>,
    pub(super) absolute: bool,
    pub(super) ext_key_events: bool,
    pub(super) vmware_keys: bool,
    /// The reason code of a VMware SessionClose message, once the server sent one.
    pub(super) session_close: Option<u32>,
    pub(super) input: VecDeque<Input>,
    pub(super) log: VecDeque<LogLine>,
}

pub(super) struct Shared {
    state: Mutex<State>,
    /// Signalled whenever an update waits to be drawn, a lend ends, or the connection ends.
    pub(super) changed: Condvar,
    /// Wakes the task when input is queued.
    pub(super) wake: Notify,
}

impl Shared {
    pub(super) fn new() -> Self {
        Shared {
            state: Mutex::new(State {
                generation: 0,
                connected: false,
                error: None,
                server: None,
                pending: false,
                lend: LendState::Idle,
                revoke: false,
                counters: Counters::default(),
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

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    pub(super) fn log(&mut self, warning: bool, message: String) {
        if self.log.len() == MAX_LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(LogLine { warning, message });
    }
}
