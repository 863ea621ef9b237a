//! TRLE (encoding 15, RFC 6143 §7.7.5): the rectangle in 16x16 tiles, left to right and top to bottom, each
//! a sub-encoding byte followed by raw pixels, a solid colour, a packed palette or run-length data. Decoded
//! tile by tile as bytes arrive.
//!
//! ZRLE ([`super::zrle`]) sends the same tile format in 64x64 tiles through zlib, without palette reuse;
//! [`decode_tile`] decodes a tile of either.
//!
//! Sub-encodings 127 and 129 reuse "the palette of the last tile that had a palette". A solid tile counts
//! as a one-colour palette; raw and plain-RLE tiles leave the palette alone. The palette is kept for one
//! rectangle: reusing it before a tile of the same rectangle had one is an error.

use super::{Ctx, Progress};
use crate::codec::{Parse, ReadError, Reader};
use crate::error::ProtocolError;
use crate::framebuffer::{put_pixel, Canvas, Rect};
use crate::pixel::{PixelReader, Rgb};

const TILE_SIZE: u16 = 16;

/// How far the rectangle is decoded: the tiles done, and the palette that carries to tiles that reuse it.
#[derive(Debug, Default)]
pub(crate) struct Tiles {
    done: u32,
    palette: Vec<Rgb>,
}

pub(crate) fn decode(rect: &Rect, input: &[u8], resume: &mut Tiles, ctx: &mut Ctx) -> Result<Progress, ProtocolError> {
    let grid = Grid::new(rect, TILE_SIZE);
    let mut palette = Palette::default();
    palette.set(&resume.palette);
    let mut used = 0;
    while resume.done < grid.count() {
        let tile = grid.tile(resume.done);
        let mut r = Reader::new(&input[used..]);
        match decode_tile(&mut r, &tile, &mut palette, Flavour::Trle, ctx.pixels, &mut ctx.fb) {
            Ok(new_palette) => {
                if new_palette {
                    resume.palette.clear();
                    resume.palette.extend_from_slice(palette.colours());
                }
                used += r.consumed();
                resume.done += 1;
            }
            // The tile is parsed again from its start when more bytes arrive; `palette` may hold a half-read
            // palette, but it is rebuilt from `resume.palette` on the next call.
            Err(ReadError::Incomplete) => return Ok(Progress::Partial(used)),
            Err(ReadError::Invalid(e)) => return Err(e),
        }
    }
    Ok(Progress::Done(used))
}

/// Which encoding a tile belongs to: its name in errors, and whether it may reuse a palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavour {
    Trle,
    Zrle,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::Trle => "TRLE",
            Flavour::Zrle => "ZRLE",
        }
    }
}

/// A rectangle cut into square tiles, numbered left to right, top to bottom; the last column and row are
/// narrower when the rectangle's size is not a multiple of the tile size.
pub(super) struct Grid {
    rect: Rect,
    size: u16,
    columns: u32,
    rows: u32,
}

impl Grid {
    pub fn new(rect: &Rect, size: u16) -> Self {
        Grid { rect: *rect, size, columns: u32::from(rect.w.div_ceil(size)), rows: u32::from(rect.h.div_ceil(size)) }
    }

    pub fn count(&self) -> u32 {
        self.columns * self.rows
    }

    /// Tile `i` (`i < count()`), in framebuffer coordinates.
    pub fn tile(&self, i: u32) -> Rect {
        // Both offsets are below the rectangle's width or height, so they fit in a u16.
        let dx = (i % self.columns) as u16 * self.size;
        let dy = (i / self.columns) as u16 * self.size;
        Rect::new(self.rect.x + dx, self.rect.y + dy, self.size.min(self.rect.w - dx), self.size.min(self.rect.h - dy))
    }
}

/// The colours of the last tile that had a palette (at most 127).
pub(super) struct Palette {
    colours: [Rgb; 127],
    len: usize,
}

impl Default for Palette {
    fn default() -> Self {
        Palette { colours: [0; 127], len: 0 }
    }
}

impl Palette {
    fn colours(&self) -> &[Rgb] {
        &self.colours[..self.len]
    }

    /// Replaces the palette with `colours` (at most 127 of them: [`Tiles`] only ever holds a palette this
    /// module stored).
    fn set(&mut self, colours: &[Rgb]) {
        self.len = colours.len().min(self.colours.len());
        self.colours[..self.len].copy_from_slice(&colours[..self.len]);
    }

    fn read(&mut self, r: &mut Reader, len: usize, pixels: &PixelReader) -> Parse<()> {
        let src = r.take(len * pixels.cpixel_size())?;
        for (colour, cpixel) in self.colours.iter_mut().zip(src.chunks_exact(pixels.cpixel_size())) {
            *colour = pixels.cpixel(cpixel);
        }
        self.len = len;
        Ok(())
    }

    fn get(&self, index: u8, tile: &Tile) -> Parse<Rgb> {
        match self.colours().get(usize::from(index)) {
            Some(&c) => Ok(c),
            None => Err(tile.error(format!("palette index {index} is outside the {}-colour palette", self.len))),
        }
    }
}

/// A tile being decoded, for error messages.
struct Tile<'a> {
    rect: &'a Rect,
    flavour: Flavour,
}

impl Tile<'_> {
    fn error(&self, what: impl std::fmt::Display) -> ReadError {
        let t = self.rect;
        ProtocolError::malformed(self.flavour.name(), format!("tile at {},{} ({}x{}): {what}", t.x, t.y, t.w, t.h))
            .into()
    }
}

/// Decodes one tile from `r` into `fb` at `rect` (inside the framebuffer). Returns whether the tile set a new
/// palette (which is then in `palette`). On `Incomplete`, pixels of the tile may have been written and
/// `palette` may have changed; the caller starts the tile again from its first byte.
pub(super) fn decode_tile(
    r: &mut Reader,
    rect: &Rect,
    palette: &mut Palette,
    flavour: Flavour,
    pixels: &PixelReader,
    fb: &mut Canvas,
) -> Parse<bool> {
    let tile = Tile { rect, flavour };
    let reuse = flavour == Flavour::Trle;
    let sub = r.u8()?;
    match sub {
        0 => {
            let w = usize::from(rect.w);
            let row_len = w * pixels.cpixel_size();
            let src = r.take(row_len * usize::from(rect.h))?;
            for (dy, row) in (0..rect.h).zip(src.chunks_exact(row_len)) {
                pixels.cpixels(row, fb.row_mut(rect.x, rect.y + dy, rect.w));
            }
            Ok(false)
        }
        1 => {
            let colour = pixels.cpixel(r.take(pixels.cpixel_size())?);
            fb.fill(rect, colour);
            palette.set(&[colour]);
            Ok(true)
        }
        2..=16 => {
            palette.read(r, usize::from(sub), pixels)?;
            packed(r, &tile, palette, fb)?;
            Ok(true)
        }
        127 if reuse => {
            require_palette(palette, &tile, sub)?;
            packed(r, &tile, palette, fb)?;
            Ok(false)
        }
        128 => {
            let mut runs = Runs::new(rect);
            while runs.left > 0 {
                let colour = pixels.cpixel(r.take(pixels.cpixel_size())?);
                let len = run_length(r, runs.left, &tile)?;
                runs.fill(fb, len, colour);
            }
            Ok(false)
        }
        129 if reuse => {
            require_palette(palette, &tile, sub)?;
            palette_runs(r, &tile, palette, fb)?;
            Ok(false)
        }
        130..=255 => {
            palette.read(r, usize::from(sub - 128), pixels)?;
            palette_runs(r, &tile, palette, fb)?;
            Ok(true)
        }
        _ => Err(tile.error(format!("sub-encoding {sub} is not used by {}", flavour.name()))),
    }
}

fn require_palette(palette: &Palette, tile: &Tile, sub: u8) -> Parse<()> {
    if palette.len == 0 {
        return Err(tile.error(format!(
            "sub-encoding {sub} reuses the previous tile's palette, but no earlier tile of this rectangle had one"
        )));
    }
    Ok(())
}

/// Packed palette indices, 1, 2 or 4 bits each by palette size, most significant bits first, each row padded
/// to a whole byte.
fn packed(r: &mut Reader, tile: &Tile, palette: &Palette, fb: &mut Canvas) -> Parse<()> {
    let bits = match palette.len {
        1..=2 => 1,
        3..=4 => 2,
        5..=16 => 4,
        n => return Err(tile.error(format!("packed pixels cannot index the previous tile's {n}-colour palette"))),
    };
    let rect = tile.rect;
    let per_byte = 8 / bits;
    let row_len = usize::from(rect.w).div_ceil(per_byte);
    let src = r.take(row_len * usize::from(rect.h))?;
    let mask = (1u8 << bits) - 1;
    for (dy, row) in (0..rect.h).zip(src.chunks_exact(row_len)) {
        let dst = fb.row_mut(rect.x, rect.y + dy, rect.w);
        for (group, &byte) in dst.chunks_mut(per_byte * 3).zip(row) {
            let mut shift = 8;
            for d in group.chunks_exact_mut(3) {
                shift -= bits;
                put_pixel(d, palette.get((byte >> shift) & mask, tile)?);
            }
        }
    }
    Ok(())
}

/// Palette RLE: an index per run, with the top bit set when a run length follows.
fn palette_runs(r: &mut Reader, tile: &Tile, palette: &Palette, fb: &mut Canvas) -> Parse<()> {
    let mut runs = Runs::new(tile.rect);
    while runs.left > 0 {
        let index = r.u8()?;
        let colour = palette.get(index & 0x7f, tile)?;
        let len = if index & 0x80 != 0 { run_length(r, runs.left, tile)? } else { 1 };
        runs.fill(fb, len, colour);
    }
    Ok(())
}

/// A run length: one more than the sum of its bytes, which continue while they are 255. A run may not go
/// past the `left` pixels of the tile, which also bounds how many bytes are read.
fn run_length(r: &mut Reader, left: usize, tile: &Tile) -> Parse<usize> {
    let mut len = 1;
    loop {
        let b = r.u8()?;
        len += usize::from(b);
        if len > left {
            let at_least = if b == 255 { "at least " } else { "" };
            return Err(tile
                .error(format!("a run of {at_least}{len} pixels goes past the end of the tile ({left} pixels left)")));
        }
        if b != 255 {
            return Ok(len);
        }
    }
}

/// Writes runs of one colour into a tile, row after row; a run may continue on the next row.
struct Runs<'a> {
    rect: &'a Rect,
    x: u16,
    y: u16,
    left: usize,
}

impl<'a> Runs<'a> {
    fn new(rect: &'a Rect) -> Self {
        Runs { rect, x: 0, y: 0, left: usize::from(rect.w) * usize::from(rect.h) }
    }

    /// `len` is at most `self.left` ([`run_length`] checks it).
    fn fill(&mut self, fb: &mut Canvas, len: usize, colour: Rgb) {
        self.left -= len;
        let mut len = len;
        while len > 0 {
            let n = (self.rect.w - self.x).min(u16::try_from(len).unwrap_or(u16::MAX));
            fb.fill(&Rect::new(self.rect.x + self.x, self.rect.y + self.y, n, 1), colour);
            len -= usize::from(n);
            self.x += n;
            if self.x == self.rect.w {
                self.x = 0;
                self.y += 1;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::testutil::Harness;
    use crate::encoding::TRLE;
    use crate::pixel::PixelFormat;

    /// 3-byte CPIXELs of the BGRX format.
    pub(crate) fn cpx(px: &[Rgb]) -> Vec<u8> {
        px.iter().flat_map(|p| p.to_le_bytes()[..3].to_vec()).collect()
    }

    /// Tile data with the offset where each tile ends.
    #[derive(Default)]
    pub(crate) struct Tiles {
        pub bytes: Vec<u8>,
        pub ends: Vec<usize>,
    }

    impl Tiles {
        pub fn tile(&mut self, parts: &[&[u8]]) -> &mut Self {
            for p in parts {
                self.bytes.extend_from_slice(p);
            }
            self.ends.push(self.bytes.len());
            self
        }
    }

    const A: Rgb = 0x112233;
    const B: Rgb = 0xa0b0c0;
    const C: Rgb = 0x00ff7f;
    const D: Rgb = 0xfedcba;
    const E: Rgb = 0x010203;

    fn err(h: &mut Harness, rect: Rect, input: &[u8]) -> String {
        h.decode(TRLE, rect, input).unwrap_err().to_string()
    }

    #[test]
    fn raw_tile() {
        let mut h = Harness::new(4, 4);
        let px = [A, B, C, D, E, 0xffffff];
        let r = Rect::new(1, 1, 3, 2);
        let input = [&[0][..], &cpx(&px)].concat();
        assert_eq!(h.decode(TRLE, r, &input), Ok(Progress::Done(19)));
        assert_eq!(h.pixels_of(r), px);
        assert_eq!(h.fb.get(0, 1), 0);
        assert_eq!(h.fb.get(1, 3), 0);
    }

    #[test]
    fn solid_tiles_at_the_edges_of_a_rectangle() {
        // 20x18: tiles 16x16, 4x16, 16x2 and 4x2.
        let mut h = Harness::new(22, 20);
        let r = Rect::new(1, 2, 20, 18);
        let mut t = Tiles::default();
        for c in [A, B, C, D] {
            t.tile(&[&[1], &cpx(&[c])]);
        }
        assert_eq!(h.decode(TRLE, r, &t.bytes), Ok(Progress::Done(16)));
        for y in 0..20u16 {
            for x in 0..22u16 {
                let want = match (x, y) {
                    (0 | 21, _) | (_, 0 | 1) => 0,
                    (1..=16, 2..=17) => A,
                    (17..=20, 2..=17) => B,
                    (1..=16, _) => C,
                    _ => D,
                };
                assert_eq!(h.fb.get(x, y), want, "{x},{y}");
            }
        }
    }

    #[test]
    fn packed_one_bit_rows_are_padded() {
        // 5 pixels a row take one byte: bits 7..3, bits 2..0 are padding (set here, and ignored).
        let mut h = Harness::new(5, 3);
        let r = Rect::new(0, 0, 5, 3);
        let input = [&[2][..], &cpx(&[A, B]), &[0b1011_0111, 0b0100_1000, 0b1111_1111]].concat();
        assert_eq!(h.decode(TRLE, r, &input), Ok(Progress::Done(10)));
        assert_eq!(h.pixels_of(r), [B, A, B, B, A, A, B, A, A, B, B, B, B, B, B]);
    }

    #[test]
    fn packed_two_bit_indices() {
        // 3 colours: 2 bits; 5 pixels a row take 2 bytes.
        let mut h = Harness::new(5, 2);
        let r = Rect::new(0, 0, 5, 2);
        let input =
            [&[3][..], &cpx(&[A, B, C]), &[0b00_01_10_00, 0b01_11_11_11, 0b10_10_01_01, 0b00_00_00_00]].concat();
        assert_eq!(h.decode(TRLE, r, &input), Ok(Progress::Done(14)));
        assert_eq!(h.pixels_of(r), [A, B, C, A, B, C, C, B, B, A]);
    }

    #[test]
    fn packed_four_bit_indices() {
        // 5 colours: 4 bits; 3 pixels a row take 2 bytes.
        let mut h = Harness::new(3, 2);
        let r = Rect::new(0, 0, 3, 2);
        let input = [&[5][..], &cpx(&[A, B, C, D, E]), &[0x41, 0x2f, 0x03, 0x40]].concat();
        assert_eq!(h.decode(TRLE, r, &input), Ok(Progress::Done(20)));
        assert_eq!(h.pixels_of(r), [E, B, C, A, D, E]);
    }

    #[test]
    fn plain_rle_runs_cross_rows() {
        // A 4x3 tile: 6 of A (ending in the middle of row 1), 1 of B, 5 of C.
        let mut h = Harness::new(4, 3);
        let r = Rect::new(0, 0, 4, 3);
        let input = [&[128][..], &cpx(&[A]), &[5], &cpx(&[B]), &[0], &cpx(&[C]), &[4]].concat();
        assert_eq!(h.decode(TRLE, r, &input), Ok(Progress::Done(13)));
        assert_eq!(h.pixels_of(r), [A, A, A, A, A, A, B, C, C, C, C, C]);
    }

    #[test]
    fn long_run_lengths() {
        // 16x16: 1 + 255 pixels ([0], [254]); then a run of 256 ([255, 0]); then 255 + 1 ([254], [0]).
        let mut h = Harness::new(16, 48);
        let mut t = Tiles::default();
        t.tile(&[&[128], &cpx(&[A]), &[0], &cpx(&[B]), &[254]]);
        t.tile(&[&[128], &cpx(&[C]), &[255, 0]]);
        t.tile(&[&[130], &cpx(&[D, E]), &[0x80, 254, 0x01]]);
        assert_eq!(h.decode(TRLE, Rect::new(0, 0, 16, 48), &t.bytes), Ok(Progress::Done(t.bytes.len())));
        let px = h.fb.pixels();
        assert_eq!(px[0], A);
        assert!(px[1..256].iter().all(|&p| p == B));
        assert!(px[256..512].iter().all(|&p| p == C));
        assert!(px[512..767].iter().all(|&p| p == D));
        assert_eq!(px[767], E);
    }

    #[test]
    fn palette_rle() {
        // 3x3, palette [A, B, C]: C, A x4 (crossing a row), B, C x3 (crossing a row).
        let mut h = Harness::new(3, 3);
        let r = Rect::new(0, 0, 3, 3);
        let input = [&[131][..], &cpx(&[A, B, C]), &[2, 0x80, 3, 1, 0x82, 2]].concat();
        assert_eq!(h.decode(TRLE, r, &input), Ok(Progress::Done(16)));
        assert_eq!(h.pixels_of(r), [C, A, A, A, A, B, C, C, C]);
    }

    #[test]
    fn palette_rle_with_127_colours() {
        let colours: Vec<Rgb> = (0..127).map(|i| i * 0x020100).collect();
        let mut h = Harness::new(5, 1);
        let r = Rect::new(0, 0, 5, 1);
        let input = [&[255][..], &cpx(&colours), &[126, 0x80 | 100, 1, 64, 0]].concat();
        assert_eq!(h.decode(TRLE, r, &input), Ok(Progress::Done(1 + 127 * 3 + 5)));
        assert_eq!(h.pixels_of(r), [colours[126], colours[100], colours[100], colours[64], colours[0]]);
        let e = err(&mut h, r, &[&[255][..], &cpx(&colours), &[127]].concat());
        assert_eq!(e, "TRLE: tile at 0,0 (5x1): palette index 127 is outside the 127-colour palette");
    }

    #[test]
    fn sixteen_bit_cpixels_are_pixels() {
        // 5-5-5 in 16 bits, little-endian: red 0x7c00, green 0x03e0, blue 0x001f; a CPIXEL is 2 bytes.
        let pf = PixelFormat::for_depth(16).unwrap();
        let mut h = Harness::with_format(4, 2, pf);
        let r = Rect::new(0, 0, 4, 1);
        let raw = [0, 0x00, 0x7c, 0xe0, 0x03, 0x1f, 0x00, 0xff, 0x7f, 0xaa];
        assert_eq!(h.decode(TRLE, r, &raw[..8]), Ok(Progress::Partial(0)));
        assert_eq!(h.decode(TRLE, r, &raw), Ok(Progress::Done(9)));
        assert_eq!(h.pixels_of(r), [0xff0000, 0x00ff00, 0x0000ff, 0xffffff]);

        let r = Rect::new(0, 0, 3, 2);
        assert_eq!(h.decode(TRLE, r, &[128, 0x1f, 0x00, 3, 0x00, 0x7c, 1]), Ok(Progress::Done(7)));
        assert_eq!(h.pixels_of(r), [0x0000ff, 0x0000ff, 0x0000ff, 0x0000ff, 0xff0000, 0xff0000]);

        let r = Rect::new(1, 1, 3, 1);
        assert_eq!(h.decode(TRLE, r, &[130, 0x00, 0x7c, 0xe0, 0x03, 0x81, 1, 0]), Ok(Progress::Done(8)));
        assert_eq!(h.pixels_of(r), [0x00ff00, 0x00ff00, 0xff0000]);
    }

    /// Tiles of every sub-encoding in a 40x20 rectangle (3x2 tiles: 16, 16, 8 wide; 16, 4 high), with
    /// palette reuse and the reused palette surviving a raw and a plain-RLE tile.
    fn all_kinds() -> (Rect, Tiles, Vec<Rgb>) {
        let r = Rect::new(2, 1, 40, 20);
        let mut t = Tiles::default();
        let raw: Vec<Rgb> = (0..256u32).map(|i| i.wrapping_mul(0x9e3779b9) & 0xffffff).collect();
        // Tile 0 (16x16): packed, 2 colours, alternate columns.
        t.tile(&[&[2], &cpx(&[A, B]), &[0b0101_0101; 32]]);
        // Tile 1 (16x16): raw.
        t.tile(&[&[0], &cpx(&raw)]);
        // Tile 2 (8x16): packed reusing [A, B] from tile 0: alternate rows.
        t.tile(&[&[127], &[0xff, 0x00].repeat(8)]);
        // Tile 3 (16x4): plain RLE, 20 of C then 44 of D.
        t.tile(&[&[128], &cpx(&[C]), &[19], &cpx(&[D]), &[43]]);
        // Tile 4 (16x4): palette RLE reusing [A, B]: 63 of B then 1 of A.
        t.tile(&[&[129], &[0x81, 62, 0]]);
        // Tile 5 (8x4): palette RLE with 4 colours, then reuse would follow from here.
        t.tile(&[&[132], &cpx(&[E, D, C, B]), &[0x83, 30, 0]]);

        let mut want = vec![0; 40 * 20];
        for y in 0..20 {
            for x in 0..40 {
                want[y * 40 + x] = match (x, y) {
                    (0..=15, 0..=15) => [A, B][x % 2],
                    (16..=31, 0..=15) => raw[y * 16 + x - 16],
                    (32..=39, 0..=15) => [B, A][y % 2],
                    (0..=15, _) if (y - 16) * 16 + x < 20 => C,
                    (0..=15, _) => D,
                    (16..=31, _) if (y, x) == (19, 31) => A,
                    (16..=31, _) => B,
                    (_, _) if (y, x) == (19, 39) => E,
                    _ => B,
                };
            }
        }
        (r, t, want)
    }

    #[test]
    fn every_sub_encoding_and_palette_reuse() {
        let (r, t, want) = all_kinds();
        let mut h = Harness::new(44, 22);
        assert_eq!(h.decode(TRLE, r, &t.bytes), Ok(Progress::Done(t.bytes.len())));
        assert_eq!(h.pixels_of(r), want);
        assert_eq!(h.fb.get(1, 1), 0);
        assert_eq!(h.fb.get(42, 20), 0);
    }

    #[test]
    fn trickled_input_decodes_like_one_shot() {
        let (r, t, want) = all_kinds();
        let mut h = Harness::new(44, 22);
        assert_eq!(h.decode_trickled(TRLE, r, &t.bytes), Ok(t.bytes.len()));
        assert_eq!(h.pixels_of(r), want);
    }

    #[test]
    fn resume_keeps_the_palette_between_calls() {
        // 48x16: a packed tile with [A, B], a solid C (a palette of its own), a packed tile reusing [C].
        let mut h = Harness::new(48, 16);
        let r = Rect::new(0, 0, 48, 16);
        let first = [&[2][..], &cpx(&[A, B]), &[0xff; 32], &[1], &cpx(&[C])].concat();
        let second = [&[127][..], &[0; 32]].concat();
        let mut resume = super::Tiles::default();
        let mut ctx = h.ctx();
        let input = [&first[..], &second[..5]].concat();
        assert_eq!(decode(&r, &input, &mut resume, &mut ctx), Ok(Progress::Partial(first.len())));
        assert_eq!((resume.done, &resume.palette[..]), (2, &[C][..]));
        assert_eq!(decode(&r, &second, &mut resume, &mut ctx), Ok(Progress::Done(33)));
        assert_eq!(h.pixels_of(Rect::new(0, 15, 48, 1)), [[B; 16], [C; 16], [C; 16]].concat());
    }

    #[test]
    fn truncated_input_waits_at_every_cut() {
        let (r, t, _) = all_kinds();
        for cut in 0..t.bytes.len() {
            let mut h = Harness::new(44, 22);
            let complete = t.ends.iter().copied().filter(|&e| e <= cut).max().unwrap_or(0);
            assert_eq!(h.decode(TRLE, r, &t.bytes[..cut]), Ok(Progress::Partial(complete)), "cut at {cut}");
        }
    }

    #[test]
    fn empty_rectangle_needs_no_bytes() {
        let mut h = Harness::new(4, 4);
        assert_eq!(h.decode(TRLE, Rect::new(1, 1, 0, 3), &[1, 2, 3]), Ok(Progress::Done(0)));
    }

    #[test]
    fn palette_index_out_of_range() {
        let mut h = Harness::new(20, 4);
        let r = Rect::new(0, 0, 3, 1);
        let e = err(&mut h, r, &[&[3][..], &cpx(&[A, B, C]), &[0b00_01_11_00]].concat());
        assert_eq!(e, "TRLE: tile at 0,0 (3x1): palette index 3 is outside the 3-colour palette");
        let e = err(&mut h, r, &[&[130][..], &cpx(&[A, B]), &[1, 0x85, 0]].concat());
        assert_eq!(e, "TRLE: tile at 0,0 (3x1): palette index 5 is outside the 2-colour palette");
        // The second tile of a 20x1 rectangle reuses the solid tile's one-colour palette.
        let e = err(&mut h, Rect::new(0, 0, 20, 1), &[&[1][..], &cpx(&[A]), &[127, 0b0100_0000]].concat());
        assert_eq!(e, "TRLE: tile at 16,0 (4x1): palette index 1 is outside the 1-colour palette");
    }

    #[test]
    fn runs_past_the_end_of_the_tile() {
        let mut h = Harness::new(4, 4);
        let r = Rect::new(0, 0, 4, 2);
        let e = err(&mut h, r, &[&[128][..], &cpx(&[A]), &[3], &cpx(&[B]), &[4]].concat());
        assert_eq!(e, "TRLE: tile at 0,0 (4x2): a run of 5 pixels goes past the end of the tile (4 pixels left)");
        // A run is refused as soon as its length bytes pass the end, without waiting for the rest.
        let e = err(&mut h, r, &[&[130][..], &cpx(&[A, B]), &[0x80, 255]].concat());
        assert_eq!(
            e,
            "TRLE: tile at 0,0 (4x2): a run of at least 256 pixels goes past the end of the tile (8 pixels left)"
        );
    }

    #[test]
    fn unused_sub_encodings() {
        let mut h = Harness::new(4, 4);
        for sub in [17, 100, 126] {
            let e = err(&mut h, Rect::new(0, 0, 4, 4), &[sub]);
            assert_eq!(e, format!("TRLE: tile at 0,0 (4x4): sub-encoding {sub} is not used by TRLE"));
        }
    }

    #[test]
    fn palette_reuse_needs_an_earlier_palette_in_the_rectangle() {
        let mut h = Harness::new(40, 4);
        for sub in [127, 129] {
            let e = err(&mut h, Rect::new(0, 0, 4, 4), &[sub, 0, 0, 0, 0]);
            assert!(
                e.contains(&format!("sub-encoding {sub} reuses the previous tile's palette, but no earlier")),
                "{e}"
            );
        }
        // Not from an earlier rectangle either.
        let first = [&[2][..], &cpx(&[A, B]), &[0; 4]].concat();
        assert_eq!(h.decode(TRLE, Rect::new(0, 0, 4, 4), &first), Ok(Progress::Done(11)));
        assert!(err(&mut h, Rect::new(4, 0, 4, 4), &[127, 0, 0, 0, 0]).contains("no earlier tile"));
        // Raw and plain RLE tiles have no palette: reuse after them alone is refused.
        let input = [&[0][..], &cpx(&[A; 16]), &[128], &cpx(&[B]), &[15], &[129, 0x80, 2]].concat();
        let e = err(&mut h, Rect::new(0, 0, 36, 1), &input);
        assert!(e.starts_with("TRLE: tile at 32,0 (4x1): sub-encoding 129 reuses"), "{e}");
    }

    #[test]
    fn packed_reuse_of_a_large_palette() {
        let mut h = Harness::new(32, 1);
        let colours: Vec<Rgb> = (0..17).collect();
        let input = [&[128 + 17][..], &cpx(&colours), &[0x80, 15], &[127, 0, 0]].concat();
        let e = err(&mut h, Rect::new(0, 0, 32, 1), &input);
        assert_eq!(e, "TRLE: tile at 16,0 (16x1): packed pixels cannot index the previous tile's 17-colour palette");
    }
}
