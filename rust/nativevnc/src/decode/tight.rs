use super::{Ctx, Progress, Resume};
use crate::error::ProtocolError;
use crate::framebuffer::Rect;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Tight,
    TightPng,
}

pub(crate) fn decode(_: &Rect, _: &[u8], _: &mut Resume, _: &mut Ctx, _: Flavour) -> Result<Progress, ProtocolError> {
    Err(ProtocolError::UnsupportedEncoding(-1))
}
