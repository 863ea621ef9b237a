//! The I/O edge: a connection task in the runtime, and the blocking [`Client`] facade.
//!
//! The task owns the transport and the [`Session`](crate::session::Session). It reads whenever the server
//! sends and processes the messages, up to the pixel data of an update: those wait in the socket until the
//! caller lends its image ([`Client::draw`]), and the task draws them straight into it, each update whole,
//! so a caller never sees half an update and a console keeps one screen, its own. Input events (keys,
//! pointer, update requests) go the other way through a queue that outlives connections: events queued
//! while no connection is open are sent once the next one is.
//!
//! Every blocking call has a timeout; nothing here blocks the caller longer than it asked for.
//!
//! One concern per file, in the order data flows:
//!
//! * `options`: where to connect and how ([`Target`], [`ConnectOptions`]).
//! * `facade`: the blocking [`Client`]. [`Client::connect`] spawns a connection task and waits for its
//!   handshake; the other calls read the shared state or queue input in it.
//! * `connection`: the connection task. It acquires a webmks ticket if needed, connects, runs the
//!   handshake, then reads and decodes until stopped or broken, and writes queued input.
//! * `lend`: lending the caller's image to the task for one draw, and getting it back.
//! * `publish`: the task's hand-over of the session's events and counters into the shared state.
//! * `retry`: [`Client::connect_until`], connecting with retries until a deadline: the one retry loop of
//!   the command-line program and of `consoles::NativeVNC`.
//! * `shared`: the state between the two sides, behind one mutex: whether an update waits to be drawn
//!   and the lent image, counters, the input queue and the log ([`LogLine`]).
//!
//! Pixels only flow from the socket through the task into the image the facade lends it; input only flows
//! from the facade through `shared` into the connection. Neither side calls the other.

mod connection;
mod facade;
mod lend;
mod options;
mod publish;
mod retry;
mod shared;

use std::time::Duration;

pub use facade::{Client, PixelSink, Poll};
pub use lend::Drawn;
pub use options::{ConnectOptions, Target};
pub use retry::{is_retryable, Failure, Retry};
pub use shared::LogLine;

/// A duration for messages, rounded: "3 s", "2.5 s", "20 s".
fn show_seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    let shown = if s >= 10.0 { format!("{s:.0}") } else { format!("{s:.1}") };
    format!("{} s", shown.strip_suffix(".0").unwrap_or(&shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_rounded() {
        assert_eq!(show_seconds(Duration::from_nanos(2_999_994_589)), "3 s");
        assert_eq!(show_seconds(Duration::from_millis(2_500)), "2.5 s");
        assert_eq!(show_seconds(Duration::from_millis(19_700)), "20 s");
        assert_eq!(show_seconds(Duration::from_millis(40)), "0 s");
    }
}
