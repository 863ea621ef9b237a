use super::{Ctx, Progress, Resume};
use crate::error::ProtocolError;
use crate::framebuffer::Rect;

pub(crate) fn decode(_: &Rect, _: &[u8], _: &mut Resume, _: &mut Ctx) -> Result<Progress, ProtocolError> {
    Err(ProtocolError::UnsupportedEncoding(-1))
}
