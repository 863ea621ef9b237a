//! FramebufferUpdate messages as the simulated ESXi sends them: pixels as TightPNG when the client
//! advertised it (Raw B,G,R,X otherwise), and the VMware pseudo-encodings (cursor, cursor state, LED state,
//! key repeat) and DesktopSize the client asked for.
//!
//! The header's second byte, RFB's padding, is VMware's update id: [`next_update_id`] numbers the updates
//! from 1 and never writes 0. VMware's client acknowledges an update by its id to a server with the
//! UpdateAck capability; to any other server it sends the id back as the next FramebufferUpdateRequest's
//! incremental flag (wmks.js 2.1 `_sendAck`), so a 0 there would make it ask for the whole screen again
//! after every update.

use nativevnc::codec::Put;
use nativevnc::encoding as enc;
use nativevnc::framebuffer::{Framebuffer, Rect};

use crate::tightpng;

/// What the client's SetEncodings allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientEncodings {
    pub tight_png: bool,
    pub desktop_size: bool,
    pub vmw_cursor: bool,
    pub vmw_cursor_state: bool,
    pub vmw_led_state: bool,
    pub vmw_typematic: bool,
    pub vmw_server_caps: bool,
    /// The client takes pushed updates, paced by its acknowledgements.
    pub vmw_server_push2: bool,
}

impl ClientEncodings {
    pub fn from_list(list: &[i32]) -> Self {
        let has = |e| list.contains(&e);
        ClientEncodings {
            tight_png: has(enc::TIGHT_PNG),
            desktop_size: has(enc::DESKTOP_SIZE),
            vmw_cursor: has(enc::VMW_DEFINE_CURSOR),
            vmw_cursor_state: has(enc::VMW_CURSOR_STATE),
            vmw_led_state: has(enc::VMW_LED_STATE),
            vmw_typematic: has(enc::VMW_TYPEMATIC_INFO),
            vmw_server_caps: has(enc::VMW_SERVER_CAPS),
            vmw_server_push2: has(enc::VMW_SERVER_PUSH2),
        }
    }
}

/// VMWCursorState flags: visible and absolute.
pub const CURSOR_VISIBLE_ABSOLUTE: u16 = 0x3;
/// VMWTypematicInfo: key repeat on, period 33.333 ms, delay 500 ms (wmks.js's defaults), in microseconds.
const TYPEMATIC: (u16, u32, u32) = (1, 33_333, 500_000);
/// The cursor the simulator defines: an 8x8 arrow, hotspot at its tip.
const CURSOR_SIZE: u16 = 8;

/// Collects the rectangles of one FramebufferUpdate.
#[derive(Debug, Default)]
pub struct UpdateBuilder {
    rects: u16,
    body: Vec<u8>,
}

impl UpdateBuilder {
    fn header(&mut self, r: Rect, encoding: i32) {
        for v in [r.x, r.y, r.w, r.h] {
            self.body.put_u16(v);
        }
        self.body.put_i32(encoding);
        self.rects += 1;
    }

    /// The pixels of `r` from `fb`: TightPNG pieces or one Raw rectangle.
    pub fn pixels(&mut self, fb: &Framebuffer, r: Rect, tight_png: bool) {
        if r.is_empty() {
            return;
        }
        if tight_png {
            for tile in tightpng::tiles(r) {
                tightpng::encode_tile(fb, tile, &mut self.body);
                self.rects += 1;
            }
        } else {
            self.header(r, enc::RAW);
            self.body.reserve(r.area() as usize * 4);
            for y in r.y..r.y + r.h {
                for p in fb.row(r.x, y, r.w).chunks_exact(3) {
                    self.body.extend_from_slice(&[p[0], p[1], p[2], 0]);
                }
            }
        }
    }

    pub fn desktop_size(&mut self, w: u16, h: u16) {
        self.header(Rect::new(0, 0, w, h), enc::DESKTOP_SIZE);
    }

    /// VMWDefineCursor, type 1 (alpha): a white arrow with a black outline, R,G,B,A per pixel.
    pub fn vmw_cursor(&mut self) {
        self.header(Rect::new(0, 0, CURSOR_SIZE, CURSOR_SIZE), enc::VMW_DEFINE_CURSOR);
        self.body.extend_from_slice(&[1, 0]);
        for y in 0..CURSOR_SIZE {
            for x in 0..CURSOR_SIZE {
                let px: [u8; 4] = if x > y {
                    [0, 0, 0, 0]
                } else if x == 0 || x == y || y == CURSOR_SIZE - 1 {
                    [0, 0, 0, 255]
                } else {
                    [255, 255, 255, 255]
                };
                self.body.extend_from_slice(&px);
            }
        }
    }

    pub fn vmw_cursor_state(&mut self, flags: u16) {
        self.header(Rect::default(), enc::VMW_CURSOR_STATE);
        self.body.put_u16(flags);
    }

    /// VMWLEDState: bit 0 Scroll Lock, bit 1 Num Lock, bit 2 Caps Lock (QEMU's LED bits are the same).
    pub fn vmw_led_state(&mut self, leds: u32) {
        self.header(Rect::default(), enc::VMW_LED_STATE);
        self.body.put_u32(leds);
    }

    pub fn vmw_typematic(&mut self) {
        self.header(Rect::default(), enc::VMW_TYPEMATIC_INFO);
        self.body.put_u16(TYPEMATIC.0);
        self.body.put_u32(TYPEMATIC.1);
        self.body.put_u32(TYPEMATIC.2);
    }

    pub fn is_empty(&self) -> bool {
        self.rects == 0
    }

    /// The whole message: type 0, the update id, the rectangle count, the rectangles.
    pub fn finish(self, update_id: u8) -> Vec<u8> {
        let mut msg = Vec::with_capacity(4 + self.body.len());
        msg.extend_from_slice(&[0, update_id]);
        msg.put_u16(self.rects);
        msg.extend_from_slice(&self.body);
        msg
    }
}

/// The id of the update after the one with id `last`: 1 to 255, then 1 again (0 is the id before the first).
pub fn next_update_id(last: u8) -> u8 {
    last % 255 + 1
}

/// The part of `r` inside a `w` x `h` framebuffer.
pub fn clip(r: Rect, w: u16, h: u16) -> Rect {
    let x = r.x.min(w);
    let y = r.y.min(h);
    let right = (u32::from(r.x) + u32::from(r.w)).min(u32::from(w)) as u16;
    let bottom = (u32::from(r.y) + u32::from(r.h)).min(u32::from(h)) as u16;
    Rect::new(x, y, right - x, bottom - y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nativevnc::config::Config;
    use nativevnc::handshake::Credentials;
    use nativevnc::pixel::PixelFormat;
    use nativevnc::session::Session;

    /// A client Session after the server's half of a 3.8 None handshake (BGRX, `w` x `h`).
    fn client(w: u16, h: u16) -> Session {
        let mut v = b"RFB 003.008\n".to_vec();
        v.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        v.put_u16(w);
        v.put_u16(h);
        PixelFormat::BGRX.encode(&mut v);
        v.put_u32(3);
        v.extend_from_slice(b"sut");
        let mut s = Session::new(Config::default(), Credentials::default());
        s.feed(&v).unwrap();
        s
    }

    /// A framebuffer with noise in the left half, a flat colour on the right and a gradient at the bottom.
    fn picture(w: u16, h: u16) -> Framebuffer {
        let mut fb = Framebuffer::new(w, h);
        let mut seed = 0x1234_5678u32;
        let mut canvas = fb.canvas();
        for y in 0..h {
            for x in 0..w {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let px = match (x < w / 2, y < h * 3 / 4) {
                    (true, true) => seed >> 8 & 0xff_ffff,
                    (false, true) => 0x00c0_ffee,
                    _ => (u32::from(x) * 0x10101) & 0xff_ffff,
                };
                canvas.fill(&Rect::new(x, y, 1, 1), px);
            }
        }
        fb
    }

    fn decode(fb: &Framebuffer, tight_png: bool, rects: &[Rect]) -> Session {
        let mut s = client(fb.width(), fb.height());
        let mut b = UpdateBuilder::default();
        for r in rects {
            b.pixels(fb, *r, tight_png);
        }
        s.feed(&b.finish(1)).unwrap();
        assert_eq!(s.counters().updates, 1);
        s
    }

    #[test]
    fn tight_png_and_raw_are_lossless() {
        let fb = picture(2100, 600);
        for tight_png in [true, false] {
            let s = decode(&fb, tight_png, &[fb.bounds()]);
            assert!(s.framebuffer().unwrap().pixels() == fb.pixels(), "tight_png={tight_png}");
            let counts = s.rects_by_encoding();
            let used = if tight_png { enc::TIGHT_PNG } else { enc::RAW };
            assert_eq!(counts.keys().copied().collect::<Vec<_>>(), [used]);
            if tight_png {
                assert!(counts[&used] >= 4, "wider than 2048 and taller than one band: {counts:?}");
            }
        }
    }

    #[test]
    fn flat_areas_are_fills() {
        let fb = picture(64, 64);
        let flat = Rect::new(40, 0, 24, 40);
        let mut b = UpdateBuilder::default();
        b.pixels(&fb, flat, true);
        let msg = b.finish(1);
        assert_eq!(msg.len(), 4 + 12 + 4, "a fill is a control byte and R,G,B");
        assert_eq!(&msg[16..], [0x80, 0xc0, 0xff, 0xee]);
        let s = decode(&fb, true, &[flat, Rect::new(0, 0, 10, 10)]);
        let got = s.framebuffer().unwrap();
        assert_eq!(got.get(50, 10), 0xc0ffee);
        assert_eq!(got.get(3, 7), fb.get(3, 7));
    }

    #[test]
    fn pseudo_rectangles() {
        let mut b = UpdateBuilder::default();
        b.vmw_cursor();
        b.vmw_cursor_state(CURSOR_VISIBLE_ABSOLUTE);
        b.vmw_led_state(4);
        b.vmw_typematic();
        b.desktop_size(800, 600);
        let msg = b.finish(0x2a);
        assert_eq!(&msg[..4], [0, 0x2a, 0, 5]);
        let mut expected = vec![0, 0, 0, 0, 0, 8, 0, 8];
        expected.put_i32(enc::VMW_DEFINE_CURSOR);
        expected.extend_from_slice(&[1, 0]);
        assert_eq!(&msg[4..4 + 14], expected);
        let cursor_end = 4 + 14 + 8 * 8 * 4;
        assert_eq!(&msg[cursor_end + 8..cursor_end + 14], [0x57, 0x4d, 0x56, 0x65, 0, 3]);
        assert_eq!(msg.len(), cursor_end + 14 + 16 + 22 + 12);
    }

    #[test]
    fn update_ids_are_never_zero() {
        let ids: Vec<u8> =
            std::iter::successors(Some(next_update_id(0)), |&id| Some(next_update_id(id))).take(256).collect();
        assert_eq!(&ids[..3], [1, 2, 3]);
        assert_eq!(&ids[253..], [254, 255, 1]);
        assert!(!ids.contains(&0));
    }

    #[test]
    fn server_push_is_what_wmks_asks_for() {
        // wmks.js 2.1.4 `_sendClientEncodingsMsg`, without the options that add OffscreenCopyRect and H264MP4.
        let wmks = [
            1, -260, -223, 0x574d5664, 0x574d5665, 0x574d5666, 0x574d5667, 0x574d5668, 0x574d567b, 0x574d567a, -23,
            0x574d567c, 0x574d567f,
        ];
        let e = ClientEncodings::from_list(&wmks);
        assert!(e.vmw_server_push2 && e.vmw_server_caps && e.tight_png);
        assert!(!ClientEncodings::from_list(&Config::webmks_encodings()).vmw_server_push2);
    }

    #[test]
    fn clipping() {
        assert_eq!(clip(Rect::new(10, 10, 100, 5), 50, 12), Rect::new(10, 10, 40, 2));
        assert!(clip(Rect::new(60, 0, 10, 10), 50, 50).is_empty());
    }
}
