//! Zlib (encoding 6): `u32 length`, then that many bytes of the connection's Zlib stream, which inflate to
//! the rectangle's `w * h` pixels in the Raw layout. Decoded once the whole chunk is there.
//!
//! [`read_chunk`] reads the length-prefixed chunk for ZRLE too.

use super::{atomic, Ctx, Progress, Resume};
use crate::codec::{Parse, Reader};
use crate::config::Limits;
use crate::error::ProtocolError;
use crate::framebuffer::Rect;

pub(crate) fn decode(rect: &Rect, input: &[u8], _: &mut Resume, ctx: &mut Ctx) -> Result<Progress, ProtocolError> {
    let bpp = ctx.pixels.bytes_per_pixel();
    let expected = rect.area() * bpp as u64;
    atomic(input, |r| {
        let data = read_chunk(r, "Zlib", "Zlib data", expected, ctx.limits)?;
        ctx.streams.zlib.inflate_exact(data, &mut ctx.scratch.bytes, to_usize(expected), "Zlib")?;
        let row_len = usize::from(rect.w) * bpp;
        if row_len > 0 {
            for (dy, row) in (0..rect.h).zip(ctx.scratch.bytes.chunks_exact(row_len)) {
                ctx.pixels.pixels(row, ctx.fb.row_mut(rect.x, rect.y + dy, rect.w));
            }
        }
        Ok(())
    })
}

/// Reads `u32 length` and the `length` bytes of zlib data after it. A length no rectangle inflating to at
/// most `max_inflated` bytes can need is an error at once, before waiting for the bytes.
pub(super) fn read_chunk<'a>(
    r: &mut Reader<'a>,
    encoding: &'static str,
    what: &'static str,
    max_inflated: u64,
    limits: &Limits,
) -> Parse<&'a [u8]> {
    let len = r.u32()?;
    limits.check_buffered(what, len.into())?;
    let bound = max_compressed(max_inflated);
    if u64::from(len) > bound {
        return Err(ProtocolError::malformed(
            encoding,
            format!(
                "zlib data of {len} bytes is more than the {bound} that {max_inflated} bytes of rectangle data can \
                 compress to"
            ),
        )
        .into());
    }
    Ok(r.take(len as usize)?)
}

/// The most bytes a zlib encoder can make of `n` bytes: zlib's own worst case for any settings
/// (`deflateBound`: `n + n/8 + n/64` and a few bytes of block headers and stream wrapper) with room for the
/// sync-flush markers a server adds.
fn max_compressed(n: u64) -> u64 {
    n + n.div_ceil(8) + n.div_ceil(64) + 1024
}

pub(super) fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use crate::codec::Put;
    use crate::decode::testutil::{bgrx, Deflater, Harness};
    use crate::decode::Progress;
    use crate::encoding::ZLIB;
    use crate::error::ProtocolError;
    use crate::framebuffer::Rect;
    use crate::pixel::{PixelFormat, Rgb};

    fn chunk(d: &mut Deflater, raw: &[u8]) -> Vec<u8> {
        let z = d.chunk(raw);
        let mut v = Vec::new();
        v.put_u32(z.len() as u32);
        v.extend_from_slice(&z);
        v
    }

    fn noise(n: u32, seed: u32) -> Vec<Rgb> {
        (0..n).map(|i| (i ^ seed).wrapping_mul(0x9e37_79b9) >> 8).collect()
    }

    #[test]
    fn inflates_raw_pixels_into_the_rectangle() {
        let mut h = Harness::new(6, 5);
        let px = noise(12, 1);
        let r = Rect::new(2, 1, 4, 3);
        let input = chunk(&mut Deflater::default(), &bgrx(&px));
        assert_eq!(h.decode(ZLIB, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), px);
        assert_eq!(h.fb.get(1, 1), 0);
        assert_eq!(h.fb.get(2, 4), 0);
    }

    #[test]
    fn the_stream_carries_across_rectangles() {
        let mut d = Deflater::default();
        let (a, b) = (noise(16, 2), vec![0x123456; 16]);
        let first = chunk(&mut d, &bgrx(&a));
        let second = chunk(&mut d, &bgrx(&b));
        let mut h = Harness::new(4, 4);
        let r = Rect::new(0, 0, 4, 4);
        assert_eq!(h.decode(ZLIB, r, &first), Ok(Progress::Done(first.len())));
        assert_eq!(h.pixels_of(r), a);
        assert_eq!(h.decode(ZLIB, r, &second), Ok(Progress::Done(second.len())));
        assert_eq!(h.pixels_of(r), b);
        // The second chunk means nothing without the first: it has no zlib header.
        let e = Harness::new(4, 4).decode(ZLIB, r, &second).unwrap_err();
        assert!(e.to_string().starts_with("Zlib: corrupt zlib data"), "{e}");
    }

    #[test]
    fn sixteen_bit_pixels() {
        let pf = PixelFormat { big_endian: true, ..PixelFormat::for_depth(16).unwrap() };
        let mut h = Harness::with_format(3, 1, pf);
        let r = Rect::new(0, 0, 3, 1);
        let input = chunk(&mut Deflater::default(), &[0x7c, 0x00, 0x03, 0xe0, 0x00, 0x1f]);
        assert_eq!(h.decode(ZLIB, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), [0xff0000, 0x00ff00, 0x0000ff]);
    }

    #[test]
    fn truncated_input_waits_and_leaves_the_stream_alone() {
        let mut d = Deflater::default();
        let px = noise(64, 3);
        let first = chunk(&mut d, &bgrx(&px));
        let second = chunk(&mut d, &bgrx(&px[..32]));
        let mut h = Harness::new(8, 8);
        for cut in 0..first.len() {
            assert_eq!(h.decode(ZLIB, Rect::new(0, 0, 8, 8), &first[..cut]), Ok(Progress::Partial(0)), "cut {cut}");
        }
        assert_eq!(h.decode(ZLIB, Rect::new(0, 0, 8, 8), &first), Ok(Progress::Done(first.len())));
        assert_eq!(h.decode_trickled(ZLIB, Rect::new(0, 0, 8, 4), &second), Ok(second.len()));
        assert_eq!(h.pixels_of(Rect::new(0, 0, 8, 4)), px[..32]);
        assert_eq!(h.pixels_of(Rect::new(0, 4, 8, 4)), px[32..]);
    }

    #[test]
    fn hostile_lengths_fail_at_once() {
        let mut h = Harness::new(16, 16);
        let e = h.decode(ZLIB, Rect::new(0, 0, 16, 16), &[0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(e, ProtocolError::TooLarge { what: "Zlib data", size: 0xffff_ffff, limit: 256 << 20 });
        // 16x16 BGRX pixels are 1024 bytes, which no zlib stream needs more than 2192 bytes for.
        let e = h.decode(ZLIB, Rect::new(0, 0, 16, 16), &[0, 0, 0x08, 0x91]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Zlib: zlib data of 2193 bytes is more than the 2192 that 1024 bytes of rectangle data can compress to"
        );
        assert_eq!(h.decode(ZLIB, Rect::new(0, 0, 16, 16), &[0, 0, 0x08, 0x90]), Ok(Progress::Partial(0)));
    }

    #[test]
    fn inflated_size_must_match_the_rectangle() {
        let r = Rect::new(0, 0, 2, 2);
        let short = chunk(&mut Deflater::default(), &[0; 15]);
        let e = Harness::new(2, 2).decode(ZLIB, r, &short).unwrap_err();
        assert_eq!(e.to_string(), "Zlib: zlib data inflated to 15 bytes, expected 16");
        let long = chunk(&mut Deflater::default(), &[0; 17]);
        let e = Harness::new(2, 2).decode(ZLIB, r, &long).unwrap_err();
        assert_eq!(e.to_string(), "Zlib: zlib data inflates to more than the 16 bytes the rectangle can hold");
    }

    #[test]
    fn garbage_is_an_error() {
        let e = Harness::new(2, 2).decode(ZLIB, Rect::new(0, 0, 2, 2), &[0, 0, 0, 4, 0x78, 0x9c, 0xff, 0xff]);
        assert!(e.unwrap_err().to_string().starts_with("Zlib: corrupt zlib data"));
    }
}
