//! Hextile (RFC 6143 §7.7.4): the rectangle cut into 16x16 tiles, left to right and top to bottom,
//! the tiles on the right and bottom edges smaller. Each tile starts with a sub-encoding mask: Raw
//! tiles are `w * h` pixels; the others are a background with up to 255 solid subrectangles, each
//! given in two bytes (`x << 4 | y`, `(w - 1) << 4 | (h - 1)`) and coloured with the foreground or
//! with a pixel of its own. Background and foreground may carry over from the previous tile.
//!
//! Decoded tile by tile as bytes arrive ([`Tiles`]). A tile is written only once all of its bytes are
//! there, and its colours are committed only then.

use super::{Ctx, Progress};
use crate::codec::{Parse, ReadError, Reader};
use crate::error::ProtocolError;
use crate::framebuffer::Rect;
use crate::pixel::Rgb;

const ENCODING: &str = "Hextile";

const RAW: u8 = 1;
const BACKGROUND_SPECIFIED: u8 = 2;
const FOREGROUND_SPECIFIED: u8 = 4;
const ANY_SUBRECTS: u8 = 8;
const SUBRECTS_COLOURED: u8 = 16;
const KNOWN_BITS: u8 = RAW | BACKGROUND_SPECIFIED | FOREGROUND_SPECIFIED | ANY_SUBRECTS | SUBRECTS_COLOURED;

const TILE: u16 = 16;

/// How far the rectangle is decoded: the tiles done, and the colours carried to the next tile (`None`: none
/// may carry).
#[derive(Debug, Default)]
pub(crate) struct Tiles {
    done: u32,
    /// "The first non-raw tile in a rectangle must have this bit set" (BackgroundSpecified), and nothing
    /// carries a foreground into the rectangle either: both start as `None`.
    background: Option<Rgb>,
    foreground: Option<Rgb>,
}

pub(crate) fn decode(rect: &Rect, input: &[u8], resume: &mut Tiles, ctx: &mut Ctx) -> Result<Progress, ProtocolError> {
    let tiles_across = u32::from(rect.w.div_ceil(TILE));
    let tiles = tiles_across * u32::from(rect.h.div_ceil(TILE));
    let mut used = 0;
    while resume.done < tiles {
        let dx = (resume.done % tiles_across) as u16 * TILE;
        let dy = (resume.done / tiles_across) as u16 * TILE;
        let tile = Rect::new(rect.x + dx, rect.y + dy, (rect.w - dx).min(TILE), (rect.h - dy).min(TILE));
        match decode_tile(&tile, resume, &input[used..], ctx) {
            Ok(n) => used += n,
            Err(ReadError::Incomplete) => return Ok(Progress::Partial(used)),
            Err(ReadError::Invalid(e)) => return Err(e),
        }
        resume.done += 1;
    }
    Ok(Progress::Done(used))
}

/// Decodes the tile at the start of `input` and returns its length, or `Incomplete` without writing
/// anything if not all of its bytes are there yet.
fn decode_tile(tile: &Rect, resume: &mut Tiles, input: &[u8], ctx: &mut Ctx) -> Parse<usize> {
    let bpp = ctx.pixels.bytes_per_pixel();
    let mut r = Reader::new(input);
    let mask = r.u8()?;
    let invalid = |what: String| {
        ReadError::Invalid(ProtocolError::malformed(
            ENCODING,
            format!("tile {} at {},{} size {}x{}: {what}", resume.done, tile.x, tile.y, tile.w, tile.h),
        ))
    };

    if mask & RAW != 0 {
        let row_len = usize::from(tile.w) * bpp;
        let data = r.take(row_len * usize::from(tile.h))?;
        for (y, row) in (tile.y..).zip(data.chunks_exact(row_len)) {
            ctx.pixels.pixels(row, ctx.fb.row_mut(tile.x, y, tile.w));
        }
        // RFC 6143 §7.7.4: "the background pixel value may not be carried over if the previous
        // tile was raw", and "the foreground pixel value may not be carried over if the previous
        // tile was raw or had the SubrectsColored bit set".
        resume.background = None;
        resume.foreground = None;
        return Ok(r.consumed());
    }
    if mask & !KNOWN_BITS != 0 {
        return Err(invalid(format!("unknown sub-encoding bits in {mask:#04x}")));
    }

    let background =
        if mask & BACKGROUND_SPECIFIED != 0 { Some(ctx.pixels.pixel(r.take(bpp)?)) } else { resume.background };
    let foreground =
        if mask & FOREGROUND_SPECIFIED != 0 { Some(ctx.pixels.pixel(r.take(bpp)?)) } else { resume.foreground };
    let count = if mask & ANY_SUBRECTS != 0 { r.u8()? } else { 0 };
    let coloured = mask & SUBRECTS_COLOURED != 0;
    let subrect_len = 2 + if coloured { bpp } else { 0 };
    let subrects = r.take(usize::from(count) * subrect_len)?;

    let Some(background) = background else {
        return Err(invalid(
            "no background colour: the tile gives none and none carries over (not into a \
             rectangle, nor past a Raw tile)"
                .into(),
        ));
    };
    if count > 0 && !coloured && foreground.is_none() {
        return Err(invalid(
            "no foreground colour for its subrectangles: the tile gives none and none carries over \
             (not into a rectangle, nor past a Raw or SubrectsColoured tile)"
                .into(),
        ));
    }

    ctx.fb.fill(tile, background);
    for subrect in subrects.chunks_exact(subrect_len) {
        let (colour, geometry) =
            // Without SubrectsColoured the foreground was checked above.
            if coloured { (ctx.pixels.pixel(subrect), &subrect[bpp..]) } else { (foreground.unwrap_or(0), subrect) };
        let (x, y) = (u16::from(geometry[0] >> 4), u16::from(geometry[0] & 15));
        let (w, h) = (u16::from(geometry[1] >> 4) + 1, u16::from(geometry[1] & 15) + 1);
        if x + w > tile.w || y + h > tile.h {
            return Err(invalid(format!("subrectangle at {x},{y} size {w}x{h} lies outside the tile")));
        }
        ctx.fb.fill(&Rect::new(tile.x + x, tile.y + y, w, h), colour);
    }

    resume.background = Some(background);
    // RFC 6143 §7.7.4, as for Raw tiles above.
    resume.foreground = if coloured { None } else { foreground };
    Ok(r.consumed())
}

#[cfg(test)]
mod tests {
    use super::{ANY_SUBRECTS, BACKGROUND_SPECIFIED, FOREGROUND_SPECIFIED, RAW, SUBRECTS_COLOURED};
    use crate::decode::testutil::{bgrx, Harness};
    use crate::decode::Progress;
    use crate::encoding::HEXTILE;
    use crate::error::ProtocolError;
    use crate::framebuffer::Rect;
    use crate::pixel::PixelFormat;

    const BG: u32 = 0x102030;
    const FG: u32 = 0xff0000;
    const GREEN: u32 = 0x00ff00;
    const BLUE: u32 = 0x0000ff;

    const BG_FG_SUBRECTS: u8 = BACKGROUND_SPECIFIED | FOREGROUND_SPECIFIED | ANY_SUBRECTS;
    const BG_COLOURED: u8 = BACKGROUND_SPECIFIED | ANY_SUBRECTS | SUBRECTS_COLOURED;

    fn px(c: u32) -> Vec<u8> {
        bgrx(&[c])
    }

    /// A subrectangle's two bytes.
    fn sub(x: u8, y: u8, w: u8, h: u8) -> [u8; 2] {
        [x << 4 | y, (w - 1) << 4 | (h - 1)]
    }

    /// Pixels drawn from one string per row: `.` background, `f` foreground, `g` green, `b` blue,
    /// ` ` untouched.
    fn picture(rows: &[&str]) -> Vec<u32> {
        rows.iter()
            .flat_map(|row| {
                row.chars().map(|c| match c {
                    '.' => BG,
                    'f' => FG,
                    'g' => GREEN,
                    'b' => BLUE,
                    _ => 0,
                })
            })
            .collect()
    }

    /// A `w x h` image of `colour` with rectangles painted over it, to state the expected pixels of
    /// larger cases.
    fn image(w: u16, h: u16, colour: u32, rects: &[(Rect, u32)]) -> Vec<u32> {
        let mut img = vec![colour; usize::from(w) * usize::from(h)];
        for &(r, c) in rects {
            for y in r.y..r.y + r.h {
                for x in r.x..r.x + r.w {
                    img[usize::from(y) * usize::from(w) + usize::from(x)] = c;
                }
            }
        }
        img
    }

    fn error(h: &mut Harness, rect: Rect, input: &[u8]) -> String {
        let e = h.decode(HEXTILE, rect, input).unwrap_err();
        assert!(matches!(e, ProtocolError::Malformed { encoding: "Hextile", .. }), "{e}");
        e.to_string()
    }

    #[test]
    fn background_only_tile() {
        let mut h = Harness::new(7, 4);
        let input = [&[BACKGROUND_SPECIFIED][..], &px(BG)].concat();
        assert_eq!(input, [2, 0x30, 0x20, 0x10, 0]);
        assert_eq!(h.decode(HEXTILE, Rect::new(1, 1, 5, 2), &input), Ok(Progress::Done(5)));
        #[rustfmt::skip]
        let expected = picture(&[
            "       ",
            " ..... ",
            " ..... ",
            "       ",
        ]);
        assert_eq!(h.fb.pixels(), &expected[..]);
    }

    #[test]
    fn subrectangles_in_the_foreground_colour() {
        let mut h = Harness::new(6, 4);
        let input = [&[BG_FG_SUBRECTS][..], &px(BG), &px(FG), &[2], &sub(0, 0, 3, 2), &sub(4, 1, 2, 3)].concat();
        assert_eq!(input.len(), 14);
        assert_eq!(h.decode(HEXTILE, Rect::new(0, 0, 6, 4), &input), Ok(Progress::Done(14)));
        #[rustfmt::skip]
        let expected = picture(&[
            "fff...",
            "fff.ff",
            "....ff",
            "....ff",
        ]);
        assert_eq!(h.fb.pixels(), &expected[..]);
    }

    #[test]
    fn coloured_subrectangles() {
        let mut h = Harness::new(5, 3);
        let input = [
            &[BG_COLOURED][..],
            &px(BG),
            &[3],
            &px(GREEN),
            &sub(1, 0, 3, 1),
            &px(BLUE),
            &sub(2, 0, 1, 3),
            &px(FG),
            &sub(4, 2, 1, 1),
        ]
        .concat();
        assert_eq!(h.decode(HEXTILE, Rect::new(0, 0, 5, 3), &input), Ok(Progress::Done(24)));
        #[rustfmt::skip]
        let expected = picture(&[
            ".gbg.",
            "..b..",
            "..b.f",
        ]);
        assert_eq!(h.fb.pixels(), &expected[..]);
    }

    #[test]
    fn raw_tile_ignores_the_other_bits() {
        let mut h = Harness::new(4, 3);
        let px: Vec<u32> = (1..=6).map(|i| 0x111111 * i).collect();
        let input = [&[0xff][..], &bgrx(&px)].concat();
        assert_eq!(h.decode(HEXTILE, Rect::new(1, 1, 3, 2), &input), Ok(Progress::Done(25)));
        assert_eq!(h.fb.pixels(), [0, 0, 0, 0, 0, px[0], px[1], px[2], 0, px[3], px[4], px[5]]);
    }

    #[test]
    fn colours_carry_over_to_later_tiles() {
        // Three 16x16 tiles: background and foreground specified; nothing specified (solid
        // background); only subrectangles, in the carried foreground over the carried background.
        let mut h = Harness::new(48, 16);
        let input = [
            &[BG_FG_SUBRECTS][..],
            &px(BG),
            &px(FG),
            &[1],
            &sub(0, 0, 16, 1),
            &[0],
            &[ANY_SUBRECTS, 1],
            &sub(15, 15, 1, 1),
        ]
        .concat();
        assert_eq!(h.decode(HEXTILE, Rect::new(0, 0, 48, 16), &input), Ok(Progress::Done(17)));
        let expected = image(48, 16, BG, &[(Rect::new(0, 0, 16, 1), FG), (Rect::new(47, 15, 1, 1), FG)]);
        assert_eq!(h.fb.pixels(), &expected[..]);
    }

    #[test]
    fn edge_tiles_are_cut_to_the_rectangle() {
        // 20x18 at 2,1: tiles 16x16, 4x16, 16x2 and 4x2.
        let mut h = Harness::new(24, 20);
        let raw: Vec<u32> = (1..=64).map(|i| 0x010101 * i).collect();
        let input = [
            &[BACKGROUND_SPECIFIED][..],
            &px(BG),
            &[RAW],
            &bgrx(&raw),
            &[BG_FG_SUBRECTS],
            &px(GREEN),
            &px(FG),
            &[1],
            &sub(15, 1, 1, 1),
            &[BG_COLOURED],
            &px(BLUE),
            &[1],
            &px(FG),
            &sub(3, 0, 1, 2),
        ]
        .concat();
        let rect = Rect::new(2, 1, 20, 18);
        assert_eq!(h.decode(HEXTILE, rect, &input), Ok(Progress::Done(input.len())));
        let mut expected = image(
            24,
            20,
            0,
            &[
                (Rect::new(2, 1, 16, 16), BG),
                (Rect::new(2, 17, 16, 2), GREEN),
                (Rect::new(17, 18, 1, 1), FG),
                (Rect::new(18, 17, 4, 2), BLUE),
                (Rect::new(21, 17, 1, 2), FG),
            ],
        );
        for (i, &p) in raw.iter().enumerate() {
            expected[(1 + i / 4) * 24 + 18 + i % 4] = p;
        }
        assert_eq!(h.fb.pixels(), &expected[..]);
    }

    #[test]
    fn sixteen_bit_pixels() {
        // A 16x1 tile with a 2x1 foreground subrectangle, then a 1x1 raw tile; 5-5-5 pixels,
        // little-endian.
        let mut h = Harness::with_format(17, 1, PixelFormat::for_depth(16).unwrap());
        let input = [BG_FG_SUBRECTS, 0x1f, 0x00, 0x00, 0x7c, 1, 0x70, 0x10, RAW, 0xe0, 0x03];
        assert_eq!(h.decode(HEXTILE, Rect::new(0, 0, 17, 1), &input), Ok(Progress::Done(11)));
        let mut expected = [0x0000ff; 17];
        expected[7..9].fill(0xff0000);
        expected[16] = 0x00ff00;
        assert_eq!(h.fb.pixels(), &expected[..]);
    }

    #[test]
    fn empty_rectangle_has_no_tiles() {
        let mut h = Harness::new(4, 4);
        assert_eq!(h.decode(HEXTILE, Rect::new(1, 1, 3, 0), &[]), Ok(Progress::Done(0)));
        assert_eq!(h.decode(HEXTILE, Rect::new(1, 1, 0, 3), &[]), Ok(Progress::Done(0)));
    }

    /// Six tiles of a 40x20 rectangle at 3,2 of a 50x30 framebuffer, using every kind of tile and
    /// carry-over; the offsets where each tile ends, and the framebuffer afterwards.
    fn sample() -> (Vec<u8>, Vec<usize>, Vec<u32>) {
        let raw: Vec<u32> = (1..=8 * 16).map(|i| 0x010203 * i).collect();
        let tiles: Vec<Vec<u8>> = vec![
            [&[BG_FG_SUBRECTS][..], &px(BG), &px(FG), &[2], &sub(0, 0, 16, 16), &sub(2, 3, 4, 5)].concat(),
            [&[ANY_SUBRECTS][..], &[1], &sub(0, 15, 16, 1)].concat(),
            [&[RAW][..], &bgrx(&raw)].concat(),
            [&[BG_COLOURED][..], &px(GREEN), &[2], &px(BLUE), &sub(1, 1, 2, 2), &px(FG), &sub(15, 3, 1, 1)].concat(),
            [&[BACKGROUND_SPECIFIED | FOREGROUND_SPECIFIED][..], &px(BLUE), &px(GREEN)].concat(),
            [&[ANY_SUBRECTS][..], &[1], &sub(7, 3, 1, 1)].concat(),
        ];
        let ends = tiles.iter().scan(0, |end, t| {
            *end += t.len();
            Some(*end)
        });
        let mut expected = image(
            50,
            30,
            0,
            &[
                (Rect::new(3, 2, 16, 16), FG),
                (Rect::new(19, 2, 16, 16), BG),
                (Rect::new(19, 17, 16, 1), FG),
                (Rect::new(3, 18, 16, 4), GREEN),
                (Rect::new(4, 19, 2, 2), BLUE),
                (Rect::new(18, 21, 1, 1), FG),
                (Rect::new(19, 18, 16, 4), BLUE),
                (Rect::new(35, 18, 8, 4), BLUE),
                (Rect::new(42, 21, 1, 1), GREEN),
            ],
        );
        for (i, &p) in raw.iter().enumerate() {
            expected[(2 + i / 8) * 50 + 35 + i % 8] = p;
        }
        (tiles.concat(), ends.collect(), expected)
    }

    const SAMPLE_RECT: Rect = Rect::new(3, 2, 40, 20);

    #[test]
    fn one_shot_and_trickled_input_give_the_same_pixels() {
        let (input, _, expected) = sample();
        let mut once = Harness::new(50, 30);
        assert_eq!(once.decode(HEXTILE, SAMPLE_RECT, &input), Ok(Progress::Done(input.len())));
        assert_eq!(once.fb.pixels(), &expected[..]);
        let mut trickled = Harness::new(50, 30);
        assert_eq!(trickled.decode_trickled(HEXTILE, SAMPLE_RECT, &input), Ok(input.len()));
        assert_eq!(trickled.fb.pixels(), &expected[..]);
    }

    #[test]
    fn truncated_input_is_partial_at_every_cut_and_leaves_the_incomplete_tile_alone() {
        let (input, ends, expected) = sample();
        let tiles = [
            Rect::new(3, 2, 16, 16),
            Rect::new(19, 2, 16, 16),
            Rect::new(35, 2, 8, 16),
            Rect::new(3, 18, 16, 4),
            Rect::new(19, 18, 16, 4),
            Rect::new(35, 18, 8, 4),
        ];
        for cut in 0..input.len() {
            let done = ends.iter().take_while(|&&end| end <= cut).count();
            let used = if done == 0 { 0 } else { ends[done - 1] };
            let mut h = Harness::new(50, 30);
            assert_eq!(h.decode(HEXTILE, SAMPLE_RECT, &input[..cut]), Ok(Progress::Partial(used)), "cut {cut}");
            for (i, tile) in tiles.iter().enumerate() {
                let want = if i < done { expected_of(&expected, tile) } else { vec![0; tile.area() as usize] };
                assert_eq!(h.pixels_of(*tile), want, "cut {cut}, tile {i}");
            }
        }
    }

    fn expected_of(image: &[u32], r: &Rect) -> Vec<u32> {
        (r.y..r.y + r.h)
            .flat_map(|y| {
                let start = usize::from(y) * 50 + usize::from(r.x);
                image[start..start + usize::from(r.w)].to_vec()
            })
            .collect()
    }

    #[test]
    fn rejects_a_subrectangle_outside_the_tile() {
        let mut h = Harness::new(40, 40);
        let input = [&[BG_FG_SUBRECTS][..], &px(BG), &px(FG), &[1], &sub(15, 0, 2, 1)].concat();
        assert_eq!(
            error(&mut h, Rect::new(0, 0, 32, 32), &input),
            "Hextile: tile 0 at 0,0 size 16x16: subrectangle at 15,0 size 2x1 lies outside the tile"
        );
        // Within 16x16, but outside the 4x3 corner tile of a 20x19 rectangle.
        let corner = [&[BG_COLOURED][..], &px(BG), &[2], &px(FG), &sub(0, 0, 4, 3), &px(FG), &sub(0, 2, 1, 2)].concat();
        let input = [&[BACKGROUND_SPECIFIED][..], &px(BG), &[0], &[0], &corner].concat();
        assert_eq!(
            error(&mut h, Rect::new(2, 1, 20, 19), &input),
            "Hextile: tile 3 at 18,17 size 4x3: subrectangle at 0,2 size 1x2 lies outside the tile"
        );
    }

    #[test]
    fn rejects_a_tile_without_a_background() {
        let mut h = Harness::new(40, 40);
        let msg = "no background colour: the tile gives none and none carries over (not into a \
                   rectangle, nor past a Raw tile)";
        assert_eq!(error(&mut h, Rect::new(0, 0, 8, 8), &[0]), format!("Hextile: tile 0 at 0,0 size 8x8: {msg}"));
        let input = [&[BACKGROUND_SPECIFIED][..], &px(BG), &[RAW], &bgrx(&[FG; 16]), &[0]].concat();
        assert_eq!(error(&mut h, Rect::new(1, 2, 34, 1), &input), format!("Hextile: tile 2 at 33,2 size 2x1: {msg}"));
        let input = [&[RAW][..], &bgrx(&[FG; 16]), &[0]].concat();
        assert_eq!(error(&mut h, Rect::new(0, 0, 17, 1), &input), format!("Hextile: tile 1 at 16,0 size 1x1: {msg}"));
    }

    #[test]
    fn rejects_subrectangles_without_a_foreground() {
        let mut h = Harness::new(40, 40);
        let msg = "no foreground colour for its subrectangles: the tile gives none and none carries \
                   over (not into a rectangle, nor past a Raw or SubrectsColoured tile)";
        let bg_subrects = [&[BACKGROUND_SPECIFIED | ANY_SUBRECTS][..], &px(BG), &[1], &sub(0, 0, 1, 1)].concat();
        assert_eq!(
            error(&mut h, Rect::new(0, 0, 4, 4), &bg_subrects),
            format!("Hextile: tile 0 at 0,0 size 4x4: {msg}")
        );
        let input = [&[RAW][..], &bgrx(&[FG; 16]), &bg_subrects].concat();
        assert_eq!(error(&mut h, Rect::new(0, 0, 20, 1), &input), format!("Hextile: tile 1 at 16,0 size 4x1: {msg}"));
        let coloured =
            [&[BG_COLOURED | FOREGROUND_SPECIFIED][..], &px(BG), &px(FG), &[1], &px(GREEN), &sub(0, 0, 1, 1)];
        let input = [&coloured.concat()[..], &[ANY_SUBRECTS, 1], &sub(0, 0, 1, 1)].concat();
        assert_eq!(error(&mut h, Rect::new(0, 0, 20, 1), &input), format!("Hextile: tile 1 at 16,0 size 4x1: {msg}"));
        // A tile without subrectangles passes the foreground on.
        let input =
            [&[BG_FG_SUBRECTS][..], &px(BG), &px(FG), &[0], &[0], &[ANY_SUBRECTS, 1], &sub(1, 0, 1, 1)].concat();
        assert_eq!(h.decode(HEXTILE, Rect::new(0, 0, 48, 1), &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.fb.get(32, 0), BG);
        assert_eq!(h.fb.get(33, 0), FG);
    }

    #[test]
    fn rejects_unknown_sub_encoding_bits() {
        let mut h = Harness::new(16, 16);
        let input = [&[0x40 | BACKGROUND_SPECIFIED][..], &px(BG)].concat();
        assert_eq!(
            error(&mut h, Rect::new(0, 0, 16, 16), &input),
            "Hextile: tile 0 at 0,0 size 16x16: unknown sub-encoding bits in 0x42"
        );
    }
}
