//! Client-to-server messages, each with its encoder and its parser next to each other (the parser serves
//! the tests and any peer that reads what this client writes).

use crate::codec::{Parse, Put, ReadError, Reader};
use crate::error::ProtocolError;
use crate::framebuffer::Rect;
use crate::pixel::PixelFormat;

pub mod client_type {
    pub const SET_PIXEL_FORMAT: u8 = 0;
    pub const SET_ENCODINGS: u8 = 2;
    pub const FRAMEBUFFER_UPDATE_REQUEST: u8 = 3;
    pub const KEY_EVENT: u8 = 4;
    pub const POINTER_EVENT: u8 = 5;
    pub const CLIENT_CUT_TEXT: u8 = 6;
    pub const QEMU: u8 = 255;
    pub const QEMU_EXT_KEY_EVENT: u8 = 0;
    /// VMware's client messages: `u8 127, u8 subtype, u16 length` (the length counts the 4-byte header).
    pub const VMWARE: u8 = 127;
    pub const VMW_KEY_EVENT: u8 = 0;
    pub const VMW_POINTER_EVENT2: u8 = 2;
    pub const VMW_CLIENT_CAPS: u8 = 3;
    pub const VMW_ACK: u8 = 4;
}

pub mod server_type {
    pub const FRAMEBUFFER_UPDATE: u8 = 0;
    pub const SET_COLOUR_MAP_ENTRIES: u8 = 1;
    pub const BELL: u8 = 2;
    pub const SERVER_CUT_TEXT: u8 = 3;
    /// VMware's server messages: `u8 127, u8 id, u16 length` (the length counts the 4-byte header).
    pub const VMWARE: u8 = 127;
    pub const VMW_SERVER_CAPS: u8 = 0;
    pub const VMW_AUDIO: u8 = 3;
    pub const VMW_HEARTBEAT: u8 = 4;
    pub const VMW_SET_RECONNECT_TOKEN: u8 = 6;
    pub const VMW_SESSION_CLOSE: u8 = 7;
}

/// Bits of VMware's server capabilities (server message 127/0).
pub mod vmw_server_caps {
    /// The server takes VMWKeyEvent scancodes.
    pub const KEY_EVENT: u32 = 0x2;
    /// The server takes the ClientCaps message.
    pub const CLIENT_CAPS: u32 = 0x8;
    /// The server wants every FramebufferUpdate acknowledged (VMWAck with the update's id).
    pub const UPDATE_ACK: u32 = 0x20;
    /// The server announces why it ends a session (SessionClose).
    pub const SESSION_CLOSE: u32 = 0x20000;
}

/// Bits of VMware's client capabilities (client message 127/3).
pub mod vmw_client_caps {
    pub const HEARTBEAT: u32 = 0x100;
    pub const SESSION_CLOSE: u32 = 0x8000;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    SetPixelFormat(PixelFormat),
    SetEncodings(Vec<i32>),
    FramebufferUpdateRequest {
        incremental: bool,
        rect: Rect,
    },
    KeyEvent {
        down: bool,
        keysym: u32,
    },
    PointerEvent {
        buttons: u8,
        x: u16,
        y: u16,
    },
    CutText(Vec<u8>),
    /// QEMU extended key event: the keysym plus the key's scancode (QEMU "qnum": the XT set-1 code,
    /// with 0x80 added for keys that carry the 0xE0 prefix).
    QemuExtKeyEvent {
        down: bool,
        keysym: u32,
        keycode: u32,
    },
    /// VMware key event: the key's US scancode ("vscan": the set 1 make code, plus 0x100 for keys with the
    /// 0xE0 prefix).
    VmwKeyEvent {
        down: bool,
        scancode: u16,
    },
    /// VMware pointer event with wheel movement: absolute position, button mask, wheel steps (positive
    /// `wheel_y` scrolls down).
    VmwPointerEvent2 {
        absolute: bool,
        x: i32,
        y: i32,
        buttons: i32,
        wheel_y: i8,
        wheel_x: i8,
    },
    /// VMware client capabilities ([`vmw_client_caps`]).
    VmwClientCaps(u32),
    /// VMware acknowledgement of a FramebufferUpdate (to a server with [`vmw_server_caps::UPDATE_ACK`]): the
    /// id from the update's header and the time the client took to draw it, in tenths of milliseconds.
    VmwAck {
        update_id: u8,
        render_time: u16,
    },
}

impl ClientMessage {
    pub fn encode(&self, out: &mut Vec<u8>) {
        use client_type::*;
        match self {
            ClientMessage::SetPixelFormat(pf) => {
                out.put_u8(SET_PIXEL_FORMAT);
                out.extend_from_slice(&[0; 3]);
                pf.encode(out);
            }
            ClientMessage::SetEncodings(list) => {
                out.put_u8(SET_ENCODINGS);
                out.put_u8(0);
                out.put_u16(list.len() as u16);
                for e in list {
                    out.put_i32(*e);
                }
            }
            ClientMessage::FramebufferUpdateRequest { incremental, rect } => {
                out.put_u8(FRAMEBUFFER_UPDATE_REQUEST);
                out.put_u8(*incremental as u8);
                out.put_u16(rect.x);
                out.put_u16(rect.y);
                out.put_u16(rect.w);
                out.put_u16(rect.h);
            }
            ClientMessage::KeyEvent { down, keysym } => {
                out.put_u8(KEY_EVENT);
                out.put_u8(*down as u8);
                out.put_u16(0);
                out.put_u32(*keysym);
            }
            ClientMessage::PointerEvent { buttons, x, y } => {
                out.put_u8(POINTER_EVENT);
                out.put_u8(*buttons);
                out.put_u16(*x);
                out.put_u16(*y);
            }
            ClientMessage::CutText(text) => {
                out.put_u8(CLIENT_CUT_TEXT);
                out.extend_from_slice(&[0; 3]);
                out.put_u32(text.len() as u32);
                out.extend_from_slice(text);
            }
            ClientMessage::QemuExtKeyEvent { down, keysym, keycode } => {
                out.put_u8(QEMU);
                out.put_u8(QEMU_EXT_KEY_EVENT);
                out.put_u16(*down as u16);
                out.put_u32(*keysym);
                out.put_u32(*keycode);
            }
            ClientMessage::VmwKeyEvent { down, scancode } => {
                out.extend_from_slice(&[VMWARE, VMW_KEY_EVENT]);
                out.put_u16(8);
                out.put_u16(*scancode);
                out.extend_from_slice(&[*down as u8, 0]);
            }
            ClientMessage::VmwPointerEvent2 { absolute, x, y, buttons, wheel_y, wheel_x } => {
                out.extend_from_slice(&[VMWARE, VMW_POINTER_EVENT2]);
                out.put_u16(19);
                out.put_u8(*absolute as u8);
                out.put_i32(*x);
                out.put_i32(*y);
                out.put_i32(*buttons);
                out.extend_from_slice(&[*wheel_y as u8, *wheel_x as u8]);
            }
            ClientMessage::VmwClientCaps(caps) => {
                out.extend_from_slice(&[VMWARE, VMW_CLIENT_CAPS]);
                out.put_u16(8);
                out.put_u32(*caps);
            }
            ClientMessage::VmwAck { update_id, render_time } => {
                out.extend_from_slice(&[VMWARE, VMW_ACK]);
                out.put_u16(8);
                out.extend_from_slice(&[*update_id, 0]);
                out.put_u16(*render_time);
            }
        }
    }

    /// Parses one message; `max_len` bounds the variable-length ones.
    pub fn read(r: &mut Reader, max_len: usize) -> Parse<ClientMessage> {
        use client_type::*;
        let bad = |what: String| ReadError::Invalid(ProtocolError::malformed("client message", what));
        Ok(match r.u8()? {
            SET_PIXEL_FORMAT => {
                r.skip(3)?;
                ClientMessage::SetPixelFormat(PixelFormat::read(r)?)
            }
            SET_ENCODINGS => {
                r.skip(1)?;
                let n = usize::from(r.u16()?);
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(r.i32()?);
                }
                ClientMessage::SetEncodings(list)
            }
            FRAMEBUFFER_UPDATE_REQUEST => {
                let incremental = r.u8()? != 0;
                let rect = Rect::new(r.u16()?, r.u16()?, r.u16()?, r.u16()?);
                ClientMessage::FramebufferUpdateRequest { incremental, rect }
            }
            KEY_EVENT => {
                let down = r.u8()? != 0;
                r.skip(2)?;
                ClientMessage::KeyEvent { down, keysym: r.u32()? }
            }
            POINTER_EVENT => ClientMessage::PointerEvent { buttons: r.u8()?, x: r.u16()?, y: r.u16()? },
            CLIENT_CUT_TEXT => {
                r.skip(3)?;
                let n = r.u32()? as usize;
                if n > max_len {
                    return Err(bad(format!("cut text of {n} bytes")));
                }
                ClientMessage::CutText(r.take(n)?.to_vec())
            }
            QEMU => match r.u8()? {
                QEMU_EXT_KEY_EVENT => {
                    ClientMessage::QemuExtKeyEvent { down: r.u16()? != 0, keysym: r.u32()?, keycode: r.u32()? }
                }
                sub => return Err(bad(format!("unknown QEMU client message subtype {sub}"))),
            },
            VMWARE => {
                let sub = r.u8()?;
                let len = r.u16()?;
                let expected = match sub {
                    VMW_KEY_EVENT => 8,
                    VMW_POINTER_EVENT2 => 19,
                    VMW_CLIENT_CAPS => 8,
                    VMW_ACK => 8,
                    _ => return Err(bad(format!("unknown VMware client message subtype {sub}"))),
                };
                if len != expected {
                    return Err(bad(format!("VMware client message {sub} of length {len}, expected {expected}")));
                }
                match sub {
                    VMW_KEY_EVENT => {
                        let scancode = r.u16()?;
                        let down = r.u8()? != 0;
                        r.skip(1)?;
                        ClientMessage::VmwKeyEvent { down, scancode }
                    }
                    VMW_POINTER_EVENT2 => ClientMessage::VmwPointerEvent2 {
                        absolute: r.u8()? != 0,
                        x: r.i32()?,
                        y: r.i32()?,
                        buttons: r.i32()?,
                        wheel_y: r.u8()? as i8,
                        wheel_x: r.u8()? as i8,
                    },
                    VMW_ACK => {
                        let update_id = r.u8()?;
                        r.skip(1)?;
                        ClientMessage::VmwAck { update_id, render_time: r.u16()? }
                    }
                    _ => ClientMessage::VmwClientCaps(r.u32()?),
                }
            }
            t => return Err(bad(format!("unknown client message type {t}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(m: &ClientMessage) -> Vec<u8> {
        let mut v = Vec::new();
        m.encode(&mut v);
        v
    }

    fn round_trip(m: ClientMessage, expected: &[u8]) {
        let v = bytes(&m);
        assert_eq!(v, expected, "{m:?}");
        let mut r = Reader::new(&v);
        assert_eq!(ClientMessage::read(&mut r, 1 << 20), Ok(m));
        assert_eq!(r.remaining(), 0);
        for cut in 0..v.len() {
            assert_eq!(ClientMessage::read(&mut Reader::new(&v[..cut]), 1 << 20), Err(ReadError::Incomplete));
        }
    }

    #[test]
    fn key_event_matches_os_autoinst_vector() {
        // os-autoinst t/27-consoles-vnc.t: 'a' down is 04 01 0000 00000061.
        round_trip(ClientMessage::KeyEvent { down: true, keysym: 0x61 }, &[4, 1, 0, 0, 0, 0, 0, 0x61]);
        round_trip(ClientMessage::KeyEvent { down: false, keysym: 0xffe1 }, &[4, 0, 0, 0, 0, 0, 0xff, 0xe1]);
    }

    #[test]
    fn pointer_and_update_request() {
        round_trip(ClientMessage::PointerEvent { buttons: 1, x: 0x102, y: 3 }, &[5, 1, 1, 2, 0, 3]);
        round_trip(
            ClientMessage::FramebufferUpdateRequest { incremental: true, rect: Rect::new(0, 0, 1024, 768) },
            &[3, 1, 0, 0, 0, 0, 4, 0, 3, 0],
        );
    }

    #[test]
    fn set_encodings_and_pixel_format() {
        round_trip(
            ClientMessage::SetEncodings(vec![16, 0, -223]),
            &[2, 0, 0, 3, 0, 0, 0, 16, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21],
        );
        let mut expected = vec![0, 0, 0, 0];
        expected.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
        round_trip(ClientMessage::SetPixelFormat(PixelFormat::BGRX), &expected);
    }

    #[test]
    fn qemu_ext_key_event_and_cut_text() {
        round_trip(
            ClientMessage::QemuExtKeyEvent { down: true, keysym: 0xffe3, keycode: 0x1d },
            &[255, 0, 0, 1, 0, 0, 0xff, 0xe3, 0, 0, 0, 0x1d],
        );
        round_trip(ClientMessage::CutText(b"hi".to_vec()), &[6, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn vmware_messages() {
        // wmks.js: VMWKeyEvent 127/0 length 8 with the vscan code, 'z' is 0x2c.
        round_trip(ClientMessage::VmwKeyEvent { down: true, scancode: 0x2c }, &[127, 0, 0, 8, 0, 0x2c, 1, 0]);
        round_trip(ClientMessage::VmwKeyEvent { down: false, scancode: 0x14b }, &[127, 0, 0, 8, 1, 0x4b, 0, 0]);
        round_trip(
            ClientMessage::VmwPointerEvent2 { absolute: true, x: 10, y: 0x201, buttons: 0, wheel_y: -1, wheel_x: 0 },
            &[127, 2, 0, 19, 1, 0, 0, 0, 10, 0, 0, 2, 1, 0, 0, 0, 0, 0xff, 0],
        );
        round_trip(ClientMessage::VmwClientCaps(0x8100), &[127, 3, 0, 8, 0, 0, 0x81, 0]);
        // wmks.js `_sendAck`: 127/4 length 8, the update id, a pad byte, the render time in tenths of ms.
        round_trip(ClientMessage::VmwAck { update_id: 7, render_time: 0x1234 }, &[127, 4, 0, 8, 7, 0, 0x12, 0x34]);
        let wrong_length = [127, 0, 0, 9, 0, 0x2c, 1, 0, 0];
        assert!(matches!(ClientMessage::read(&mut Reader::new(&wrong_length), 10), Err(ReadError::Invalid(_))));
        assert!(matches!(ClientMessage::read(&mut Reader::new(&[127, 9, 0, 4]), 10), Err(ReadError::Invalid(_))));
    }

    #[test]
    fn rejects_unknown_and_oversized() {
        assert!(matches!(ClientMessage::read(&mut Reader::new(&[9]), 10), Err(ReadError::Invalid(_))));
        let v = bytes(&ClientMessage::CutText(vec![b'x'; 11]));
        assert!(matches!(ClientMessage::read(&mut Reader::new(&v), 10), Err(ReadError::Invalid(_))));
    }
}
