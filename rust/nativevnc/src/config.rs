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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_framebuffer_pixels: 8192 * 8192,
            max_buffered_bytes: 256 << 20,
            max_cut_text: 1 << 20,
            max_name_len: 64 << 10,
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
