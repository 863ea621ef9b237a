//! Raw: `w * h` pixels in the pixel format, row after row. Decoded row by row as bytes arrive.

use super::{Ctx, Progress};
use crate::error::ProtocolError;
use crate::framebuffer::Rect;

/// The rows of the rectangle decoded so far.
#[derive(Debug, Default)]
pub(crate) struct Rows(u16);

pub(crate) fn decode(rect: &Rect, input: &[u8], rows: &mut Rows, ctx: &mut Ctx) -> Result<Progress, ProtocolError> {
    let row_len = usize::from(rect.w) * ctx.pixels.bytes_per_pixel();
    let mut used = 0;
    while rows.0 < rect.h {
        if row_len == 0 {
            rows.0 = rect.h;
            break;
        }
        let Some(row) = input.get(used..used + row_len) else {
            return Ok(Progress::Partial(used));
        };
        ctx.pixels.pixels(row, ctx.fb.row_mut(rect.x, rect.y + rows.0, rect.w));
        used += row_len;
        rows.0 += 1;
    }
    Ok(Progress::Done(used))
}

#[cfg(test)]
mod tests {
    use crate::decode::testutil::{bgrx, Harness};
    use crate::decode::Progress;
    use crate::encoding::RAW;
    use crate::framebuffer::Rect;
    use crate::pixel::PixelFormat;

    #[test]
    fn decodes_rows_in_place() {
        let mut h = Harness::new(8, 8);
        let px: Vec<u32> = (0..6).map(|i| 0x010203 * i).collect();
        let r = Rect::new(2, 3, 3, 2);
        assert_eq!(h.decode(RAW, r, &bgrx(&px)), Ok(Progress::Done(24)));
        assert_eq!(h.pixels_of(r), px);
        assert_eq!(h.fb.get(1, 3), 0);
    }

    #[test]
    fn resumes_across_partial_input() {
        let mut h = Harness::new(64, 64);
        let px: Vec<u32> = (0..64 * 64).map(|i: u32| i.wrapping_mul(2654435761) & 0xffffff).collect();
        let input = bgrx(&px);
        let used = h.decode_trickled(RAW, Rect::new(0, 0, 64, 64), &input).unwrap();
        assert_eq!(used, input.len());
        assert_eq!(h.fb.pixels(), &px[..]);
    }

    #[test]
    fn sixteen_bit_big_endian() {
        let pf = PixelFormat { big_endian: true, ..PixelFormat::for_depth(16).unwrap() };
        let mut h = Harness::with_format(2, 1, pf);
        assert_eq!(h.decode(RAW, Rect::new(0, 0, 2, 1), &[0x7c, 0x00, 0x00, 0x1f]), Ok(Progress::Done(4)));
        assert_eq!(h.pixels_of(Rect::new(0, 0, 2, 1)), [0xff0000, 0x0000ff]);
    }

    #[test]
    fn short_input_waits() {
        let mut h = Harness::new(4, 4);
        assert_eq!(h.decode(RAW, Rect::new(0, 0, 4, 1), &[0; 15]), Ok(Progress::Partial(0)));
    }
}
