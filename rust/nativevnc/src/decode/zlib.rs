//! Zlib (encoding 6): `u32 length`, then that many bytes of the connection's Zlib stream, which inflate to
//! the rectangle's `w * h` pixels in the Raw layout. Decoded pixel by pixel as the inflated bytes arrive.
//!
//! [`decode_chunk`] streams a length-prefixed zlib chunk for ZRLE too: every call feeds the compressed bytes
//! it is offered to the connection's stream (each byte exactly once: the stream keeps its state), inflates
//! them into a window of at most [`WINDOW`] bytes, decodes the complete units (pixels here, tiles for ZRLE)
//! and keeps only the bytes of an incomplete one. A rectangle needs that window and no more, whatever the
//! size of its chunk.

use std::fmt;

use super::{Ctx, Inflater, Progress, Streams};
use crate::codec::{Parse, ReadError, Reader};
use crate::config::Limits;
use crate::error::ProtocolError;
use crate::framebuffer::{Canvas, Rect};
use crate::pixel::PixelReader;

/// The most inflated bytes a rectangle keeps: room for a ZRLE tile (at most `1 + 64 * 64 * 5` bytes) with
/// plenty to spare, so that most steps inflate many tiles or rows at once.
pub(super) const WINDOW: usize = 64 << 10;

pub(crate) fn decode(rect: &Rect, input: &[u8], chunk: &mut Chunk, ctx: &mut Ctx) -> Result<Progress, ProtocolError> {
    let bpp = ctx.pixels.bytes_per_pixel();
    let expected = rect.area() * bpp as u64;
    let spec = Spec { encoding: "Zlib", what: "Zlib data", max_inflated: expected, stream: |s| &mut s.zlib };
    decode_chunk(input, chunk, ctx, &spec, &Pixels { rect: *rect, bpp, expected })
}

/// Zlib's units: the rectangle's pixels, row after row; a row may be decoded in pieces.
struct Pixels {
    rect: Rect,
    bpp: usize,
    expected: u64,
}

impl Units for Pixels {
    fn count(&self) -> u32 {
        // At most 65535 * 65535, which fits.
        u32::try_from(self.rect.area()).unwrap_or(u32::MAX)
    }

    fn decode(
        &self,
        data: &[u8],
        _: bool,
        unit: &mut u32,
        pixels: &PixelReader,
        fb: &mut Canvas,
    ) -> Result<usize, ProtocolError> {
        let (w, count) = (u32::from(self.rect.w), self.count());
        let mut used = 0;
        while *unit < count {
            let (dy, dx) = (*unit / w, *unit % w);
            let n = (w - dx).min(((data.len() - used) / self.bpp) as u32);
            if n == 0 {
                break;
            }
            let len = n as usize * self.bpp;
            // dx + n <= w and dy < h: the offsets and the width fit in a u16.
            let dst = fb.row_mut(self.rect.x + dx as u16, self.rect.y + dy as u16, n as u16);
            pixels.pixels(&data[used..used + len], dst);
            used += len;
            *unit += n;
        }
        Ok(used)
    }

    fn short(&self, inflated: u64, _: u32) -> ProtocolError {
        ProtocolError::malformed("Zlib", format!("zlib data inflated to {inflated} bytes, expected {}", self.expected))
    }

    fn name(&self) -> &'static str {
        "pixel"
    }
}

/// What a zlib chunk inflates to: units (tiles, pixels) decoded as their bytes arrive.
pub(super) trait Units {
    /// The rectangle's units.
    fn count(&self) -> u32;

    /// Decodes the complete units at the start of `data`, from unit `*unit` on, and advances `*unit` past
    /// them; returns the bytes they took. Bytes of an incomplete unit are left for the next call, which
    /// starts with them. Unless `all` is set (no more bytes will come, or the window has no room for
    /// more), a unit that would have to be parsed again when more bytes arrive may wait for them.
    fn decode(
        &self,
        data: &[u8],
        all: bool,
        unit: &mut u32,
        pixels: &PixelReader,
        fb: &mut Canvas,
    ) -> Result<usize, ProtocolError>;

    /// The error when all of the chunk, `inflated` bytes, ends before unit `unit` is complete.
    fn short(&self, inflated: u64, unit: u32) -> ProtocolError;

    /// A unit, for error messages.
    fn name(&self) -> &'static str;
}

/// The encoding a chunk belongs to.
pub(super) struct Spec {
    pub encoding: &'static str,
    /// The chunk, for [`Limits::check_buffered`].
    pub what: &'static str,
    /// The most bytes the rectangle's units can take.
    pub max_inflated: u64,
    /// The connection's zlib stream for the encoding.
    pub stream: fn(&mut Streams) -> &mut Inflater,
}

/// A rectangle's zlib chunk while it arrives: the state of the Zlib and ZRLE decoders.
#[derive(Clone, Default)]
pub(crate) struct Chunk {
    /// Compressed bytes not yet fed to the stream; `None` until the length has been read.
    left: Option<u32>,
    /// Units (pixels, tiles) decoded so far.
    done: u32,
    /// Bytes inflated so far.
    inflated: u64,
    /// The window is `buf[..size]` (`buf` may be longer: it is the connection's scratch buffer, lent to the
    /// rectangle). Inflated bytes not yet decoded are `buf[start..end]`, the rest is room for more.
    buf: Vec<u8>,
    size: usize,
    start: usize,
    end: usize,
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("left", &self.left)
            .field("done", &self.done)
            .field("inflated", &self.inflated)
            .field("window", &self.size)
            .field("pending", &(self.end - self.start))
            .finish()
    }
}

impl Chunk {
    /// The inflated bytes not yet decoded.
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The window's size.
    #[cfg(test)]
    pub(super) fn window(&self) -> usize {
        self.size
    }

    /// The units decoded so far.
    #[cfg(test)]
    pub(super) fn done(&self) -> u32 {
        self.done
    }

    /// Makes room at the end of the window: moves the pending bytes (less than a tile) to its front. Doing
    /// it every time costs less than the extra inflate steps into a smaller room would.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

/// Decodes a rectangle's `u32 length` and zlib chunk as far as `input` goes (see the module documentation).
/// Returns `Done` once all of the chunk is inflated and its units decoded, with nothing left over.
pub(super) fn decode_chunk(
    input: &[u8],
    chunk: &mut Chunk,
    ctx: &mut Ctx,
    spec: &Spec,
    units: &impl Units,
) -> Result<Progress, ProtocolError> {
    let mut used = 0;
    let left = match chunk.left {
        Some(left) => left,
        None => {
            let mut r = Reader::new(input);
            let len = match read_length(&mut r, spec.encoding, spec.what, spec.max_inflated, ctx.limits) {
                Ok(len) => len,
                Err(ReadError::Incomplete) => return Ok(Progress::Partial(0)),
                Err(ReadError::Invalid(e)) => return Err(e),
            };
            used = r.consumed();
            // One byte of room beyond the most the rectangle can take tells "exactly that" from "more". The
            // buffer is the connection's scratch buffer, given back when the rectangle is done (so that it
            // is allocated and zeroed once per update).
            let size = to_usize(spec.max_inflated.saturating_add(1)).min(WINDOW);
            let mut buf = std::mem::take(&mut ctx.scratch.bytes);
            if buf.len() < size {
                buf.resize(size, 0);
            }
            *chunk = Chunk { left: Some(len), done: 0, inflated: 0, buf, size, start: 0, end: 0 };
            len
        }
    };
    let offered = &input[used..];
    let offered = &offered[..offered.len().min(to_usize(left.into()))];
    let stream = (spec.stream)(ctx.streams);
    let count = units.count();
    let mut fed = 0;
    let mut extra = 0;
    loop {
        chunk.make_room();
        let room = chunk.size - chunk.end;
        let out = &mut chunk.buf[chunk.end..chunk.size];
        let (consumed, produced) = stream.inflate_some(&offered[fed..], out, spec.encoding)?;
        fed += consumed;
        chunk.end += produced;
        chunk.inflated += produced as u64;
        if chunk.inflated > spec.max_inflated {
            return Err(ProtocolError::malformed(
                spec.encoding,
                format!("zlib data inflates to more than the {} bytes the rectangle can hold", spec.max_inflated),
            ));
        }
        // With room to spare, the stream has given all it can of what it was fed.
        let drained = fed == offered.len() && produced < room;
        // All of the chunk is inflated: no more bytes will come.
        let last = drained && offered.len() == to_usize(left.into());
        // Without new bytes, the pending ones were looked at already (unless they are the last).
        if chunk.done < count && (produced > 0 || last) {
            let all = last || chunk.end - chunk.start == chunk.size;
            let mut done = chunk.done;
            let n = units.decode(chunk.pending(), all, &mut done, ctx.pixels, &mut ctx.fb)?;
            chunk.done = done;
            chunk.start += n;
        }
        if chunk.done == count {
            // Counted for the error below, after the rest of the input, so that a complete chunk is
            // described in full.
            extra += chunk.end - chunk.start;
            chunk.start = chunk.end;
        }
        if drained {
            break;
        }
        if consumed == 0 && produced == 0 {
            // Unreachable: the window holds more than any unit and the stream moves on while it has both
            // input and room.
            let why = if room == 0 { "an incomplete unit fills the window" } else { "zlib data made no progress" };
            return Err(ProtocolError::malformed(spec.encoding, why));
        }
    }
    used += fed;
    // `fed` is at most `left`.
    let left = left - fed as u32;
    if extra > 0 {
        let at_least = if left > 0 { "at least " } else { "" };
        return Err(ProtocolError::malformed(
            spec.encoding,
            format!("{at_least}{extra} bytes of inflated data are left after the last {}", units.name()),
        ));
    }
    chunk.left = Some(left);
    if left > 0 {
        return Ok(Progress::Partial(used));
    }
    if chunk.done < count {
        return Err(units.short(chunk.inflated, chunk.done));
    }
    ctx.scratch.bytes = std::mem::take(&mut chunk.buf);
    Ok(Progress::Done(used))
}

/// Reads `u32 length`, the size of the zlib data after it. A length no rectangle inflating to at most
/// `max_inflated` bytes can need is an error at once, before waiting for the bytes.
fn read_length(
    r: &mut Reader,
    encoding: &'static str,
    what: &'static str,
    max_inflated: u64,
    limits: &Limits,
) -> Parse<u32> {
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
    Ok(len)
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
pub(crate) mod tests {
    use super::Chunk;
    use super::WINDOW;
    use crate::codec::Put;
    use crate::decode::testutil::{bgrx, Deflater, Harness};
    use crate::decode::{Decoder, Inflater, Progress};
    use crate::encoding::ZLIB;
    use crate::error::ProtocolError;
    use crate::framebuffer::Rect;
    use crate::pixel::{PixelFormat, Rgb};

    /// A length-prefixed chunk, flushed every 16 KiB (`Deflater::chunk` leaves output behind when one flush
    /// makes more than 64 KiB).
    pub(crate) fn chunk(d: &mut Deflater, raw: &[u8]) -> Vec<u8> {
        let z: Vec<u8> = raw.chunks(16 << 10).flat_map(|piece| d.chunk(piece)).collect();
        let mut v = Vec::new();
        v.put_u32(z.len() as u32);
        v.extend_from_slice(&z);
        v
    }

    /// `input` with its zlib data cut to `len` bytes (and the length saying so), and the number of bytes
    /// those inflate to.
    pub(crate) fn cut(input: &[u8], len: usize) -> (Vec<u8>, u64) {
        let mut v = Vec::new();
        v.put_u32(len as u32);
        v.extend_from_slice(&input[4..4 + len]);
        let mut out = Vec::new();
        Inflater::default().inflate(&v[4..], &mut out, usize::MAX - 1, "test").unwrap();
        (v, out.len() as u64)
    }

    /// Decodes `input` offered `piece` bytes at a time (with what the decoder left of the previous piece),
    /// calls `check` after every `Partial`, and returns the bytes used.
    pub(crate) fn decode_in_pieces(
        h: &mut Harness,
        encoding: i32,
        rect: Rect,
        input: &[u8],
        piece: usize,
        mut check: impl FnMut(&Chunk, &Harness),
    ) -> Result<usize, ProtocolError> {
        let mut decoder = Decoder::new(encoding).expect("a pixel encoding");
        let (mut start, mut end) = (0, 0);
        loop {
            end = (end + piece).min(input.len());
            match decoder.decode(&rect, &input[start..end], &mut h.ctx())? {
                Progress::Done(n) => return Ok(start + n),
                Progress::Partial(n) => start += n,
            }
            assert_eq!(start, end, "all of the offered input is used");
            assert!(end < input.len(), "the decoder wanted more than its complete input");
            let (Decoder::Zlib(chunk) | Decoder::Zrle(chunk)) = &decoder else {
                panic!("{decoder:?} streams no zlib chunk");
            };
            check(chunk, h);
        }
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
    fn trickled_input_decodes_like_one_shot() {
        // 100x200 BGRX pixels: 80000 bytes, more than the window holds, so rows are decoded in pieces.
        let px = noise(100 * 200, 3);
        let r = Rect::new(1, 2, 100, 200);
        let input = chunk(&mut Deflater::default(), &bgrx(&px));
        let mut one_shot = Harness::new(102, 203);
        assert_eq!(one_shot.decode(ZLIB, r, &input), Ok(Progress::Done(input.len())));
        let mut h = Harness::new(102, 203);
        assert_eq!(h.decode_trickled(ZLIB, r, &input), Ok(input.len()));
        assert_eq!(h.pixels_of(r), px);
        assert_eq!(h.fb.pixels(), one_shot.fb.pixels());
    }

    #[test]
    fn trickled_input_carries_the_stream_across_rectangles() {
        let mut d = Deflater::default();
        let px = noise(64, 3);
        let first = chunk(&mut d, &bgrx(&px));
        let second = chunk(&mut d, &bgrx(&px[..32]));
        let mut h = Harness::new(8, 8);
        assert_eq!(h.decode_trickled(ZLIB, Rect::new(0, 0, 8, 8), &first), Ok(first.len()));
        assert_eq!(h.pixels_of(Rect::new(0, 0, 8, 8)), px);
        h.fb = crate::framebuffer::Framebuffer::new(8, 8);
        assert_eq!(h.decode_trickled(ZLIB, Rect::new(0, 0, 8, 4), &second), Ok(second.len()));
        assert_eq!(h.pixels_of(Rect::new(0, 0, 8, 4)), px[..32]);
        assert_eq!(h.pixels_of(Rect::new(0, 4, 8, 4)), [0; 32]);
    }

    #[test]
    fn a_large_rectangle_keeps_only_a_window() {
        let (w, hgt) = (1024, 768);
        let px = noise(w * hgt, 5);
        let r = Rect::new(0, 0, w as u16, hgt as u16);
        let input = chunk(&mut Deflater::default(), &bgrx(&px));
        let mut h = Harness::new(w as u16, hgt as u16);
        let mut decoded = Vec::new();
        let used = decode_in_pieces(&mut h, ZLIB, r, &input, 64 << 10, |chunk, h| {
            assert!(chunk.window() <= WINDOW, "window of {}", chunk.window());
            assert!(chunk.pending().len() < 4, "pending {}", chunk.pending().len());
            assert!(h.scratch.bytes.capacity() == 0, "the window is all the buffering there is");
            decoded.push(chunk.done());
        });
        assert_eq!(used, Ok(input.len()));
        assert_eq!(h.fb.pixels(), px);
        // Pixels were decoded as the pieces arrived, not at the end.
        assert!(decoded.windows(2).all(|p| p[0] < p[1]), "{decoded:?}");
        assert!(decoded[0] > 0 && decoded.len() > 10);
        assert_eq!(h.scratch.bytes.capacity(), WINDOW, "the window goes back to the scratch buffer");
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
        // A valid length is used at once; the zlib data may follow in pieces.
        assert_eq!(h.decode(ZLIB, Rect::new(0, 0, 16, 16), &[0, 0, 0x08, 0x90]), Ok(Progress::Partial(4)));
        assert_eq!(h.decode(ZLIB, Rect::new(0, 0, 16, 16), &[0, 0, 0x08]), Ok(Progress::Partial(0)));
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
        let e = Harness::new(2, 2).decode_trickled(ZLIB, r, &long).unwrap_err();
        assert_eq!(e.to_string(), "Zlib: zlib data inflates to more than the 16 bytes the rectangle can hold");
        // A bomb is refused once it passes the bound, before the stream has inflated the rest of it.
        let z = Deflater::default().chunk(&vec![0; 1 << 20]);
        let bomb = [&(z.len() as u32).to_be_bytes()[..], &z].concat();
        let mut h = Harness::new(2, 2);
        let e = h.decode(ZLIB, r, &bomb).unwrap_err();
        assert_eq!(e.to_string(), "Zlib: zlib data inflates to more than the 16 bytes the rectangle can hold");
        assert_eq!(h.streams.zlib.stream().total_out(), 17);
    }

    #[test]
    fn compressed_data_ending_inside_a_row() {
        let px = noise(40 * 30, 9);
        let r = Rect::new(0, 0, 40, 30);
        let input = chunk(&mut Deflater::default(), &bgrx(&px));
        let (short, inflated) = cut(&input, (input.len() - 4) / 2);
        assert!(inflated > 0 && inflated < 4800 && inflated % 160 != 0, "{inflated}");
        let want = format!("Zlib: zlib data inflated to {inflated} bytes, expected 4800");
        let e = Harness::new(40, 30).decode(ZLIB, r, &short).unwrap_err();
        assert_eq!(e.to_string(), want);
        let e = Harness::new(40, 30).decode_trickled(ZLIB, r, &short).unwrap_err();
        assert_eq!(e.to_string(), want);
        let e = Harness::new(40, 30).decode(ZLIB, r, &[0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.to_string(), "Zlib: zlib data inflated to 0 bytes, expected 4800");
        assert_eq!(Harness::new(4, 4).decode(ZLIB, Rect::new(1, 1, 0, 2), &[0, 0, 0, 0, 9]), Ok(Progress::Done(4)));
    }

    #[test]
    fn garbage_is_an_error() {
        let e = Harness::new(2, 2).decode(ZLIB, Rect::new(0, 0, 2, 2), &[0, 0, 0, 4, 0x78, 0x9c, 0xff, 0xff]);
        assert!(e.unwrap_err().to_string().starts_with("Zlib: corrupt zlib data"));
    }
}
