//! Publishing: the connection task hands the session's events to the shared state and, at the end of
//! every FramebufferUpdate, copies the damaged rectangles into the published framebuffer, so a caller
//! never sees half an update.

use super::shared::Shared;
use crate::session::{Event, Session};

/// Handles the session's events; at the end of each update copies the damage into the published
/// framebuffer.
pub(super) fn publish(shared: &Shared, generation: u64, session: &mut Session) {
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
    st.counters = session.counters();
    st.rects.clone_from(session.rects_by_encoding());
    drop(st);
    if updated {
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::framebuffer::Rect;
    use crate::handshake::Credentials;

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
}
