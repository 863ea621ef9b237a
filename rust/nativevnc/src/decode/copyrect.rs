//! CopyRect: the source position (`u16 x, u16 y`) of pixels already in the framebuffer.

use super::{atomic, Ctx, Progress};
use crate::error::ProtocolError;
use crate::framebuffer::Rect;

pub(crate) fn decode(rect: &Rect, input: &[u8], ctx: &mut Ctx) -> Result<Progress, ProtocolError> {
    atomic(input, |r| {
        let (src_x, src_y) = (r.u16()?, r.u16()?);
        ctx.fb.check(&Rect::new(src_x, src_y, rect.w, rect.h), "CopyRect source")?;
        ctx.fb.copy_rect(src_x, src_y, rect);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use crate::decode::testutil::Harness;
    use crate::decode::Progress;
    use crate::encoding::COPY_RECT;
    use crate::error::ProtocolError;
    use crate::framebuffer::Rect;

    #[test]
    fn copies_overlapping_areas() {
        let mut h = Harness::new(10, 10);
        h.fb.canvas().fill(&Rect::new(0, 0, 5, 5), 0xabcdef);
        assert_eq!(h.decode(COPY_RECT, Rect::new(2, 2, 5, 5), &[0, 0, 0, 0]), Ok(Progress::Done(4)));
        assert_eq!(h.pixels_of(Rect::new(2, 2, 5, 5)), vec![0xabcdef; 25]);
        assert_eq!(h.fb.get(7, 7), 0);
    }

    #[test]
    fn rejects_a_source_outside_the_framebuffer() {
        let mut h = Harness::new(10, 10);
        let e = h.decode(COPY_RECT, Rect::new(0, 0, 5, 5), &[0, 6, 0, 0]).unwrap_err();
        assert!(matches!(e, ProtocolError::RectOutOfBounds { encoding: "CopyRect source", .. }), "{e}");
        assert_eq!(h.decode(COPY_RECT, Rect::new(0, 0, 5, 5), &[0, 6, 0]), Ok(Progress::Partial(0)));
    }
}
