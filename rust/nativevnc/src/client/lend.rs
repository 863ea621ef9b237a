//! Lending the caller's image to the connection task for one draw.
//!
//! A client keeps no pixels of its own (one screen per console: the caller's). While the caller is not
//! drawing, the connection task processes the server's messages up to the pixel data of the next
//! rectangle and stops reading there, leaving the rest in the socket ([`State::pending`](super::shared::State)).
//! [`Client::draw`](super::Client::draw) then lends the task its image for the time of the call: the task
//! decodes straight into it until the update (and any other complete one behind it) is whole, and hands it
//! back with what it drew. So the caller never sees half an update, and a frame costs one pass over its
//! pixels.
//!
//! The image is the caller's memory, used by the task's thread while the caller waits. The rules that make
//! that sound are all here: the caller offers the image and then waits until the lend is over; the task
//! takes it at most once and always ends the lend, even when it fails or is dropped ([`Drawing`]).

use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::error::{Error, Result};
use crate::framebuffer::{Canvas, Rect};

/// What one draw did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drawn {
    /// FramebufferUpdates completed during the draw.
    pub updates: u64,
    /// The rectangles drawn.
    pub rects: Vec<Rect>,
}

/// The caller's image, lent to the connection task.
#[derive(Debug)]
pub(super) struct Lend {
    px: *mut u8,
    len: usize,
    width: u16,
    height: u16,
    stride: usize,
}

// SAFETY: a lend is the caller's exclusive borrow of its image, moved to the task's thread while the caller
// waits in `lend` for it to end.
unsafe impl Send for Lend {}

impl Lend {
    /// The canvas to draw on.
    ///
    /// # Safety
    ///
    /// Only the task that took the lend from the shared state calls this, once, and drops the canvas
    /// before it ends the lend ([`Drawing::finish`] or dropping the [`Drawing`]).
    pub(super) unsafe fn canvas<'a>(&self) -> Canvas<'a> {
        // SAFETY: the parts came from `Canvas::as_raw_parts` of the image the caller does not touch until the
        // lend ends (see `lend`).
        unsafe { Canvas::from_raw_parts(self.px, self.len, self.width, self.height, self.stride) }
    }
}

/// Where a lend is.
#[derive(Debug, Default)]
pub(super) enum LendState {
    #[default]
    Idle,
    /// Offered by the caller, not taken yet.
    Offered(Lend),
    /// The task is drawing on it.
    Drawing,
    /// The task is done with it.
    Done(Result<Drawn>),
}

/// The caller's side: lends `canvas` to the connection task of `generation` and waits until the task is
/// done with it. After `timeout` the task is asked to give it back; it does so at its next step, ending its
/// connection if an update was left half drawn (the canvas then holds part of it: the caller must not
/// show it). Never returns while the task may still use the canvas.
pub(super) fn lend(shared: &Shared, generation: u64, canvas: &mut Canvas, timeout: Duration) -> Result<Drawn> {
    let (px, len, width, height, stride) = canvas.as_raw_parts();
    let mut st = shared.lock();
    st.lend = LendState::Offered(Lend { px, len, width, height, stride });
    st.revoke = false;
    drop(st);
    shared.wake.notify_one();
    let deadline = Instant::now() + timeout;
    let mut st = shared.lock();
    loop {
        match std::mem::take(&mut st.lend) {
            LendState::Done(result) => return result,
            LendState::Offered(lend) => {
                if st.generation != generation || !st.connected || Instant::now() >= deadline {
                    // Never taken: nobody else ever saw it.
                    return Err(st.error.clone().unwrap_or_else(|| {
                        Error::timeout("the connection did not take the image to draw on in time")
                    }));
                }
                st.lend = LendState::Offered(lend);
            }
            LendState::Drawing => {
                st.lend = LendState::Drawing;
                if Instant::now() >= deadline && !st.revoke {
                    st.revoke = true;
                    shared.wake.notify_one();
                }
            }
            LendState::Idle => unreachable!("only the caller ends a lend it offered"),
        }
        let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        st = shared.changed.wait_timeout(st, wait).unwrap_or_else(|p| p.into_inner()).0;
    }
}

/// The task's side: the lend offered to the task of `generation`, if any, now being drawn on.
pub(super) fn take(shared: &Shared, generation: u64) -> Option<(Lend, Drawing<'_>)> {
    let mut st = shared.lock();
    if st.generation != generation || !matches!(st.lend, LendState::Offered(_)) {
        return None;
    }
    let LendState::Offered(lend) = std::mem::replace(&mut st.lend, LendState::Drawing) else {
        unreachable!("checked above")
    };
    Some((lend, Drawing { shared, result: None }))
}

/// A lend the task holds. It ends when this is dropped, with the result given to [`Self::finish`] or, if
/// none was (the task failed or was cancelled), with an error.
pub(super) struct Drawing<'a> {
    shared: &'a Shared,
    result: Option<Result<Drawn>>,
}

impl Drawing<'_> {
    /// Whether the caller asked for its image back.
    pub(super) fn revoked(&self) -> bool {
        self.shared.lock().revoke
    }

    /// What the draw did; the lend ends when `self` is dropped (after the canvas).
    pub(super) fn finish(&mut self, result: Result<Drawn>) {
        self.result = Some(result);
    }
}

impl Drop for Drawing<'_> {
    fn drop(&mut self) {
        let result =
            self.result.take().unwrap_or_else(|| Err(Error::protocol("the connection ended while drawing an update")));
        self.shared.lock().lend = LendState::Done(result);
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framebuffer::Framebuffer;

    /// A shared state as a connected task of generation 0 leaves it.
    fn connected() -> Shared {
        let shared = Shared::new();
        shared.lock().connected = true;
        shared
    }

    /// Runs `task` on another thread as the connection task would, while this thread lends a 4x2 screen.
    fn lend_to(shared: &Shared, timeout: Duration, task: impl FnOnce(&Shared) + Send) -> (Result<Drawn>, Framebuffer) {
        let mut fb = Framebuffer::new(4, 2);
        let result = std::thread::scope(|s| {
            s.spawn(|| task(shared));
            lend(shared, 0, &mut fb.canvas(), timeout)
        });
        (result, fb)
    }

    /// Waits until the lend is offered, then takes it.
    fn take_when_offered(shared: &Shared) -> (Lend, Drawing<'_>) {
        loop {
            if let Some(taken) = take(shared, 0) {
                return taken;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_task_draws_on_the_callers_memory_and_hands_back_what_it_did() {
        let shared = connected();
        let (result, fb) = lend_to(&shared, Duration::from_secs(10), |shared| {
            let (lend, mut drawing) = take_when_offered(shared);
            // SAFETY: taken by this task, dropped before `drawing`.
            let mut canvas = unsafe { lend.canvas() };
            canvas.fill(&Rect::new(1, 1, 2, 1), 0x123456);
            drawing.finish(Ok(Drawn { updates: 1, rects: vec![Rect::new(1, 1, 2, 1)] }));
        });
        assert_eq!(result.unwrap(), Drawn { updates: 1, rects: vec![Rect::new(1, 1, 2, 1)] });
        assert_eq!((fb.get(1, 1), fb.get(2, 1), fb.get(3, 1)), (0x123456, 0x123456, 0));
        assert!(matches!(shared.lock().lend, LendState::Idle));
    }

    #[test]
    fn a_task_that_fails_or_goes_away_still_ends_the_lend() {
        let shared = connected();
        let (result, _) = lend_to(&shared, Duration::from_secs(10), |shared| drop(take_when_offered(shared)));
        assert_eq!(result.unwrap_err().message(), "the connection ended while drawing an update");
    }

    #[test]
    fn a_caller_that_waited_long_enough_asks_for_its_image_back() {
        let shared = connected();
        let (result, _) = lend_to(&shared, Duration::from_millis(50), |shared| {
            let (_lend, mut drawing) = take_when_offered(shared);
            let give_up = Instant::now() + Duration::from_secs(10);
            while !drawing.revoked() && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(drawing.revoked(), "the caller asked for its image back");
            drawing.finish(Err(Error::timeout("the server did not complete a framebuffer update in time")));
        });
        assert_eq!(result.unwrap_err().message(), "the server did not complete a framebuffer update in time");
    }

    #[test]
    fn a_lend_nobody_takes_is_taken_back() {
        let shared = connected();
        let (result, _) = lend_to(&shared, Duration::from_millis(20), |_| {});
        assert_eq!(result.unwrap_err().message(), "the connection did not take the image to draw on in time");
        assert!(take(&shared, 0).is_none(), "nothing is left to take");
        let shared = Shared::new();
        let (result, _) = lend_to(&shared, Duration::from_secs(10), |_| {});
        assert!(result.is_err(), "without a connection the lend ends at once");
    }
}
