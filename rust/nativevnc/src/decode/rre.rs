//! RRE, rise-and-run-length encoding (RFC 6143 §7.7.3): a `u32` number of subrectangles and a
//! background `PIXEL` that fills the rectangle, then each subrectangle as a `PIXEL` and
//! `u16 x, y, w, h` relative to the rectangle.
//!
//! Decoded unit by unit as bytes arrive: the header, then one subrectangle at a time ([`Subrects`]).

use super::{Ctx, Progress};
use crate::error::ProtocolError;
use crate::framebuffer::Rect;

const ENCODING: &str = "RRE";

/// How far the rectangle is decoded.
#[derive(Debug, Default)]
pub(crate) enum Subrects {
    /// The header is still to come.
    #[default]
    Header,
    /// The header said `count` subrectangles; `done` of them are drawn.
    Drawing { count: u32, done: u32 },
}

pub(crate) fn decode(
    rect: &Rect,
    input: &[u8],
    state: &mut Subrects,
    ctx: &mut Ctx,
) -> Result<Progress, ProtocolError> {
    let bpp = ctx.pixels.bytes_per_pixel();
    let mut used = 0;
    if let Subrects::Header = state {
        let Some(header) = input.get(..4 + bpp) else {
            return Ok(Progress::Partial(0));
        };
        let count = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if u64::from(count) > rect.area() {
            return Err(ProtocolError::malformed(
                ENCODING,
                format!("{count} subrectangles in a {}x{} rectangle, more than it has pixels", rect.w, rect.h),
            ));
        }
        ctx.fb.fill(rect, ctx.pixels.pixel(&header[4..]));
        *state = Subrects::Drawing { count, done: 0 };
        used = header.len();
    }
    let Subrects::Drawing { count, done } = state else {
        unreachable!("the header was read above");
    };
    let count = *count;
    let unit_len = bpp + 8;
    while *done < count {
        let Some(unit) = input.get(used..used + unit_len) else {
            return Ok(Progress::Partial(used));
        };
        let colour = ctx.pixels.pixel(unit);
        let field = |i: usize| u16::from_be_bytes([unit[bpp + 2 * i], unit[bpp + 2 * i + 1]]);
        let sub = Rect::new(field(0), field(1), field(2), field(3));
        if sub.right() > u32::from(rect.w) || sub.bottom() > u32::from(rect.h) {
            return Err(ProtocolError::malformed(
                ENCODING,
                format!(
                    "subrectangle {} of {count} at {},{} size {}x{} lies outside the {}x{} \
                     rectangle",
                    *done + 1,
                    sub.x,
                    sub.y,
                    sub.w,
                    sub.h,
                    rect.w,
                    rect.h
                ),
            ));
        }
        ctx.fb.fill(&Rect::new(rect.x + sub.x, rect.y + sub.y, sub.w, sub.h), colour);
        used += unit_len;
        *done += 1;
    }
    Ok(Progress::Done(used))
}

#[cfg(test)]
mod tests {
    use crate::decode::testutil::{bgrx, Harness};
    use crate::decode::Progress;
    use crate::encoding::RRE;
    use crate::error::ProtocolError;
    use crate::framebuffer::Rect;
    use crate::pixel::PixelFormat;

    const BG: u32 = 0x102030;
    const RED: u32 = 0xff0000;
    const GREEN: u32 = 0x00ff00;

    /// RRE bytes in BGRX: the header, then `(colour, x, y, w, h)` per subrectangle.
    fn rre(background: u32, subrects: &[(u32, u16, u16, u16, u16)]) -> Vec<u8> {
        let mut v = (subrects.len() as u32).to_be_bytes().to_vec();
        v.extend(bgrx(&[background]));
        for &(colour, x, y, w, h) in subrects {
            v.extend(bgrx(&[colour]));
            for f in [x, y, w, h] {
                v.extend(f.to_be_bytes());
            }
        }
        v
    }

    /// The pixels of a `w x h` picture, row after row, drawn from a description per row.
    fn picture(rows: &[&str]) -> Vec<u32> {
        rows.iter()
            .flat_map(|row| {
                row.chars().map(|c| match c {
                    '.' => BG,
                    'r' => RED,
                    'g' => GREEN,
                    _ => 0,
                })
            })
            .collect()
    }

    #[test]
    fn background_only_fills_the_rectangle() {
        let mut h = Harness::new(6, 5);
        let input = rre(BG, &[]);
        assert_eq!(input, [0, 0, 0, 0, 0x30, 0x20, 0x10, 0]);
        let r = Rect::new(1, 2, 4, 2);
        assert_eq!(h.decode(RRE, r, &input), Ok(Progress::Done(8)));
        #[rustfmt::skip]
        let expected = picture(&[
            "      ",
            "      ",
            " .... ",
            " .... ",
            "      ",
        ]);
        assert_eq!(h.fb.pixels(), &expected[..]);
    }

    #[test]
    fn subrectangles_paint_in_order_over_the_background() {
        let mut h = Harness::new(7, 5);
        let input = rre(BG, &[(RED, 0, 0, 3, 2), (GREEN, 2, 1, 2, 3), (RED, 4, 3, 1, 1)]);
        assert_eq!(input.len(), 8 + 3 * 12);
        assert_eq!(h.decode(RRE, Rect::new(1, 1, 5, 4), &input), Ok(Progress::Done(44)));
        #[rustfmt::skip]
        let expected = picture(&[
            "       ",
            " rrr.. ",
            " rrgg. ",
            " ..gg. ",
            " ..ggr ",
        ]);
        assert_eq!(h.fb.pixels(), &expected[..]);
    }

    #[test]
    fn sixteen_bit_pixels() {
        let mut h = Harness::with_format(3, 2, PixelFormat::for_depth(16).unwrap());
        // Background blue (0x001f), one 2x1 red (0x7c00) subrectangle at 1,1; pixels little-endian.
        let input = [0, 0, 0, 1, 0x1f, 0x00, 0x00, 0x7c, 0, 1, 0, 1, 0, 2, 0, 1];
        assert_eq!(h.decode(RRE, Rect::new(0, 0, 3, 2), &input), Ok(Progress::Done(16)));
        assert_eq!(h.fb.pixels(), [0x0000ff, 0x0000ff, 0x0000ff, 0x0000ff, 0xff0000, 0xff0000]);
    }

    #[test]
    fn empty_rectangle_has_a_header_and_no_subrectangles() {
        let mut h = Harness::new(4, 4);
        assert_eq!(h.decode(RRE, Rect::new(1, 1, 0, 3), &rre(BG, &[])), Ok(Progress::Done(8)));
        assert_eq!(h.fb.pixels(), [0; 16]);
    }

    fn sample() -> Vec<u8> {
        rre(BG, &[(RED, 0, 0, 30, 1), (GREEN, 5, 5, 10, 10), (RED, 29, 19, 1, 1), (GREEN, 0, 19, 30, 0)])
    }

    #[test]
    fn trickled_input_gives_the_same_pixels() {
        let input = sample();
        let r = Rect::new(3, 2, 30, 20);
        let mut once = Harness::new(40, 30);
        assert_eq!(once.decode(RRE, r, &input), Ok(Progress::Done(input.len())));
        let mut trickled = Harness::new(40, 30);
        assert_eq!(trickled.decode_trickled(RRE, r, &input), Ok(input.len()));
        assert_eq!(trickled.fb.pixels(), once.fb.pixels());
        assert_eq!(once.fb.get(3, 2), RED);
        assert_eq!(once.fb.get(8, 7), GREEN);
        assert_eq!(once.fb.get(32, 21), RED);
        assert_eq!(once.fb.get(3, 21), BG);
        assert_eq!(once.fb.get(2, 2), 0);
    }

    #[test]
    fn truncated_input_is_partial_at_every_cut() {
        let input = sample();
        for cut in 0..input.len() {
            let mut h = Harness::new(40, 30);
            let used = if cut < 8 { 0 } else { 8 + (cut - 8) / 12 * 12 };
            assert_eq!(h.decode(RRE, Rect::new(3, 2, 30, 20), &input[..cut]), Ok(Progress::Partial(used)), "cut {cut}");
            let corner = match used {
                0 => 0,
                8 => BG,
                _ => RED,
            };
            assert_eq!(h.fb.get(3, 2), corner, "cut {cut}");
            let inside = match used {
                0 => 0,
                8 | 20 => BG,
                _ => GREEN,
            };
            assert_eq!(h.fb.get(8, 7), inside, "cut {cut}");
        }
    }

    #[test]
    fn rejects_a_subrectangle_outside_the_rectangle() {
        let r = Rect::new(2, 2, 5, 4);
        for (sub, position) in
            [((1, 0, 5, 1), "1,0 size 5x1"), ((0, 4, 1, 1), "0,4 size 1x1"), ((0, 0, 0xffff, 1), "0,0 size 65535x1")]
        {
            let mut h = Harness::new(10, 10);
            let input = rre(BG, &[(RED, 0, 0, 5, 4), (GREEN, sub.0, sub.1, sub.2, sub.3)]);
            let e = h.decode(RRE, r, &input).unwrap_err();
            assert!(matches!(e, ProtocolError::Malformed { encoding: "RRE", .. }), "{e}");
            assert_eq!(e.to_string(), format!("RRE: subrectangle 2 of 2 at {position} lies outside the 5x4 rectangle"));
        }
    }

    #[test]
    fn rejects_more_subrectangles_than_pixels_without_waiting_for_them() {
        let mut h = Harness::new(10, 10);
        let mut input = rre(BG, &[]);
        input[..4].copy_from_slice(&13u32.to_be_bytes());
        let e = h.decode(RRE, Rect::new(0, 0, 3, 4), &input).unwrap_err();
        assert_eq!(e.to_string(), "RRE: 13 subrectangles in a 3x4 rectangle, more than it has pixels");
        input[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = h.decode(RRE, Rect::new(0, 0, 10, 10), &input).unwrap_err();
        assert_eq!(e.to_string(), "RRE: 4294967295 subrectangles in a 10x10 rectangle, more than it has pixels");
        assert_eq!(h.fb.pixels(), [0; 100]);
        input[..4].copy_from_slice(&12u32.to_be_bytes());
        assert_eq!(h.decode(RRE, Rect::new(0, 0, 3, 4), &input), Ok(Progress::Partial(8)));
    }
}
