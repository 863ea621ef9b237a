//! ZRLE (encoding 16, RFC 6143 §7.7.6): `u32 length`, then that many bytes of the connection's ZRLE zlib
//! stream, which inflate to the rectangle in 64x64 tiles of the TRLE tile format ([`super::trle`]) without
//! palette reuse. Streamed ([`decode_chunk`]): a tile is decoded once as many inflated bytes as it can
//! take are there (so that it is parsed once, not again for every few bytes that arrive), or when the chunk
//! ends; the tiles must use up the inflated data exactly.

use super::trle::{decode_tile, Flavour, Grid, Palette};
use super::zlib::{decode_chunk, Chunk, Spec, Units};
use super::{Ctx, Progress};
use crate::codec::{ReadError, Reader};
use crate::error::ProtocolError;
use crate::framebuffer::{Canvas, Rect};
use crate::pixel::PixelReader;

const TILE_SIZE: u16 = 64;

pub(crate) fn decode(rect: &Rect, input: &[u8], chunk: &mut Chunk, ctx: &mut Ctx) -> Result<Progress, ProtocolError> {
    let max_inflated = max_inflated(rect, ctx.pixels.cpixel_size() as u64);
    let spec = Spec { encoding: "ZRLE", what: "ZRLE data", max_inflated, stream: |s| &mut s.zrle };
    decode_chunk(input, chunk, ctx, &spec, &ZrleTiles(Grid::new(rect, TILE_SIZE)))
}

/// ZRLE's units: the rectangle's tiles.
struct ZrleTiles(Grid);

impl Units for ZrleTiles {
    fn count(&self) -> u32 {
        self.0.count()
    }

    fn decode(
        &self,
        data: &[u8],
        all: bool,
        unit: &mut u32,
        pixels: &PixelReader,
        fb: &mut Canvas,
    ) -> Result<usize, ProtocolError> {
        // No palette reuse in ZRLE: a tile's palette is its own.
        let mut palette = Palette::default();
        let mut used = 0;
        while *unit < self.0.count() {
            let tile = self.0.tile(*unit);
            // A tile is parsed once its bytes are surely there, not again and again as they trickle in.
            if !all && data.len() - used < max_tile_len(&tile, pixels.cpixel_size()) {
                break;
            }
            let mut r = Reader::new(&data[used..]);
            match decode_tile(&mut r, &tile, &mut palette, Flavour::Zrle, pixels, fb) {
                Ok(_) => {
                    used += r.consumed();
                    *unit += 1;
                }
                // Only with `all` (or with a tile longer than it can be); `short` says what is wrong.
                Err(ReadError::Incomplete) => break,
                Err(ReadError::Invalid(e)) => return Err(e),
            }
        }
        Ok(used)
    }

    fn short(&self, inflated: u64, unit: u32) -> ProtocolError {
        let tile = self.0.tile(unit);
        ProtocolError::malformed(
            "ZRLE",
            format!("the {inflated} bytes of inflated data end inside the tile at {},{}", tile.x, tile.y),
        )
    }

    fn name(&self) -> &'static str {
        "tile"
    }
}

/// The most bytes a tile can take: plain RLE with one-pixel runs (a CPIXEL and a length byte per pixel) or
/// palette RLE with 127 colours and one-pixel runs of an index byte and a length byte.
fn max_tile_len(tile: &Rect, cpixel: usize) -> usize {
    let area = usize::from(tile.w) * usize::from(tile.h);
    1 + (area * (cpixel + 1)).max(127 * cpixel + 2 * area)
}

/// The most inflated bytes the rectangle's tiles can take. A tile's largest form is plain RLE with one-pixel
/// runs (a CPIXEL and a length byte per pixel) or, for small tiles, palette RLE with 127 colours and an
/// index byte per pixel; raw, solid and packed tiles are smaller. Add the sub-encoding byte.
fn max_inflated(rect: &Rect, cpixel: u64) -> u64 {
    // Full tiles, and the narrower ones of the last column or row.
    let split = |len: u16| {
        let size = u64::from(TILE_SIZE);
        [(u64::from(len / TILE_SIZE), size), (u64::from(len % TILE_SIZE != 0), u64::from(len % TILE_SIZE))]
    };
    let mut total = 0;
    for (columns, w) in split(rect.w) {
        for (rows, h) in split(rect.h) {
            let area = w * h;
            // The larger of plain RLE with runs of one (a pixel and a length byte each) and palette RLE
            // with a full palette and runs of one (an index and a length byte each).
            total += columns * rows * (1 + (area * (cpixel + 1)).max(127 * cpixel + 2 * area));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Put;
    use crate::decode::testutil::{Deflater, Harness};
    use crate::decode::trle::tests::{cpx, Tiles};
    use crate::decode::zlib::tests::{cut, decode_in_pieces};
    use crate::decode::zlib::WINDOW;
    use crate::encoding::ZRLE;
    use crate::pixel::{PixelFormat, Rgb};

    const A: Rgb = 0x112233;
    const B: Rgb = 0xa0b0c0;
    const C: Rgb = 0x00ff7f;
    const D: Rgb = 0xfedcba;
    const E: Rgb = 0x010203;

    /// A length-prefixed ZRLE chunk. The data is flushed every 16 KiB, as a server may do between tiles
    /// (and because `Deflater::chunk` leaves output behind when one flush makes more than 64 KiB).
    fn chunk(d: &mut Deflater, raw: &[u8]) -> Vec<u8> {
        let z: Vec<u8> = raw.chunks(16 << 10).flat_map(|piece| d.chunk(piece)).collect();
        let mut v = Vec::new();
        v.put_u32(z.len() as u32);
        v.extend_from_slice(&z);
        v
    }

    /// Pixels that do not compress (xorshift).
    fn noise(n: usize, seed: u32) -> Vec<Rgb> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x & 0xff_ffff
            })
            .collect()
    }

    /// The error from decoding `tiles` into `rect` on a new connection, the same when the input trickles in.
    fn err(rect: Rect, tiles: &[u8]) -> String {
        let input = chunk(&mut Deflater::default(), tiles);
        let mut h = Harness::new(rect.right() as u16, rect.bottom() as u16);
        let e = h.decode(ZRLE, rect, &input).unwrap_err().to_string();
        let mut h = Harness::new(rect.right() as u16, rect.bottom() as u16);
        let trickled = h.decode_trickled(ZRLE, rect, &input).unwrap_err().to_string();
        // Bytes after the last tile are refused as soon as one is there, before all of them are.
        if !trickled.contains("left after the last tile") {
            assert_eq!(trickled, e);
        }
        e
    }

    /// A 70x66 rectangle: a raw 64x64 tile, a packed 6x64 tile, a plain-RLE 64x2 tile and a palette-RLE
    /// 6x2 tile.
    fn edge_tiles() -> (Rect, Vec<u8>, Vec<Rgb>) {
        let raw = noise(64 * 64, 7);
        let mut t = Tiles::default();
        t.tile(&[&[0], &cpx(&raw)]);
        // Indices 0,1,2,0,1,2 in 2 bits: 12 bits and 4 bits of padding, set here.
        t.tile(&[&[3], &cpx(&[C, D, E]), &[0b0001_1000, 0b0110_1111].repeat(64)]);
        // 100 of A, crossing from row 0 into row 1, then 28 of B.
        t.tile(&[&[128], &cpx(&[A]), &[99], &cpx(&[B]), &[27]]);
        // 11 of D, crossing into row 1, then 1 of C.
        t.tile(&[&[130], &cpx(&[C, D]), &[0x81, 10, 0]]);
        let mut want = vec![0; 70 * 66];
        for y in 0..66 {
            for x in 0..70 {
                want[y * 70 + x] = match (x, y) {
                    (0..=63, 0..=63) => raw[y * 64 + x],
                    (_, 0..=63) => [C, D, E][(x - 64) % 3],
                    (0..=63, _) if (y - 64) * 64 + x < 100 => A,
                    (0..=63, _) => B,
                    (69, 65) => C,
                    _ => D,
                };
            }
        }
        (Rect::new(1, 1, 70, 66), t.bytes, want)
    }

    #[test]
    fn every_sub_encoding_and_edge_tiles() {
        let (r, tiles, want) = edge_tiles();
        let input = chunk(&mut Deflater::default(), &tiles);
        let mut h = Harness::new(72, 68);
        assert_eq!(h.decode(ZRLE, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), want);
        assert_eq!(h.fb.get(0, 0), 0);
        assert_eq!(h.fb.get(71, 67), 0);
    }

    #[test]
    fn solid_and_packed_tiles_in_a_narrow_rectangle() {
        // 5x130: a solid 5x64 tile, a 1-bit packed 5x64 tile (one byte a row, 3 bits of padding) and a
        // 4-bit packed 5x2 tile (three bytes a row, 4 bits of padding).
        let mut t = Tiles::default();
        t.tile(&[&[1], &cpx(&[E])]);
        t.tile(&[&[2], &cpx(&[A, B]), &[0b1001_0111; 64]]);
        t.tile(&[&[5], &cpx(&[A, B, C, D, E]), &[0x01, 0x23, 0x4f, 0x43, 0x21, 0x0f]]);
        let input = chunk(&mut Deflater::default(), &t.bytes);
        let mut h = Harness::new(5, 130);
        let r = Rect::new(0, 0, 5, 130);
        assert_eq!(h.decode(ZRLE, r, &input), Ok(Progress::Done(input.len())));
        let px = h.pixels_of(r);
        assert_eq!(px[..320], vec![E; 320]);
        assert_eq!(px[320..640], [B, A, A, B, A].repeat(64));
        assert_eq!(px[640..], [A, B, C, D, E, E, D, C, B, A]);
    }

    #[test]
    fn the_stream_carries_across_rectangles() {
        let mut d = Deflater::default();
        let first = chunk(&mut d, &[&[1][..], &cpx(&[A])].concat());
        let second = chunk(&mut d, &[&[128][..], &cpx(&[B]), &[1], &cpx(&[C]), &[5]].concat());
        let mut h = Harness::new(4, 2);
        let r = Rect::new(0, 0, 4, 2);
        assert_eq!(h.decode(ZRLE, r, &first), Ok(Progress::Done(first.len())));
        assert_eq!(h.pixels_of(r), [A; 8]);
        assert_eq!(h.decode(ZRLE, r, &second), Ok(Progress::Done(second.len())));
        assert_eq!(h.pixels_of(r), [B, B, C, C, C, C, C, C]);
        let e = Harness::new(4, 2).decode(ZRLE, r, &second).unwrap_err();
        assert!(e.to_string().starts_with("ZRLE: corrupt zlib data"), "{e}");
    }

    #[test]
    fn sixteen_bit_cpixels_are_pixels() {
        let pf = PixelFormat::for_depth(16).unwrap();
        let mut h = Harness::with_format(3, 2, pf);
        let r = Rect::new(0, 0, 3, 2);
        let raw = [0, 0x00, 0x7c, 0xe0, 0x03, 0x1f, 0x00, 0xff, 0x7f, 0x00, 0x00, 0x10, 0x42];
        let input = chunk(&mut Deflater::default(), &raw);
        assert_eq!(h.decode(ZRLE, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), [0xff0000, 0x00ff00, 0x0000ff, 0xffffff, 0x000000, 0x848484]);
    }

    #[test]
    fn trickled_input_decodes_like_one_shot() {
        let (r, tiles, want) = edge_tiles();
        let input = chunk(&mut Deflater::default(), &tiles);
        let mut h = Harness::new(72, 68);
        assert_eq!(h.decode_trickled(ZRLE, r, &input), Ok(input.len()));
        assert_eq!(h.pixels_of(r), want);
        assert_eq!(h.fb.get(0, 0), 0);
        assert_eq!(h.fb.get(71, 67), 0);
    }

    #[test]
    fn trickled_input_carries_the_stream_across_rectangles() {
        let mut d = Deflater::default();
        let (r, tiles, want) = edge_tiles();
        let first = chunk(&mut d, &tiles);
        let second = chunk(&mut d, &[&[1][..], &cpx(&[A])].concat());
        let mut h = Harness::new(72, 68);
        assert_eq!(h.decode_trickled(ZRLE, r, &first), Ok(first.len()));
        assert_eq!(h.pixels_of(r), want);
        assert_eq!(h.decode_trickled(ZRLE, Rect::new(8, 4, 64, 64), &second), Ok(second.len()));
        assert_eq!(h.pixels_of(Rect::new(8, 4, 64, 64)), vec![A; 64 * 64]);
        assert_eq!(h.fb.get(7, 4), want[6 + 3 * 70]);
    }

    /// `rect` in raw tiles of `px` (the rectangle's pixels, row after row).
    fn raw_tiles(r: Rect, px: &[Rgb]) -> Vec<u8> {
        let grid = Grid::new(&r, TILE_SIZE);
        let mut tiles = Vec::new();
        for i in 0..grid.count() {
            let t = grid.tile(i);
            tiles.push(0);
            for y in t.y - r.y..t.y - r.y + t.h {
                let start = usize::from(y) * usize::from(r.w) + usize::from(t.x - r.x);
                tiles.extend(cpx(&px[start..start + usize::from(t.w)]));
            }
        }
        tiles
    }

    #[test]
    fn a_large_rectangle_keeps_only_a_window() {
        // 1024x768 of noise: 2.4 MB of inflated tiles, offered 64 KiB at a time.
        let r = Rect::new(0, 0, 1024, 768);
        let px = noise(1024 * 768, 13);
        let input = chunk(&mut Deflater::default(), &raw_tiles(r, &px));
        assert!(input.len() > 2 << 20);
        let mut h = Harness::new(1024, 768);
        let mut decoded = Vec::new();
        let used = decode_in_pieces(&mut h, ZRLE, r, &input, 64 << 10, |chunk, h| {
            assert!(chunk.window() <= WINDOW, "window of {}", chunk.window());
            // Less than the most a tile can take (1 + 64 * 64 * 4 bytes) is kept.
            assert!(chunk.pending().len() < 16385, "pending {}", chunk.pending().len());
            assert!(h.scratch.bytes.capacity() == 0, "the window is all the buffering there is");
            decoded.push(chunk.done());
        });
        assert_eq!(used, Ok(input.len()));
        assert_eq!(h.fb.pixels(), px);
        // Tiles were decoded as the pieces arrived (about five a piece), not at the end.
        assert!(decoded.windows(2).all(|p| p[0] < p[1]), "{decoded:?}");
        assert!(decoded[0] >= 4 && decoded.len() > 30, "{decoded:?}");
        assert_eq!(h.scratch.bytes.capacity(), WINDOW, "the window goes back to the scratch buffer");
    }

    #[test]
    fn compressed_data_ending_inside_a_tile() {
        // 130x10: tiles 64x10, 64x10, 2x10 of 1921, 1921 and 61 bytes; cut the zlib data in the second.
        let r = Rect::new(0, 0, 130, 10);
        let px = noise(1300, 17);
        let input = chunk(&mut Deflater::default(), &raw_tiles(r, &px));
        let (short, inflated) = cut(&input, (input.len() - 4) / 2);
        assert!((1921..3842).contains(&inflated), "{inflated}");
        let want = format!("ZRLE: the {inflated} bytes of inflated data end inside the tile at 64,0");
        let e = Harness::new(130, 10).decode(ZRLE, r, &short).unwrap_err();
        assert_eq!(e.to_string(), want);
        let mut h = Harness::new(130, 10);
        let e = h.decode_trickled(ZRLE, r, &short).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert_eq!(
            h.pixels_of(Rect::new(0, 0, 64, 10)),
            px.chunks(130).flat_map(|row| &row[..64]).copied().collect::<Vec<_>>()
        );
        let e = Harness::new(130, 10).decode(ZRLE, r, &[0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.to_string(), "ZRLE: the 0 bytes of inflated data end inside the tile at 0,0");
    }

    #[test]
    fn noise_in_raw_tiles() {
        // 200x130: 78 KB of tiles, more than the window holds.
        let r = Rect::new(3, 2, 200, 130);
        let px = noise(200 * 130, 11);
        let tiles = raw_tiles(r, &px);
        let input = chunk(&mut Deflater::default(), &tiles);
        let mut h = Harness::new(210, 140);
        assert_eq!(h.decode(ZRLE, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), px);
        assert!(tiles.len() > WINDOW);
        assert_eq!(h.scratch.bytes.len(), WINDOW);
        let mut h = Harness::new(210, 140);
        assert_eq!(h.decode_trickled(ZRLE, r, &input), Ok(input.len()));
        assert_eq!(h.pixels_of(r), px);
    }

    #[test]
    fn hostile_lengths_fail_at_once() {
        let mut h = Harness::new(64, 64);
        let r = Rect::new(0, 0, 64, 64);
        let e = h.decode(ZRLE, r, &[0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(e, ProtocolError::TooLarge { what: "ZRLE data", size: 0xffff_ffff, limit: 256 << 20 });
        // A 1x1 tile inflates to at most 1 + 127 * 3 + 2 bytes, which no zlib stream needs more than 1462 for.
        let e = h.decode(ZRLE, Rect::new(0, 0, 1, 1), &[0, 0, 0x05, 0xb7]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ZRLE: zlib data of 1463 bytes is more than the 1462 that 384 bytes of rectangle data can compress to"
        );
        // A valid length is used at once; the zlib data may follow in pieces.
        assert_eq!(h.decode(ZRLE, Rect::new(0, 0, 1, 1), &[0, 0, 0x05, 0xb5]), Ok(Progress::Partial(4)));
        assert_eq!(h.decode(ZRLE, Rect::new(0, 0, 1, 1), &[0, 0, 0x05]), Ok(Progress::Partial(0)));
    }

    #[test]
    fn a_full_palette_with_every_run_spelled_out_fits_the_bound() {
        // 127 colours, then each of the 4 pixels as an index with its run-length byte (runs of one).
        let palette: Vec<Rgb> = (0..127).map(|i| i * 0x020202).collect();
        let mut tile = vec![255];
        tile.extend(cpx(&palette));
        for i in 0..4u8 {
            tile.extend([0x80 | (i * 30), 0]);
        }
        assert_eq!(tile.len() as u64, max_inflated(&Rect::new(0, 0, 2, 2), 3));
        let mut h = Harness::new(2, 2);
        let input = chunk(&mut Deflater::default(), &tile);
        assert_eq!(h.decode(ZRLE, Rect::new(0, 0, 2, 2), &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(Rect::new(0, 0, 2, 2)), [0, 30 * 0x020202, 60 * 0x020202, 90 * 0x020202]);
    }

    #[test]
    fn worst_case_inflated_sizes() {
        // 64x64 tiles of 3-byte CPIXELs: 1 + 4096 * 4 each; a 1x1 tile: 1 + 127 * 3 + 2.
        assert_eq!(max_inflated(&Rect::new(0, 0, 64, 64), 3), 16385);
        assert_eq!(max_inflated(&Rect::new(0, 0, 1, 1), 3), 384);
        assert_eq!(max_inflated(&Rect::new(5, 5, 0, 7), 3), 0);
        // 130x65: two 64x64 and a 2x64 tile, two 64x1 and a 2x1 tile.
        let (full, right, bottom, corner) = (16385, 1 + 381 + 2 * 128, 1 + 381 + 2 * 64, 1 + 381 + 2 * 2);
        assert_eq!(max_inflated(&Rect::new(0, 0, 130, 65), 3), 2 * full + right + 2 * bottom + corner);
    }

    #[test]
    fn inflated_data_must_fill_the_tiles_exactly() {
        let e = err(Rect::new(0, 0, 4, 4), &[&[0][..], &cpx(&[A; 10])].concat());
        assert_eq!(e, "ZRLE: the 31 bytes of inflated data end inside the tile at 0,0");
        let tiles = [&[1][..], &cpx(&[A]), &[0, 0]].concat();
        let e = err(Rect::new(0, 0, 4, 4), &tiles);
        assert_eq!(e, "ZRLE: 2 bytes of inflated data are left after the last tile");
        // Refused once the last tile is decoded and bytes after it are there, before all of them are: two
        // raw tiles and 6000 bytes, trickled in.
        let r = Rect::new(0, 0, 128, 64);
        let px = noise(128 * 64, 3);
        let input = chunk(&mut Deflater::default(), &[raw_tiles(r, &px), vec![7; 6000]].concat());
        let e = Harness::new(128, 64).decode_trickled(ZRLE, r, &input).unwrap_err().to_string();
        assert!(
            e.starts_with("ZRLE: at least ") && e.ends_with(" bytes of inflated data are left after the last tile")
        );
        let e = Harness::new(128, 64).decode(ZRLE, r, &input).unwrap_err().to_string();
        assert_eq!(e, "ZRLE: 6000 bytes of inflated data are left after the last tile");
        let e = err(Rect::new(0, 0, 1, 1), &[1; 385]);
        assert_eq!(e, "ZRLE: zlib data inflates to more than the 384 bytes the rectangle can hold");
    }

    #[test]
    fn hostile_tiles() {
        let e = err(Rect::new(0, 0, 70, 2), &[&[1][..], &cpx(&[A]), &[130], &cpx(&[A, B]), &[2]].concat());
        assert_eq!(e, "ZRLE: tile at 64,0 (6x2): palette index 2 is outside the 2-colour palette");
        let e = err(Rect::new(0, 0, 2, 2), &[&[128][..], &cpx(&[A]), &[4]].concat());
        assert_eq!(e, "ZRLE: tile at 0,0 (2x2): a run of 5 pixels goes past the end of the tile (4 pixels left)");
        for sub in [17, 126, 127, 129] {
            let e = err(Rect::new(0, 0, 2, 2), &[sub, 0, 0, 0, 0, 0, 0]);
            assert_eq!(e, format!("ZRLE: tile at 0,0 (2x2): sub-encoding {sub} is not used by ZRLE"));
        }
        // No palette reuse, even after a tile with a palette.
        for sub in [127, 129] {
            let e = err(Rect::new(0, 0, 65, 1), &[&[2][..], &cpx(&[A, B]), &[0; 8], &[sub, 0]].concat());
            assert_eq!(e, format!("ZRLE: tile at 64,0 (1x1): sub-encoding {sub} is not used by ZRLE"));
        }
        let e = Harness::new(2, 2).decode(ZRLE, Rect::new(0, 0, 2, 2), &[0, 0, 0, 4, 0x78, 0x9c, 0xff, 0xff]);
        assert!(e.unwrap_err().to_string().starts_with("ZRLE: corrupt zlib data"));
    }
}
