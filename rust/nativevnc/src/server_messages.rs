//! Server-to-client messages and the rectangles of a FramebufferUpdate, each a type with its parser next to
//! it, as [`crate::messages::ClientMessage`] is for the other direction. The session only dispatches on what
//! these parsers return.
//!
//! Every parser reads from a [`Reader`] over the bytes received so far: running out of them is
//! [`ReadError::Incomplete`] (the caller keeps the bytes and tries again with more, from the same start), a
//! value that can never be valid is [`ReadError::Invalid`]. A [`ServerMessage`] reads only a message's
//! header where the rest is streamed: a FramebufferUpdate's rectangles follow it one by one, each a
//! [`RectHeader`] and then either pixel data (for a decoder) or a [`PseudoRect`]; and the text of an
//! over-long ServerCutText and the samples of VMware audio follow their messages as
//! [`ServerMessage::trailing`] bytes, which the reader skips as they arrive.

use crate::codec::{Parse, Put, ReadError, Reader};
use crate::config::Limits;
use crate::decode::cursor::{self, CursorShape};
use crate::encoding as enc;
use crate::error::ProtocolError;
use crate::framebuffer::Rect;
use crate::messages::server_type;
use crate::pixel::PixelReader;

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// The header of a FramebufferUpdate: `rectangles` rectangles follow (65535 with a LastRect may end
    /// early). The second byte is padding in RFB and the update's id for VMware, which a server with the
    /// UpdateAck capability wants acknowledged.
    FramebufferUpdate {
        update_id: u8,
        rectangles: u16,
    },
    /// Colour-map entries from index `first` on, 16-bit red, green and blue each.
    SetColourMapEntries {
        first: u16,
        colours: Vec<[u16; 3]>,
    },
    Bell,
    /// ServerCutText (Latin-1) of at most [`Limits::max_cut_text`] bytes.
    ServerCutText(Vec<u8>),
    /// The header of a ServerCutText longer than [`Limits::max_cut_text`], or in the extended clipboard
    /// format (a negative length), which this client does not negotiate: its `len` bytes follow and are
    /// skipped.
    LongServerCutText {
        len: u64,
    },
    /// A VMware message (type 127).
    Vmware(VmwServerMessage),
}

/// A VMware server message: `u8 127, u8 id, u16 length` (counting the 4-byte header), then the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmwServerMessage {
    /// The server's capabilities ([`crate::messages::vmw_server_caps`]).
    ServerCaps(u32),
    /// The server ends the session, with its reason code.
    SessionClose(u32),
    /// Audio: the header's length covers the audio header; `samples` bytes of samples follow it and are
    /// skipped.
    Audio { samples: u32 },
    /// The server is alive.
    Heartbeat,
    /// A message this client does not use, skipped by its length: one it does not know, or a reconnect
    /// token (a credential, which is not kept).
    Other { id: u8, len: u16 },
}

impl ServerMessage {
    /// Parses one message, or the header of one whose rest is streamed (see the module documentation).
    pub fn read(r: &mut Reader, limits: &Limits) -> Parse<ServerMessage> {
        Ok(match r.u8()? {
            server_type::FRAMEBUFFER_UPDATE => {
                ServerMessage::FramebufferUpdate { update_id: r.u8()?, rectangles: r.u16()? }
            }
            server_type::SET_COLOUR_MAP_ENTRIES => {
                r.skip(1)?;
                let first = r.u16()?;
                let n = usize::from(r.u16()?);
                let entries = r.take(n * 6)?;
                let colours = entries
                    .chunks_exact(6)
                    .map(|e| {
                        let c = |k: usize| u16::from_be_bytes([e[k], e[k + 1]]);
                        [c(0), c(2), c(4)]
                    })
                    .collect();
                ServerMessage::SetColourMapEntries { first, colours }
            }
            server_type::BELL => ServerMessage::Bell,
            server_type::SERVER_CUT_TEXT => {
                r.skip(3)?;
                let len = u64::from((r.u32()? as i32).unsigned_abs());
                if len > limits.max_cut_text as u64 {
                    ServerMessage::LongServerCutText { len }
                } else {
                    ServerMessage::ServerCutText(r.take(len as usize)?.to_vec())
                }
            }
            server_type::VMWARE => ServerMessage::Vmware(VmwServerMessage::read(r)?),
            other => return Err(ProtocolError::UnknownMessage(other).into()),
        })
    }

    /// The bytes that follow the message on the wire without being part of it, to be skipped: the text of a
    /// [`ServerMessage::LongServerCutText`], the samples of a [`VmwServerMessage::Audio`].
    pub fn trailing(&self) -> u64 {
        match self {
            ServerMessage::LongServerCutText { len } => *len,
            ServerMessage::Vmware(VmwServerMessage::Audio { samples }) => u64::from(*samples),
            _ => 0,
        }
    }

    /// Writes the message as a server sends it; [`Self::trailing`] bytes are not part of it. Bodies this
    /// client skips are written as zeros, and VMware messages without the parts it ignores.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ServerMessage::FramebufferUpdate { update_id, rectangles } => {
                out.extend_from_slice(&[server_type::FRAMEBUFFER_UPDATE, *update_id]);
                out.put_u16(*rectangles);
            }
            ServerMessage::SetColourMapEntries { first, colours } => {
                out.extend_from_slice(&[server_type::SET_COLOUR_MAP_ENTRIES, 0]);
                out.put_u16(*first);
                out.put_u16(colours.len() as u16);
                for c in colours {
                    c.iter().for_each(|&v| out.put_u16(v));
                }
            }
            ServerMessage::Bell => out.put_u8(server_type::BELL),
            ServerMessage::ServerCutText(text) => {
                out.extend_from_slice(&[server_type::SERVER_CUT_TEXT, 0, 0, 0]);
                out.put_u32(text.len() as u32);
                out.extend_from_slice(text);
            }
            ServerMessage::LongServerCutText { len } => {
                out.extend_from_slice(&[server_type::SERVER_CUT_TEXT, 0, 0, 0]);
                out.put_u32(*len as u32);
            }
            ServerMessage::Vmware(message) => message.encode(out),
        }
    }
}

impl VmwServerMessage {
    /// Parses a VMware message after its type byte. The whole body must be there; the parts this client
    /// does not use are skipped.
    fn read(r: &mut Reader) -> Parse<VmwServerMessage> {
        let id = r.u8()?;
        let len = r.u16()?;
        let Some(body_len) = usize::from(len).checked_sub(4) else {
            return Err(ProtocolError::malformed("VMware server message", format!("{id} of length {len}")).into());
        };
        let mut body = Reader::new(r.take(body_len)?);
        let short = || ReadError::Invalid(ProtocolError::malformed("VMware server message", format!("{id} too short")));
        let mut u32_field = || body.u32().map_err(|_| short());
        Ok(match id {
            server_type::VMW_SERVER_CAPS => VmwServerMessage::ServerCaps(u32_field()?),
            server_type::VMW_SESSION_CLOSE => VmwServerMessage::SessionClose(u32_field()?),
            server_type::VMW_AUDIO => VmwServerMessage::Audio { samples: u32_field()? },
            server_type::VMW_HEARTBEAT => VmwServerMessage::Heartbeat,
            _ => VmwServerMessage::Other { id, len },
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (id, body) = match self {
            VmwServerMessage::ServerCaps(v) => (server_type::VMW_SERVER_CAPS, v.to_be_bytes().to_vec()),
            VmwServerMessage::SessionClose(v) => (server_type::VMW_SESSION_CLOSE, v.to_be_bytes().to_vec()),
            VmwServerMessage::Audio { samples } => (server_type::VMW_AUDIO, samples.to_be_bytes().to_vec()),
            VmwServerMessage::Heartbeat => (server_type::VMW_HEARTBEAT, Vec::new()),
            VmwServerMessage::Other { id, len } => (*id, vec![0; usize::from(*len).saturating_sub(4)]),
        };
        out.extend_from_slice(&[server_type::VMWARE, id]);
        out.put_u16(body.len() as u16 + 4);
        out.extend_from_slice(&body);
    }
}

/// The header of a rectangle in a FramebufferUpdate: where it is and how its data is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RectHeader {
    pub area: Rect,
    pub encoding: i32,
}

impl RectHeader {
    pub fn read(r: &mut Reader) -> Parse<RectHeader> {
        let area = Rect::new(r.u16()?, r.u16()?, r.u16()?, r.u16()?);
        Ok(RectHeader { area, encoding: r.i32()? })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        for n in [self.area.x, self.area.y, self.area.w, self.area.h] {
            out.put_u16(n);
        }
        out.put_i32(self.encoding);
    }

    /// Whether the rectangle is a pixel encoding's that a decoder must read. Some servers (addrlink) send
    /// empty rectangles without payload; os-autoinst skips them, and so does this client, except for Tight
    /// and TightPNG, whose control byte is always sent, and Raw, whose empty rectangle has no data anyway.
    pub fn has_pixel_data(&self) -> bool {
        let skipped = self.area.is_empty() && self.encoding > 0 && self.encoding != enc::TIGHT;
        crate::decode::is_pixel_encoding(self.encoding) && !skipped
    }
}

/// A rectangle of a pseudo-encoding: something other than pixels, in a FramebufferUpdate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PseudoRect {
    /// An empty rectangle of a pixel encoding, sent without data (see [`RectHeader::has_pixel_data`]).
    Empty,
    /// The update ends here, whatever its rectangle count said.
    LastRect,
    /// DesktopSize: the framebuffer's new size, within [`Limits::max_framebuffer_pixels`].
    DesktopSize { width: u16, height: u16 },
    /// ExtendedDesktopSize with status 0: the framebuffer's size (new or not), within
    /// [`Limits::max_framebuffer_pixels`]; its screens are skipped. With another status (the error of a
    /// resize the client asked for), nothing changes.
    ExtendedDesktopSize { status: u16, width: u16, height: u16 },
    /// A new cursor shape (the Cursor pseudo-encoding, or VMware's define-cursor).
    Cursor(CursorShape),
    /// QEMU pointer type change: whether the pointer is absolute (tablet) or relative.
    PointerType { absolute: bool },
    /// The server accepts QEMU extended key events.
    QemuExtKeyEvent,
    /// The keyboard LEDs (QEMU's LED state, or VMware's): bit 0 Scroll Lock, bit 1 Num Lock, bit 2 Caps
    /// Lock.
    LedState(u8),
    /// VMware cursor state: whether the cursor is shown, and whether the guest uses an absolute pointer.
    CursorState { visible: bool, absolute: bool },
    /// VMware cursor position: where the guest moved its cursor.
    CursorPosition { x: u16, y: u16 },
    /// VMware frame stamp: the server's frame counter.
    FrameStamp(u64),
    /// VMware key repeat settings (times in microseconds).
    KeyRepeat { enabled: bool, period_us: u32, delay_us: u32 },
}

impl PseudoRect {
    /// Parses the data of a rectangle at `area` in `encoding`, which has no pixel data for a decoder
    /// ([`RectHeader::has_pixel_data`] is false). `pixels` reads cursor pixels; `limits` bounds cursors and
    /// framebuffer sizes. An encoding this client does not know is an error.
    pub fn read(area: Rect, encoding: i32, r: &mut Reader, pixels: &PixelReader, limits: &Limits) -> Parse<PseudoRect> {
        let Rect { x, y, w: width, h: height } = area;
        Ok(match encoding {
            _ if crate::decode::is_pixel_encoding(encoding) => PseudoRect::Empty,
            enc::LAST_RECT => PseudoRect::LastRect,
            enc::DESKTOP_SIZE => {
                limits.check_framebuffer(width, height)?;
                PseudoRect::DesktopSize { width, height }
            }
            enc::EXTENDED_DESKTOP_SIZE => {
                let screens = usize::from(r.u8()?);
                r.skip(3 + 16 * screens)?;
                // y is the status of a resize the client asked for; 0 means the size is the one given.
                if y == 0 {
                    limits.check_framebuffer(width, height)?;
                }
                PseudoRect::ExtendedDesktopSize { status: y, width, height }
            }
            enc::CURSOR => PseudoRect::Cursor(whole(r, cursor::read(&area, r.rest(), pixels, limits)?)?),
            enc::VMW_DEFINE_CURSOR => {
                PseudoRect::Cursor(whole(r, cursor::read_vmware(&area, r.rest(), pixels, limits)?)?)
            }
            enc::QEMU_POINTER_TYPE_CHANGE => PseudoRect::PointerType { absolute: x != 0 },
            enc::QEMU_EXT_KEY_EVENT => PseudoRect::QemuExtKeyEvent,
            enc::QEMU_LED_STATE => PseudoRect::LedState(r.u8()?),
            enc::VMW_CURSOR_STATE => {
                let flags = r.u16()?;
                PseudoRect::CursorState { visible: flags & 1 != 0, absolute: flags & 2 != 0 }
            }
            enc::VMW_CURSOR_POSITION => PseudoRect::CursorPosition { x, y },
            enc::VMW_FRAME_STAMP => PseudoRect::FrameStamp(u64::from_be_bytes(r.array()?)),
            enc::VMW_TYPEMATIC_INFO => {
                let enabled = r.u16()? != 0;
                PseudoRect::KeyRepeat { enabled, period_us: r.u32()?, delay_us: r.u32()? }
            }
            // The same bits as QEMU's LED state.
            enc::VMW_LED_STATE => PseudoRect::LedState((r.u32()? & 0x7) as u8),
            other => return Err(ProtocolError::UnsupportedEncoding(other).into()),
        })
    }
}

/// A cursor read from the rest of `r` (`None`: not all of it is there yet), with the bytes it used consumed.
fn whole(r: &mut Reader, read: Option<(CursorShape, usize)>) -> Parse<CursorShape> {
    let (shape, used) = read.ok_or(ReadError::Incomplete)?;
    r.skip(used)?;
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::PixelFormat;

    fn message(bytes: &[u8]) -> Parse<ServerMessage> {
        let mut r = Reader::new(bytes);
        let m = ServerMessage::read(&mut r, &Limits { max_cut_text: 8, ..Limits::default() })?;
        assert_eq!(r.remaining(), 0, "{m:?} leaves bytes");
        Ok(m)
    }

    /// `bytes` read whole give `expected`, cut anywhere they are incomplete, and `expected` encodes to
    /// something that reads back the same.
    fn check(bytes: &[u8], expected: ServerMessage) {
        assert_eq!(message(bytes), Ok(expected.clone()), "{bytes:?}");
        for cut in 0..bytes.len() {
            assert_eq!(message(&bytes[..cut]), Err(ReadError::Incomplete), "{bytes:?} cut at {cut}");
        }
        let mut encoded = Vec::new();
        expected.encode(&mut encoded);
        assert_eq!(message(&encoded), Ok(expected));
    }

    #[test]
    fn rfb_messages() {
        check(&[0, 9, 0xff, 0xff], ServerMessage::FramebufferUpdate { update_id: 9, rectangles: 0xffff });
        check(
            &[1, 0, 0, 3, 0, 1, 0xff, 0xff, 0, 0x80, 0, 1],
            ServerMessage::SetColourMapEntries { first: 3, colours: vec![[0xffff, 0x80, 1]] },
        );
        check(&[2], ServerMessage::Bell);
        check(&[3, 0, 0, 0, 0, 0, 0, 2, b'h', b'i'], ServerMessage::ServerCutText(b"hi".to_vec()));
        assert_eq!(message(&[3, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']).unwrap().trailing(), 0);
    }

    #[test]
    fn long_cut_text_is_a_header_and_trailing_bytes() {
        let long = ServerMessage::LongServerCutText { len: 9 };
        check(&[3, 0, 0, 0, 0, 0, 0, 9], long.clone());
        assert_eq!(long.trailing(), 9);
        // The extended clipboard format: a negative length, its size.
        check(&[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xf0], ServerMessage::LongServerCutText { len: 16 });
        check(&[3, 0, 0, 0, 0x80, 0, 0, 0], ServerMessage::LongServerCutText { len: 1 << 31 });
    }

    #[test]
    fn vmware_messages() {
        check(&[127, 0, 0, 8, 0, 2, 0, 0x0a], ServerMessage::Vmware(VmwServerMessage::ServerCaps(0x2000a)));
        check(&[127, 7, 0, 9, 0, 0, 0, 23, 1], ServerMessage::Vmware(VmwServerMessage::SessionClose(23)));
        check(&[127, 4, 0, 6, 0, 5], ServerMessage::Vmware(VmwServerMessage::Heartbeat));
        check(&[127, 200, 0, 7, 1, 2, 3], ServerMessage::Vmware(VmwServerMessage::Other { id: 200, len: 7 }));
        check(&[127, 6, 0, 4], ServerMessage::Vmware(VmwServerMessage::Other { id: 6, len: 4 }));
        let mut audio = vec![127, 3, 0, 36, 0, 0, 0, 3];
        audio.extend_from_slice(&[0; 28]);
        let expected = ServerMessage::Vmware(VmwServerMessage::Audio { samples: 3 });
        check(&audio, expected.clone());
        assert_eq!(expected.trailing(), 3);
    }

    #[test]
    fn hostile_messages_are_errors() {
        let error = |bytes: &[u8]| match message(bytes) {
            Err(ReadError::Invalid(e)) => e.to_string(),
            other => panic!("{bytes:?}: {other:?}"),
        };
        assert_eq!(error(&[77]), "unknown server message type 77");
        assert_eq!(error(&[127, 9, 0, 3]), "VMware server message: 9 of length 3");
        assert_eq!(error(&[127, 0, 0, 6, 0, 0]), "VMware server message: 0 too short");
        assert_eq!(error(&[127, 3, 0, 4]), "VMware server message: 3 too short");
    }

    #[test]
    fn rect_headers() {
        let header = RectHeader { area: Rect::new(1, 2, 3, 4), encoding: enc::TIGHT_PNG };
        let mut v = Vec::new();
        header.encode(&mut v);
        assert_eq!(v, [0, 1, 0, 2, 0, 3, 0, 4, 0xff, 0xff, 0xfe, 0xfc]);
        assert_eq!(RectHeader::read(&mut Reader::new(&v)), Ok(header));
        assert_eq!(RectHeader::read(&mut Reader::new(&v[..11])), Err(ReadError::Incomplete));
        let with = |w, h, encoding| RectHeader { area: Rect::new(0, 0, w, h), encoding }.has_pixel_data();
        assert!(with(1, 1, enc::ZRLE) && with(0, 0, enc::RAW) && with(0, 0, enc::TIGHT) && with(0, 0, enc::TIGHT_PNG));
        assert!(!with(0, 0, enc::COPY_RECT) && !with(0, 5, enc::ZRLE) && !with(1, 1, enc::CURSOR));
    }

    /// The pseudo-rectangle at `area` in `encoding` from `data`: all of it is used, and cut anywhere it is
    /// incomplete.
    fn pseudo(area: Rect, encoding: i32, data: &[u8]) -> Parse<PseudoRect> {
        let (pixels, limits) = (PixelReader::new(PixelFormat::BGRX), Limits::default());
        let mut r = Reader::new(data);
        let result = PseudoRect::read(area, encoding, &mut r, &pixels, &limits);
        if result.is_ok() {
            assert_eq!(r.remaining(), 0, "{result:?} leaves bytes");
            for cut in 0..data.len() {
                let cut_result = PseudoRect::read(area, encoding, &mut Reader::new(&data[..cut]), &pixels, &limits);
                assert_eq!(cut_result, Err(ReadError::Incomplete), "{result:?} cut at {cut}");
            }
        }
        result
    }

    #[test]
    fn rfb_and_qemu_pseudo_rectangles() {
        let at = |x, y, w, h| Rect::new(x, y, w, h);
        assert_eq!(pseudo(at(0, 0, 0, 0), enc::RAW, &[]), Ok(PseudoRect::Empty));
        assert_eq!(pseudo(at(0, 0, 0, 0), enc::LAST_RECT, &[]), Ok(PseudoRect::LastRect));
        assert_eq!(
            pseudo(at(0, 0, 16, 2), enc::DESKTOP_SIZE, &[]),
            Ok(PseudoRect::DesktopSize { width: 16, height: 2 })
        );
        let screens = [&[1, 0, 0, 0][..], &[0; 16]].concat();
        assert_eq!(
            pseudo(at(0, 0, 32, 2), enc::EXTENDED_DESKTOP_SIZE, &screens),
            Ok(PseudoRect::ExtendedDesktopSize { status: 0, width: 32, height: 2 })
        );
        assert_eq!(
            pseudo(at(1, 3, 60000, 60000), enc::EXTENDED_DESKTOP_SIZE, &[0, 0, 0, 0]),
            Ok(PseudoRect::ExtendedDesktopSize { status: 3, width: 60000, height: 60000 }),
            "a refused resize changes nothing and is not checked"
        );
        assert_eq!(
            pseudo(at(1, 0, 0, 0), enc::QEMU_POINTER_TYPE_CHANGE, &[]),
            Ok(PseudoRect::PointerType { absolute: true })
        );
        assert_eq!(pseudo(at(0, 0, 0, 0), enc::QEMU_EXT_KEY_EVENT, &[]), Ok(PseudoRect::QemuExtKeyEvent));
        assert_eq!(pseudo(at(0, 0, 0, 0), enc::QEMU_LED_STATE, &[4]), Ok(PseudoRect::LedState(4)));
        assert_eq!(
            pseudo(at(1, 0, 2, 1), enc::CURSOR, &[0, 0, 0xff, 0, 0xff, 0, 0, 0, 0x80]),
            Ok(PseudoRect::Cursor(CursorShape {
                hotspot_x: 1,
                hotspot_y: 0,
                width: 2,
                height: 1,
                pixels: vec![0xff0000, 0x0000ff],
                mask: vec![0x80],
            }))
        );
    }

    #[test]
    fn vmware_pseudo_rectangles() {
        let none = Rect::new(0, 0, 0, 0);
        assert_eq!(
            pseudo(Rect::new(1, 1, 1, 1), enc::VMW_DEFINE_CURSOR, &[1, 0, 0, 0, 0xff, 0xff]),
            Ok(PseudoRect::Cursor(CursorShape {
                hotspot_x: 1,
                hotspot_y: 1,
                width: 1,
                height: 1,
                pixels: vec![0xff0000],
                mask: vec![0x80],
            }))
        );
        assert_eq!(
            pseudo(none, enc::VMW_CURSOR_STATE, &[0, 3]),
            Ok(PseudoRect::CursorState { visible: true, absolute: true })
        );
        assert_eq!(
            pseudo(Rect::new(2, 1, 0, 0), enc::VMW_CURSOR_POSITION, &[]),
            Ok(PseudoRect::CursorPosition { x: 2, y: 1 })
        );
        assert_eq!(
            pseudo(none, enc::VMW_TYPEMATIC_INFO, &[0, 1, 0, 0, 0x82, 0x35, 0, 7, 0xa1, 0x20]),
            Ok(PseudoRect::KeyRepeat { enabled: true, period_us: 33333, delay_us: 500000 })
        );
        assert_eq!(pseudo(none, enc::VMW_LED_STATE, &[0, 0, 0, 0xfa]), Ok(PseudoRect::LedState(2)));
        assert_eq!(
            pseudo(none, enc::VMW_FRAME_STAMP, &[0, 0, 0, 1, 0, 0, 0, 2]),
            Ok(PseudoRect::FrameStamp(1 << 32 | 2))
        );
    }

    #[test]
    fn hostile_pseudo_rectangles_are_errors() {
        let error = |area: Rect, encoding, data: &[u8]| match pseudo(area, encoding, data) {
            Err(ReadError::Invalid(e)) => e.to_string(),
            other => panic!("{encoding}: {other:?}"),
        };
        let huge = Rect::new(0, 0, 60000, 60000);
        assert!(error(huge, enc::DESKTOP_SIZE, &[]).starts_with("framebuffer size 60000x60000 exceeds the limit"));
        let e = error(huge, enc::EXTENDED_DESKTOP_SIZE, &[0, 0, 0, 0]);
        assert!(e.starts_with("framebuffer size 60000x60000 exceeds the limit"), "{e}");
        assert!(error(Rect::new(0, 0, 1, 1), 12345, &[]).starts_with("the server used encoding 12345"));
        assert_eq!(
            error(Rect::new(0, 0, 1, 1), enc::VMW_DEFINE_CURSOR, &[7, 0]),
            "VMware cursor: unknown cursor type 7"
        );
        let e = error(huge, enc::CURSOR, &[]);
        assert!(e.starts_with("Cursor shape of"), "{e}");
    }
}
