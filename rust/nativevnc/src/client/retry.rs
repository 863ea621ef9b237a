//! Connecting until a deadline: [`Client::connect_until`], the one retry loop of the command-line program
//! and of `consoles::NativeVNC` (through the C ABI). A server that is not up yet (QEMU starting, a VM
//! booting, a webmks bridge not listening) refuses or does not answer; such failures are tried again after
//! a pause until the deadline, as os-autoinst's `consoles::VNC::login` does. Every other failure (wrong
//! password, protocol error, bad settings) is final at once.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use super::facade::Client;
use super::options::ConnectOptions;
use super::shared::LogLine;
use crate::error::{Error, ErrorKind, Result};
use crate::handshake::ServerInit;

/// The shortest connect timeout an attempt is given when [`Retry::cut_attempts`] cuts it.
const MIN_ATTEMPT: Duration = Duration::from_secs(1);

/// How [`Client::connect_until`] tries again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// No attempt starts after this.
    pub deadline: Instant,
    /// The pause after a failed attempt (os-autoinst's `VNC_CONNECT_SLEEP`), cut to the time left.
    pub pause: Duration,
    /// Whether an attempt's connect timeout is cut to the time left (but is at least 1 s), so that the
    /// deadline bounds the whole; otherwise every attempt has the options' whole connect timeout, as
    /// os-autoinst's per-attempt socket timeout (`VNC_TIMEOUT_LOCAL`) is independent of its connect window.
    pub cut_attempts: bool,
}

impl Retry {
    /// Retrying for `window` from now.
    pub fn within(window: Duration, pause: Duration, cut_attempts: bool) -> Self {
        Retry { deadline: Instant::now() + window, pause, cut_attempts }
    }
}

/// A failed attempt that will be tried again, as [`Client::connect_until`] reports it.
#[derive(Debug)]
pub struct Failure<'a> {
    pub error: &'a Error,
    /// Failed attempts so far, this one included.
    pub failures: u32,
    /// What the connection logged during the attempt (webmks ticket retries, for instance), in order.
    pub log: Vec<LogLine>,
}

/// Whether another attempt may cure the failure: the server refused, could not be reached, or did not
/// finish the handshake in time.
pub fn is_retryable(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout)
}

impl Client {
    /// Connects ([`Self::connect`]), trying again after `retry.pause` while attempts fail with a
    /// [retryable](is_retryable) error and the deadline has not passed. Before every new attempt,
    /// `on_retry` hears of the failure (and may end the loop with [`ControlFlow::Break`], which returns that
    /// failure's error). Returns the last attempt's result; what that attempt logged stays in the client.
    pub fn connect_until(
        &mut self,
        options: &ConnectOptions,
        retry: Retry,
        mut on_retry: impl FnMut(Failure<'_>) -> ControlFlow<()>,
    ) -> Result<ServerInit> {
        let mut failures = 0;
        loop {
            let mut attempt = options.clone();
            if retry.cut_attempts {
                let left = retry.deadline.saturating_duration_since(Instant::now());
                attempt.connect_timeout = attempt.connect_timeout.min(left).max(MIN_ATTEMPT);
            }
            let error = match self.connect(attempt) {
                Ok(init) => return Ok(init),
                Err(e) => e,
            };
            failures += 1;
            if !is_retryable(&error) || Instant::now() >= retry.deadline {
                return Err(error);
            }
            if on_retry(Failure { error: &error, failures, log: self.take_log() }).is_break() {
                return Err(error);
            }
            std::thread::sleep(retry.pause.min(retry.deadline.saturating_duration_since(Instant::now())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    #[test]
    fn refused_connections_are_tried_until_the_deadline() {
        let options = ConnectOptions::new("127.0.0.1", closed_port());
        let mut client = Client::new();
        let mut seen = Vec::new();
        let start = Instant::now();
        let retry = Retry::within(Duration::from_millis(450), Duration::from_millis(100), true);
        let e = client
            .connect_until(&options, retry, |f| {
                seen.push((f.failures, f.error.kind()));
                ControlFlow::Continue(())
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(3), "{took:?}");
        assert!((3..=6).contains(&seen.len()), "{seen:?}");
        assert!(seen.iter().enumerate().all(|(i, &(n, kind))| n == i as u32 + 1 && kind == ErrorKind::Connect));
    }

    #[test]
    fn the_caller_can_end_the_loop_and_no_window_means_one_attempt() {
        let options = ConnectOptions::new("127.0.0.1", closed_port());
        let mut client = Client::new();
        let mut calls = 0;
        let retry = Retry::within(Duration::from_secs(30), Duration::from_millis(10), false);
        let e = client
            .connect_until(&options, retry, |_| {
                calls += 1;
                ControlFlow::Break(())
            })
            .unwrap_err();
        assert_eq!((e.kind(), calls), (ErrorKind::Connect, 1));

        let once = Retry::within(Duration::ZERO, Duration::from_secs(30), false);
        let start = Instant::now();
        client.connect_until(&options, once, |_| unreachable!("no retry without a window")).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn only_refusals_and_timeouts_are_retried() {
        assert!(is_retryable(&Error::timeout("x")) && is_retryable(&Error::new(ErrorKind::Connect, "x")));
        for kind in [ErrorKind::Auth, ErrorKind::Protocol, ErrorKind::Usage, ErrorKind::Setup, ErrorKind::Internal] {
            assert!(!is_retryable(&Error::new(kind, "x")), "{kind:?}");
        }
    }
}
