//! What a session may negotiate and how much it may accept. Limits live here, in one place, and are
//! enforced where bytes are parsed (see the decoders) so that a hostile server cannot make the client
//! allocate without bound.

use crate::encoding as enc;
use crate::error::ProtocolError;
use crate::pixel::PixelFormat;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest framebuffer accepted, in pixels (ServerInit, DesktopSize, ExtendedDesktopSize).
    pub max_framebuffer_pixels: u64,
    /// Largest single unit the session may have to buffer before it can be decoded (a Tight rectangle's
    /// data, a cursor), and the largest length a ZRLE or Zlib rectangle may announce. The other encodings
    /// decode as their bytes arrive.
    pub max_buffered_bytes: usize,
    /// Largest ServerCutText kept; longer clipboard text is skipped as it arrives.
    pub max_cut_text: usize,
    /// Largest desktop name accepted in ServerInit.
    pub max_name_len: usize,
    /// Largest WebSocket message accepted. VMware sends a whole framebuffer update as one message (a Raw
    /// update of the largest framebuffer is 256 MiB); os-autoinst allows 1 GiB.
    pub max_websocket_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_framebuffer_pixels: 8192 * 8192,
            max_buffered_bytes: 256 << 20,
            max_cut_text: 1 << 20,
            max_name_len: 64 << 10,
            max_websocket_message: 512 << 20,
        }
    }
}

impl Limits {
    pub fn check_framebuffer(&self, width: u16, height: u16) -> Result<(), ProtocolError> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_framebuffer_pixels {
            return Err(ProtocolError::FramebufferTooLarge {
                width: width.into(),
                height: height.into(),
                max_pixels: self.max_framebuffer_pixels,
            });
        }
        Ok(())
    }

    pub fn check_buffered(&self, what: &'static str, size: u64) -> Result<(), ProtocolError> {
        if size > self.max_buffered_bytes as u64 {
            return Err(ProtocolError::TooLarge { what, size, limit: self.max_buffered_bytes as u64 });
        }
        Ok(())
    }
}

/// Session parameters. Secrets are not part of it (see [`crate::handshake::Credentials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Encodings in order of preference, sent with SetEncodings.
    pub encodings: Vec<i32>,
    /// The format asked for with SetPixelFormat after ServerInit; `None` keeps the server's format
    /// (VMware servers ignore SetPixelFormat).
    pub pixel_format: Option<PixelFormat>,
    /// ClientInit's shared flag: leave other clients connected.
    pub shared: bool,
    /// Send keys as QEMU extended key events (scancodes) once the server announces support.
    pub scancode_keys: bool,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encodings: Self::default_encodings(),
            pixel_format: Some(PixelFormat::BGRX),
            shared: true,
            scancode_keys: true,
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// The settings for a VMware webmks console: the server's own pixel format (VMware ignores
    /// SetPixelFormat) and [`Self::webmks_encodings`].
    pub fn webmks() -> Self {
        Config { encodings: Self::webmks_encodings(), pixel_format: None, ..Config::default() }
    }

    /// What VMware's own console client asks for, lossless only: TightPNG (whose fill and PNG rectangles
    /// are exact; no JPEG quality level is sent), CopyRect and Raw, DesktopSize, and the VMware
    /// pseudo-encodings (cursor, cursor state and position, key repeat, LED state, server capabilities,
    /// frame stamp).
    pub fn webmks_encodings() -> Vec<i32> {
        vec![
            enc::TIGHT_PNG,
            enc::COPY_RECT,
            enc::RAW,
            enc::DESKTOP_SIZE,
            enc::VMW_DEFINE_CURSOR,
            enc::VMW_CURSOR_STATE,
            enc::VMW_CURSOR_POSITION,
            enc::VMW_TYPEMATIC_INFO,
            enc::VMW_LED_STATE,
            enc::VMW_SERVER_CAPS,
            enc::VMW_FRAME_STAMP,
        ]
    }

    /// The default preference list: os-autoinst's (ZRLE, Raw, DesktopSize, LastRect, pointer type, LED
    /// state) plus the lossless encodings this client adds and the QEMU extended key event.
    pub fn default_encodings() -> Vec<i32> {
        vec![
            enc::ZRLE,
            enc::HEXTILE,
            enc::ZLIB,
            enc::COPY_RECT,
            enc::RRE,
            enc::RAW,
            enc::DESKTOP_SIZE,
            enc::EXTENDED_DESKTOP_SIZE,
            enc::LAST_RECT,
            enc::QEMU_POINTER_TYPE_CHANGE,
            enc::QEMU_LED_STATE,
            enc::QEMU_EXT_KEY_EVENT,
        ]
    }
}
