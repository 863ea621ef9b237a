//! Publishing: the connection task hands the session's events and counters to the shared state.

use super::shared::Shared;
use crate::session::{Event, Session};

/// Handles the session's events, and publishes its counters and whether it waits for an image to draw on.
pub(super) fn publish(shared: &Shared, generation: u64, session: &mut Session) {
    let mut st = shared.lock();
    if st.generation != generation {
        return;
    }
    while let Some(event) = session.next_event() {
        match event {
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
            Event::Connected | Event::Update | Event::Bell | Event::CutText(_) | Event::Cursor(_) => {}
        }
    }
    let updated = st.counters.updates != session.counters().updates;
    st.counters = session.counters();
    st.rects.clone_from(session.rects_by_encoding());
    let newly_pending = session.wants_canvas() && !st.pending;
    st.pending = session.wants_canvas();
    drop(st);
    if updated || newly_pending {
        shared.changed.notify_all();
    }
}
