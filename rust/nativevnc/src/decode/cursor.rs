use crate::config::Limits;
use crate::error::ProtocolError;
use crate::framebuffer::Rect;
use crate::pixel::{PixelReader, Rgb};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorShape {
    pub hotspot_x: u16,
    pub hotspot_y: u16,
    pub width: u16,
    pub height: u16,
    pub pixels: Vec<Rgb>,
    pub mask: Vec<u8>,
}

pub(crate) fn read(
    _: &Rect,
    _: &[u8],
    _: &PixelReader,
    _: &Limits,
) -> Result<Option<(CursorShape, usize)>, ProtocolError> {
    Err(ProtocolError::UnsupportedEncoding(-239))
}
