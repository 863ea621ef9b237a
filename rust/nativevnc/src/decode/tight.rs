//! Tight (encoding 7) and TightPNG (-260).
//!
//! A rectangle starts with a compression-control byte. Its low four bits ask for zlib streams 0-3 to be
//! reset; its high four bits choose the method:
//!
//! * `1000` Fill: one `TPIXEL` colours the whole rectangle.
//! * `1001` JPEG: a compact length, then a JPEG image of the rectangle's size.
//! * `1010` PNG (TightPNG only): a compact length, then a PNG image of the rectangle's size.
//! * `0iss` Basic: stream `ss`; `i` says a filter-id byte follows (Copy, Palette or Gradient). The
//!   filtered data is sent as is when it is shorter than 12 bytes, otherwise as a compact length and zlib
//!   data on the stream. TightPNG is meant to replace Basic with PNG, but QEMU (10.0 at least) still sends
//!   gradient-filtered Basic rectangles in TightPNG when lossy compression is on, so both accept it.
//!
//! A `TPIXEL` is three bytes R, G, B when the pixel format is 32-bit true colour of depth 24 with 8-bit
//! channels (whatever the shifts and byte order), and a `PIXEL` otherwise.
//!
//! Rectangles are at most 2048 pixels wide. The decoder is atomic: it reads the whole rectangle before it
//! resets or inflates a stream or writes a pixel, so a retry with more input starts from the same state.

use super::{atomic, Ctx, Progress};
use crate::codec::{Incomplete, Parse, Reader};
use crate::error::ProtocolError;
use crate::framebuffer::{put_pixel, Canvas, Rect};
use crate::pixel::{PixelReader, Rgb};

/// Which of the two encodings a rectangle uses; they differ only in the compression types allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// Tight: Fill, JPEG and Basic; PNG is not allowed.
    Tight,
    /// TightPNG: Fill, JPEG, PNG, and Basic as QEMU sends it.
    TightPng,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::Tight => "Tight",
            Flavour::TightPng => "TightPNG",
        }
    }
}

/// The widest rectangle the specification allows.
const MAX_WIDTH: u16 = 2048;
/// Filtered data shorter than this is sent without compression.
const MIN_TO_COMPRESS: usize = 12;

const FILL: u8 = 0x8;
const JPEG: u8 = 0x9;
const PNG: u8 = 0xa;

const COPY_FILTER: u8 = 0;
const PALETTE_FILTER: u8 = 1;
const GRADIENT_FILTER: u8 = 2;

/// Decodes one Tight or TightPNG rectangle once all of its input is there.
pub(crate) fn decode(rect: &Rect, input: &[u8], ctx: &mut Ctx, flavour: Flavour) -> Result<Progress, ProtocolError> {
    let enc = flavour.name();
    if rect.w > MAX_WIDTH {
        return Err(ProtocolError::malformed(
            enc,
            format!("rectangle width {} exceeds the maximum of {MAX_WIDTH}", rect.w),
        ));
    }
    atomic(input, |r| {
        let control = r.u8()?;
        let resets = control & 0x0f;
        match control >> 4 {
            FILL => {
                let tp = Tpixels::new(ctx.pixels);
                let colour = tp.one(r.take(tp.size)?);
                reset_streams(ctx, resets);
                ctx.fb.fill(rect, colour);
            }
            JPEG => {
                let data = image_data(r, rect, ctx, "Tight JPEG data")?;
                reset_streams(ctx, resets);
                put_jpeg(data, rect, &mut ctx.fb, &mut ctx.scratch.bytes, enc)?;
            }
            PNG if flavour == Flavour::TightPng => {
                let data = image_data(r, rect, ctx, "TightPNG PNG data")?;
                reset_streams(ctx, resets);
                put_png(data, rect, &mut ctx.fb, &mut ctx.scratch.bytes, enc)?;
            }
            method if method & 0x8 == 0 => {
                basic(r, rect, ctx, control)?;
            }
            method => {
                return Err(ProtocolError::malformed(
                    enc,
                    format!("unknown compression type {method:#x} (control byte {control:#04x})"),
                )
                .into());
            }
        }
        Ok(())
    })
}

fn reset_streams(ctx: &mut Ctx, resets: u8) {
    for (i, stream) in ctx.streams.tight.iter_mut().enumerate() {
        if resets & (1 << i) != 0 {
            stream.reset();
        }
    }
}

/// Reads a compact length: 7 bits in each of up to two bytes whose high bit says another follows, then 8
/// bits in a third.
fn compact_len(r: &mut Reader) -> Result<usize, Incomplete> {
    let b0 = r.u8()?;
    let mut len = usize::from(b0 & 0x7f);
    if b0 & 0x80 != 0 {
        let b1 = r.u8()?;
        len |= usize::from(b1 & 0x7f) << 7;
        if b1 & 0x80 != 0 {
            len |= usize::from(r.u8()?) << 14;
        }
    }
    Ok(len)
}

/// Reads a compact length, checks it against the session's limit and `bound`, and takes that many bytes.
fn length_and_data<'a>(r: &mut Reader<'a>, ctx: &Ctx, what: &'static str, bound: u64) -> Parse<&'a [u8]> {
    let len = compact_len(r)?;
    ctx.limits.check_buffered(what, len as u64)?;
    if len as u64 > bound {
        return Err(ProtocolError::TooLarge { what, size: len as u64, limit: bound }.into());
    }
    Ok(r.take(len)?)
}

/// A JPEG or PNG image of the rectangle: a compact length and the image. Its size is bounded by a generous
/// worst case for the rectangle's area (padded to whole 16x16 JPEG blocks) plus room for headers.
fn image_data<'a>(r: &mut Reader<'a>, rect: &Rect, ctx: &Ctx, what: &'static str) -> Parse<&'a [u8]> {
    let padded = u64::from(rect.w).next_multiple_of(16) * u64::from(rect.h).next_multiple_of(16);
    length_and_data(r, ctx, what, 65536 + padded * 12)
}

/// How the pixels of a Basic rectangle were filtered.
enum Filter {
    Copy,
    /// The palette has this many colours.
    Palette(usize),
    Gradient(Gradient),
}

fn basic(r: &mut Reader, rect: &Rect, ctx: &mut Ctx, control: u8) -> Parse<()> {
    let enc = "Tight";
    let tp = Tpixels::new(ctx.pixels);
    let stream = usize::from((control >> 4) & 0x3);
    let filter_id = if control & 0x40 != 0 { r.u8()? } else { COPY_FILTER };
    let (w, h) = (usize::from(rect.w), usize::from(rect.h));
    // Up to 256 colours as 3-byte screen pixels.
    let mut palette = [0; 256 * 3];
    let (filter, len) = match filter_id {
        COPY_FILTER => (Filter::Copy, w * h * tp.size),
        PALETTE_FILTER => {
            // The specification foresees 2 to 256 colours; a single colour is read like a larger palette.
            let colours = usize::from(r.u8()?) + 1;
            tp.row(r.take(colours * tp.size)?, &mut palette[..colours * 3]);
            let len = if colours == 2 { w.div_ceil(8) * h } else { w * h };
            (Filter::Palette(colours), len)
        }
        GRADIENT_FILTER => (Filter::Gradient(Gradient::new(ctx.pixels)?), w * h * tp.size),
        other => {
            return Err(ProtocolError::malformed(enc, format!("unknown filter {other}")).into());
        }
    };
    let compressed = if len < MIN_TO_COMPRESS {
        None
    } else {
        // zlib never needs much more than the data itself; a quarter more plus room for headers and
        // flush markers is generous for any deflater.
        let bound = len as u64 + len as u64 / 4 + 1024;
        Some(length_and_data(r, ctx, "Tight zlib data", bound)?)
    };
    let raw = if compressed.is_none() { r.take(len)? } else { &[] };

    // All of the rectangle is here: from now on, state changes.
    reset_streams(ctx, control & 0x0f);
    let Ctx { fb, streams, scratch, .. } = ctx;
    let data = match compressed {
        Some(z) => {
            streams.tight[stream].inflate_exact(z, &mut scratch.bytes, len, enc)?;
            &scratch.bytes[..]
        }
        None => raw,
    };
    match filter {
        Filter::Copy => {
            let stride = w * tp.size;
            for dy in 0..rect.h {
                let src = &data[usize::from(dy) * stride..][..stride];
                tp.row(src, fb.row_mut(rect.x, rect.y + dy, rect.w));
            }
        }
        Filter::Palette(2) => {
            let stride = w.div_ceil(8);
            for dy in 0..rect.h {
                let src = &data[usize::from(dy) * stride..][..stride];
                let dst = fb.row_mut(rect.x, rect.y + dy, rect.w);
                for (eight, &bits) in dst.chunks_mut(8 * 3).zip(src) {
                    for (i, px) in eight.chunks_exact_mut(3).enumerate() {
                        let index = usize::from((bits >> (7 - i)) & 1);
                        px.copy_from_slice(&palette[3 * index..3 * index + 3]);
                    }
                }
            }
        }
        Filter::Palette(colours) => {
            let palette = &palette[..colours * 3];
            for dy in 0..rect.h {
                let src = &data[usize::from(dy) * w..][..w];
                let dst = fb.row_mut(rect.x, rect.y + dy, rect.w);
                for (px, &index) in dst.chunks_exact_mut(3).zip(src) {
                    let index = usize::from(index);
                    let colour = palette.get(3 * index..3 * index + 3).ok_or_else(|| {
                        ProtocolError::malformed(
                            enc,
                            format!("palette index {index} is beyond the palette of {colours} colours"),
                        )
                    })?;
                    px.copy_from_slice(colour);
                }
            }
        }
        Filter::Gradient(g) => g.apply(data, rect, fb, &mut scratch.pixels, &tp),
    }
    Ok(())
}

/// Reads `TPIXEL`s of the session's pixel format.
struct Tpixels<'a> {
    reader: &'a PixelReader,
    /// Three bytes R, G, B rather than a `PIXEL`.
    rgb24: bool,
    size: usize,
}

impl<'a> Tpixels<'a> {
    fn new(reader: &'a PixelReader) -> Self {
        let f = reader.format();
        let rgb24 = f.true_colour
            && f.bits_per_pixel == 32
            && f.depth == 24
            && (f.red_max, f.green_max, f.blue_max) == (255, 255, 255);
        let size = if rgb24 { 3 } else { reader.bytes_per_pixel() };
        Tpixels { reader, rgb24, size }
    }

    /// One `TPIXEL`; `src` holds `size` bytes.
    fn one(&self, src: &[u8]) -> Rgb {
        if self.rgb24 {
            u32::from_be_bytes([0, src[0], src[1], src[2]])
        } else {
            self.reader.pixel(src)
        }
    }

    /// Consecutive `TPIXEL`s into 3-byte screen pixels; `src` holds `dst.len() / 3` of them.
    fn row(&self, src: &[u8], dst: &mut [u8]) {
        if self.rgb24 {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(3)) {
                d.copy_from_slice(&[s[2], s[1], s[0]]);
            }
        } else {
            self.reader.pixels(src, dst);
        }
    }
}

/// The Gradient filter: each channel was sent as the difference from a prediction,
/// `left + above - above_left` clamped to `0..=max`, with pixels outside the rectangle taken as 0.
///
/// Channels are handled inside a `u32` holding the `TPIXEL`'s value: R, G, B at bits 16, 8, 0 for
/// 3-byte `TPIXEL`s, the pixel format's shifts otherwise.
struct Gradient {
    shift: [u32; 3],
    max: [u32; 3],
}

impl Gradient {
    /// The channel layout, or an error if the pixel format does not allow the filter (it needs 16 or 32
    /// bits per pixel of true colour).
    fn new(pixels: &PixelReader) -> Result<Self, ProtocolError> {
        let f = pixels.format();
        if !f.true_colour || f.bits_per_pixel == 8 {
            return Err(ProtocolError::malformed(
                "Tight",
                format!(
                    "the gradient filter needs a true-colour format of 16 or 32 bits per pixel, not {} bits{}",
                    f.bits_per_pixel,
                    if f.true_colour { "" } else { " colour-mapped" }
                ),
            ));
        }
        if Tpixels::new(pixels).rgb24 {
            return Ok(Gradient { shift: [16, 8, 0], max: [255; 3] });
        }
        Ok(Gradient {
            shift: [f.red_shift, f.green_shift, f.blue_shift].map(u32::from),
            max: [f.red_max, f.green_max, f.blue_max].map(u32::from),
        })
    }

    fn apply(&self, data: &[u8], rect: &Rect, fb: &mut Canvas, above: &mut Vec<Rgb>, tp: &Tpixels) {
        let w = usize::from(rect.w);
        let format = tp.reader.format();
        let bpp = tp.size;
        // The raw value of a TPIXEL, and the framebuffer colour of a raw value.
        let value = |s: &[u8]| -> u32 {
            match (tp.rgb24, format.big_endian) {
                (true, _) => u32::from_be_bytes([0, s[0], s[1], s[2]]),
                (false, true) => s.iter().fold(0, |v, &b| (v << 8) | u32::from(b)),
                (false, false) => s.iter().rev().fold(0, |v, &b| (v << 8) | u32::from(b)),
            }
        };
        let colour = |v: u32| -> Rgb {
            if tp.rgb24 {
                v
            } else if format.big_endian {
                tp.reader.pixel(&v.to_be_bytes()[4 - bpp..])
            } else {
                tp.reader.pixel(&v.to_le_bytes()[..bpp])
            }
        };
        // The previous row's values, replaced pixel by pixel; the row above the rectangle counts as 0.
        above.clear();
        above.resize(w, 0);
        for dy in 0..rect.h {
            let src = &data[usize::from(dy) * w * bpp..][..w * bpp];
            let dst = fb.row_mut(rect.x, rect.y + dy, rect.w);
            let (mut left, mut above_left) = (0, 0);
            for ((d, s), up) in dst.chunks_exact_mut(3).zip(src.chunks_exact(bpp)).zip(above.iter_mut()) {
                let diff = value(s);
                let mut v = 0;
                for (&shift, &max) in self.shift.iter().zip(&self.max) {
                    let channel = |x: u32| i64::from((x >> shift) & max);
                    let predicted = (channel(left) + channel(*up) - channel(above_left)).clamp(0, i64::from(max));
                    v |= ((predicted as u32).wrapping_add((diff >> shift) & max) & max) << shift;
                }
                above_left = *up;
                *up = v;
                left = v;
                put_pixel(d, colour(v));
            }
        }
    }
}

/// Decodes a JPEG image of exactly the rectangle's size into it.
fn put_jpeg(
    data: &[u8],
    rect: &Rect,
    fb: &mut Canvas,
    buf: &mut Vec<u8>,
    enc: &'static str,
) -> Result<(), ProtocolError> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    let corrupt =
        |e: zune_jpeg::errors::DecodeErrors| ProtocolError::malformed(enc, format!("corrupt JPEG image: {e}"));
    // The size check below gives the better message, so the decoder's own limits stay out of its way.
    let options = DecoderOptions::default()
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder.decode_headers().map_err(corrupt)?;
    let (w, h) = decoder.dimensions().unwrap_or((0, 0));
    check_size("JPEG", w, h, rect, enc)?;
    let size = w * h * 3;
    if decoder.output_buffer_size() != Some(size) {
        return Err(ProtocolError::malformed(enc, "the JPEG image does not decode to RGB"));
    }
    buf.clear();
    buf.resize(size, 0);
    decoder.decode_into(buf).map_err(corrupt)?;
    put_rows(buf, w * 3, 3, rect, fb);
    Ok(())
}

/// Decodes a PNG image of exactly the rectangle's size into it, as 8-bit RGB or grey (alpha is ignored).
fn put_png(
    data: &[u8],
    rect: &Rect,
    fb: &mut Canvas,
    buf: &mut Vec<u8>,
    enc: &'static str,
) -> Result<(), ProtocolError> {
    let corrupt = |e: png::DecodingError| ProtocolError::malformed(enc, format!("corrupt PNG image: {e}"));
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let (w, h) = reader.info().size();
    check_size("PNG", w as usize, h as usize, rect, enc)?;
    let size =
        reader.output_buffer_size().ok_or_else(|| ProtocolError::malformed(enc, "the PNG image is too large"))?;
    buf.clear();
    buf.resize(size, 0);
    let out = reader.next_frame(buf).map_err(corrupt)?;
    check_size("PNG frame", out.width as usize, out.height as usize, rect, enc)?;
    let channels = match (out.color_type, out.bit_depth) {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => 1,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => 2,
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        (colour, depth) => {
            return Err(ProtocolError::malformed(
                enc,
                format!("the PNG image decodes to unexpected {colour:?} {depth:?}"),
            ))
        }
    };
    put_rows(buf, out.line_size, channels, rect, fb);
    Ok(())
}

fn check_size(what: &str, w: usize, h: usize, rect: &Rect, enc: &'static str) -> Result<(), ProtocolError> {
    if (w, h) != (usize::from(rect.w), usize::from(rect.h)) {
        return Err(ProtocolError::malformed(
            enc,
            format!(
                "Invalid width/height of the rectangle: the {what} image is {w}x{h}, the rectangle {}x{}",
                rect.w, rect.h
            ),
        ));
    }
    Ok(())
}

/// Writes decoded 8-bit image rows (`stride` bytes apart; 1 or 2 channels are grey, 3 or 4 are RGB, a
/// second or fourth channel is alpha and ignored) into the rectangle.
fn put_rows(buf: &[u8], stride: usize, channels: usize, rect: &Rect, fb: &mut Canvas) {
    let w = usize::from(rect.w);
    for dy in 0..rect.h {
        let src = &buf[usize::from(dy) * stride..][..w * channels];
        let dst = fb.row_mut(rect.x, rect.y + dy, rect.w);
        if channels >= 3 {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(channels)) {
                d.copy_from_slice(&[s[2], s[1], s[0]]);
            }
        } else {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(channels)) {
                d.fill(s[0]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::decode::testutil::{Deflater, Harness};
    use crate::decode::Progress;
    use crate::encoding::{TIGHT, TIGHT_PNG};
    use crate::error::ProtocolError;
    use crate::framebuffer::Rect;
    use crate::pixel::{PixelFormat, Rgb};

    /// The compact representation of a length.
    fn compact(n: usize) -> Vec<u8> {
        assert!(n < 1 << 22);
        if n < 1 << 7 {
            vec![n as u8]
        } else if n < 1 << 14 {
            vec![n as u8 | 0x80, (n >> 7) as u8]
        } else {
            vec![n as u8 | 0x80, (n >> 7) as u8 | 0x80, (n >> 14) as u8]
        }
    }

    /// 3-byte TPIXELs: R, G, B.
    fn rgb(px: &[Rgb]) -> Vec<u8> {
        px.iter().flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8]).collect()
    }

    /// Control byte (and filter bytes) followed by `data` compressed on a stream: a compact length and
    /// the zlib chunk.
    fn zlib_rect(head: &[u8], d: &mut Deflater, data: &[u8]) -> Vec<u8> {
        let z = d.chunk(data);
        [head, &compact(z.len()), &z].concat()
    }

    fn malformed(e: ProtocolError) -> String {
        match e {
            ProtocolError::Malformed { what, .. } => what,
            other => panic!("expected a malformed-data error, got {other:?}"),
        }
    }

    #[test]
    fn compact_lengths() {
        for (n, bytes) in [(0, vec![0]), (127, vec![0x7f]), (128, vec![0x80, 0x01]), (10000, vec![0x90, 0x4e])] {
            assert_eq!(compact(n), bytes);
            let mut r = crate::codec::Reader::new(&bytes);
            assert_eq!(super::compact_len(&mut r), Ok(n));
        }
        let mut r = crate::codec::Reader::new(&[0xff, 0xff, 0xff]);
        assert_eq!(super::compact_len(&mut r), Ok(4194303));
    }

    #[test]
    fn fill() {
        let mut h = Harness::new(8, 8);
        let r = Rect::new(2, 3, 4, 2);
        assert_eq!(h.decode(TIGHT, r, &[0x80, 0x12, 0x34, 0x56]), Ok(Progress::Done(4)));
        assert_eq!(h.pixels_of(r), vec![0x123456; 8]);
        assert_eq!(h.fb.get(1, 3), 0);
        assert_eq!(h.fb.get(6, 3), 0);
        assert_eq!(h.decode(TIGHT_PNG, r, &[0x80, 1, 2, 3, 99]), Ok(Progress::Done(4)));
        assert_eq!(h.pixels_of(r), vec![0x010203; 8]);
    }

    #[test]
    fn tpixel_is_red_green_blue_whatever_the_shifts() {
        let pf = PixelFormat { red_shift: 0, blue_shift: 16, big_endian: true, ..PixelFormat::BGRX };
        let mut h = Harness::with_format(2, 1, pf);
        assert_eq!(h.decode(TIGHT, Rect::new(0, 0, 2, 1), &[0x80, 0x11, 0x22, 0x33]), Ok(Progress::Done(4)));
        assert_eq!(h.pixels_of(Rect::new(0, 0, 2, 1)), [0x112233; 2]);
    }

    #[test]
    fn tpixel_is_a_pixel_in_sixteen_bits() {
        let mut h = Harness::with_format(3, 1, PixelFormat::for_depth(16).unwrap());
        let r = Rect::new(0, 0, 3, 1);
        // Copy filter, 6 bytes of 5-5-5 pixels sent raw.
        let input = [0x00, 0x00, 0x7c, 0xe0, 0x03, 0x1f, 0x00];
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(7)));
        assert_eq!(h.pixels_of(r), [0xff0000, 0x00ff00, 0x0000ff]);
    }

    #[test]
    fn copy_filter_raw_below_twelve_bytes() {
        let mut h = Harness::new(4, 4);
        let r = Rect::new(1, 1, 3, 1);
        let px = [0x010203, 0xa0b0c0, 0xffffff];
        let input = [&[0x00][..], &rgb(&px)].concat();
        assert_eq!(input.len(), 10);
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(10)));
        assert_eq!(h.pixels_of(r), px);
        // The same with an explicit Copy filter id.
        let px = [7, 8, 9];
        let input = [&[0x40, 0x00][..], &rgb(&px)].concat();
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(11)));
        assert_eq!(h.pixels_of(r), px);
    }

    #[test]
    fn copy_filter_zlib() {
        let mut h = Harness::new(8, 8);
        let r = Rect::new(4, 4, 4, 2);
        let px: Vec<Rgb> = (0..8).map(|i| 0x102030 * i).collect();
        let input = zlib_rect(&[0x00], &mut Deflater::default(), &rgb(&px));
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), px);
    }

    #[test]
    fn two_colour_palette_rows_are_padded() {
        let mut h = Harness::new(6, 3);
        let r = Rect::new(1, 1, 5, 2);
        let (c0, c1) = (0x0000ff, 0xffff00);
        // Palette filter, 2 colours, then one byte per row (sent raw: 2 bytes); padding bits are ignored.
        let input = [&[0x40, 0x01, 0x01][..], &rgb(&[c0, c1]), &[0b1011_0000, 0b0100_1111]].concat();
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), [c1, c0, c1, c1, c0, c0, c1, c0, c0, c1]);
        assert_eq!(h.fb.get(0, 1), 0);
    }

    #[test]
    fn two_colour_palette_zlib() {
        let mut h = Harness::new(16, 8);
        let r = Rect::new(0, 0, 12, 8);
        let (c0, c1) = (0x111111, 0xeeeeee);
        // 12 pixels per row: 2 bytes, the last 4 bits padding. Stream 2.
        let bits: Vec<u8> = (0..8u8).flat_map(|y| [0x80 >> y, 0xf0]).collect();
        let head = [&[0x60, 0x01, 0x01][..], &rgb(&[c0, c1])].concat();
        let input = zlib_rect(&head, &mut Deflater::default(), &bits);
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(input.len())));
        for y in 0..8 {
            for x in 0..12 {
                let want = if x == y || x >= 8 { c1 } else { c0 };
                assert_eq!(h.fb.get(x, y), want, "{x},{y}");
            }
        }
    }

    #[test]
    fn five_colour_palette() {
        let mut h = Harness::new(4, 3);
        let r = Rect::new(0, 0, 4, 3);
        let palette = [0x000000, 0xff0000, 0x00ff00, 0x0000ff, 0xffffff];
        let indices = [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0, 4];
        let head = [&[0x40, 0x01, 0x04][..], &rgb(&palette)].concat();
        let input = zlib_rect(&head, &mut Deflater::default(), &indices);
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(input.len())));
        let want: Vec<Rgb> = indices.iter().map(|&i| palette[usize::from(i)]).collect();
        assert_eq!(h.pixels_of(r), want);
    }

    #[test]
    fn gradient_filter() {
        // Pixels (R, G, B):
        //   (10, 200,   0)  (20,   0,   0)  (30, 200, 200)
        //   (15,   0, 200)  (200, 50, 250)  ( 5, 100, 100)
        // Each channel is sent as V - P (mod 256) with P = left + above - above-left clamped to 0..=255.
        // The last pixel's red is predicted as 200 + 30 - 20 = 210 (difference 51), its green as
        // 50 + 200 - 0 = 250 (difference 106) and its blue clamps from 250 + 200 - 0 = 450 to 255
        // (difference 101); the middle pixel's green clamps from 0 + 0 - 200 to 0.
        let diffs = [
            10, 200, 0, 10, 56, 0, 10, 200, 200, //
            5, 56, 200, 175, 50, 50, 51, 106, 101,
        ];
        let want = [0x0ac800, 0x140000, 0x1ec8c8, 0x0f00c8, 0xc832fa, 0x056464];
        let mut h = Harness::new(5, 5);
        let r = Rect::new(2, 3, 3, 2);
        let input = zlib_rect(&[0x40, 0x02], &mut Deflater::default(), &diffs);
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), want);
    }

    #[test]
    fn gradient_filter_sixteen_bits() {
        // 5-5-5 pixels (31, 0, 5) and (1, 31, 5): the second is sent as (1 - 31, 31 - 0, 5 - 5) mod 32.
        let mut h = Harness::with_format(2, 1, PixelFormat::for_depth(16).unwrap());
        let r = Rect::new(0, 0, 2, 1);
        let input = [0x40, 0x02, 0x05, 0x7c, 0xe0, 0x0b];
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(6)));
        assert_eq!(h.pixels_of(r), [0xff0029, 0x08ff29]);
    }

    #[test]
    fn gradient_needs_true_colour() {
        let mut h = Harness::with_format(2, 1, PixelFormat::for_depth(8).unwrap());
        let e = h.decode(TIGHT, Rect::new(0, 0, 2, 1), &[0x40, 0x02, 1, 2]).unwrap_err();
        assert!(malformed(e).contains("gradient filter needs a true-colour format"));
    }

    #[test]
    fn rects_on_one_stream_share_its_history() {
        let mut h = Harness::new(8, 8);
        let mut d = Deflater::default();
        let r = Rect::new(0, 0, 8, 2);
        let a: Vec<Rgb> = (0..16).map(|i| i * 0x010101).collect();
        let b: Vec<Rgb> = (0..16).map(|i| 0xff0000 | i).collect();
        let first = zlib_rect(&[0x10], &mut d, &rgb(&a));
        let second = zlib_rect(&[0x10], &mut d, &rgb(&b));
        assert_eq!(h.decode(TIGHT, r, &first), Ok(Progress::Done(first.len())));
        assert_eq!(h.pixels_of(r), a);
        assert_eq!(h.decode_trickled(TIGHT, r, &second), Ok(second.len()));
        assert_eq!(h.pixels_of(r), b);
    }

    #[test]
    fn reset_bits_start_fresh_streams() {
        let mut h = Harness::new(8, 8);
        let r = Rect::new(0, 0, 8, 2);
        let a: Vec<Rgb> = (0..16).map(|i| i * 0x030201).collect();
        // Stream 1 and stream 3 carry history.
        let first = zlib_rect(&[0x10], &mut Deflater::default(), &rgb(&a));
        assert_eq!(h.decode(TIGHT, r, &first), Ok(Progress::Done(first.len())));
        let third = zlib_rect(&[0x30], &mut Deflater::default(), &rgb(&a));
        assert_eq!(h.decode(TIGHT, r, &third), Ok(Progress::Done(third.len())));

        // A fresh zlib stream on stream 1 without a reset is corrupt.
        let fresh = zlib_rect(&[0x10], &mut Deflater::default(), &rgb(&a));
        let mut copy = Harness::new(8, 8);
        copy.decode(TIGHT, r, &first).unwrap();
        assert!(malformed(copy.decode(TIGHT, r, &fresh).unwrap_err()).contains("zlib"));

        // With bit 1 set, stream 1 restarts; the reset also applies to a Fill rectangle (bit 3).
        let b: Vec<Rgb> = (0..16).map(|i| 0x00ff00 | i).collect();
        let second = zlib_rect(&[0x12], &mut Deflater::default(), &rgb(&b));
        assert_eq!(h.decode_trickled(TIGHT, r, &second), Ok(second.len()));
        assert_eq!(h.pixels_of(r), b);
        assert_eq!(h.decode(TIGHT, r, &[0x88, 0, 0, 0]), Ok(Progress::Done(4)));
        let fourth = zlib_rect(&[0x30], &mut Deflater::default(), &rgb(&b));
        assert_eq!(h.decode(TIGHT, r, &fourth), Ok(Progress::Done(fourth.len())));
        assert_eq!(h.pixels_of(r), b);
    }

    fn test_image(w: u16, h: u16) -> Vec<Rgb> {
        (0..u32::from(h))
            .flat_map(|y| (0..u32::from(w)).map(move |x| ((x * 12) << 16) | ((y * 20) << 8) | (255 - x * 8)))
            .collect()
    }

    fn jpeg(w: u16, h: u16, px: &[Rgb]) -> Vec<u8> {
        let mut out = Vec::new();
        let data: Vec<u8> = px.iter().flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8]).collect();
        jpeg_encoder::Encoder::new(&mut out, 100).encode(&data, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    fn assert_close(got: &[Rgb], want: &[Rgb], tolerance: i32) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            for shift in [16, 8, 0] {
                let (a, b) = (((g >> shift) & 0xff) as i32, ((w >> shift) & 0xff) as i32);
                assert!((a - b).abs() <= tolerance, "pixel {i}: {g:06x} vs {w:06x}");
            }
        }
    }

    #[test]
    fn grey_jpeg() {
        let grey: Vec<u8> = (0..64u8).map(|i| i * 4).collect();
        let mut image = Vec::new();
        jpeg_encoder::Encoder::new(&mut image, 100).encode(&grey, 8, 8, jpeg_encoder::ColorType::Luma).unwrap();
        let input = [&[0x90][..], &compact(image.len()), &image].concat();
        let mut h = Harness::new(8, 8);
        let r = Rect::new(0, 0, 8, 8);
        assert_eq!(h.decode(TIGHT, r, &input), Ok(Progress::Done(input.len())));
        let want: Vec<Rgb> = grey.iter().map(|&v| u32::from(v) * 0x010101).collect();
        assert_close(&h.pixels_of(r), &want, 2);
    }

    #[test]
    fn jpeg_in_both_flavours() {
        let px = test_image(16, 8);
        let image = jpeg(16, 8, &px);
        let input = [&[0x90][..], &compact(image.len()), &image].concat();
        let r = Rect::new(3, 2, 16, 8);
        for encoding in [TIGHT, TIGHT_PNG] {
            let mut h = Harness::new(20, 12);
            assert_eq!(h.decode(encoding, r, &input), Ok(Progress::Done(input.len())));
            assert_close(&h.pixels_of(r), &px, 3);
            assert_eq!(h.fb.get(2, 2), 0);
        }
    }

    fn png(w: u16, h: u16, colour: png::ColorType, depth: png::BitDepth, palette: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = png::Encoder::new(&mut out, w.into(), h.into());
        e.set_color(colour);
        e.set_depth(depth);
        if !palette.is_empty() {
            e.set_palette(palette.to_vec());
        }
        let mut writer = e.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    fn png_rect(image: &[u8]) -> Vec<u8> {
        [&[0xa0][..], &compact(image.len()), image].concat()
    }

    #[test]
    fn png_rgb() {
        let px = test_image(5, 3);
        let image = png(5, 3, png::ColorType::Rgb, png::BitDepth::Eight, &[], &rgb(&px));
        let input = png_rect(&image);
        let mut h = Harness::new(8, 8);
        let r = Rect::new(1, 2, 5, 3);
        assert_eq!(h.decode(TIGHT_PNG, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), px);
    }

    #[test]
    fn png_palette_grey_and_alpha() {
        let r = Rect::new(0, 0, 5, 2);
        // Four colours at 2 bits per pixel: rows of 5 pixels take 2 bytes.
        let palette = [0xff, 0, 0, 0, 0xff, 0, 0, 0, 0xff, 0x12, 0x34, 0x56];
        let rows = [0b0001_1011, 0b1100_0000, 0b1110_0100, 0b0000_0000];
        let image = png(5, 2, png::ColorType::Indexed, png::BitDepth::Two, &palette, &rows);
        let mut h = Harness::new(5, 2);
        assert_eq!(h.decode(TIGHT_PNG, r, &png_rect(&image)), Ok(Progress::Done(png_rect(&image).len())));
        let (red, green, blue, other) = (0xff0000, 0x00ff00, 0x0000ff, 0x123456);
        assert_eq!(h.pixels_of(r), [red, green, blue, other, other, other, blue, green, red, red]);

        let grey: Vec<u8> = (0..10u16).flat_map(|i| (i * 6000).to_be_bytes()).collect();
        let image = png(5, 2, png::ColorType::Grayscale, png::BitDepth::Sixteen, &[], &grey);
        assert_eq!(h.decode(TIGHT_PNG, r, &png_rect(&image)), Ok(Progress::Done(png_rect(&image).len())));
        let want: Vec<Rgb> = (0..10u32).map(|i| ((i * 6000) >> 8) * 0x010101).collect();
        assert_eq!(h.pixels_of(r), want);

        let rgba: Vec<u8> = (0..10u8).flat_map(|i| [i, 2 * i, 3 * i, 255 - i]).collect();
        let image = png(5, 2, png::ColorType::Rgba, png::BitDepth::Eight, &[], &rgba);
        assert_eq!(h.decode(TIGHT_PNG, r, &png_rect(&image)), Ok(Progress::Done(png_rect(&image).len())));
        let want: Vec<Rgb> = (0..10u32).map(|i| i * 0x010203).collect();
        assert_eq!(h.pixels_of(r), want);
    }

    #[test]
    fn tight_png_accepts_basic_as_qemu_sends_it() {
        let mut h = Harness::new(4, 4);
        let r = Rect::new(1, 1, 2, 1);
        // Basic, stream 0, Copy without a filter byte, 2 TPIXELs of 3 bytes: fewer than 12 bytes, so raw.
        let input = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60];
        assert_eq!(h.decode(TIGHT_PNG, r, &input), Ok(Progress::Done(input.len())));
        assert_eq!(h.pixels_of(r), [0x102030, 0x405060]);
    }

    #[test]
    fn unknown_compression_types() {
        let mut h = Harness::new(4, 4);
        let r = Rect::new(0, 0, 1, 1);
        for (encoding, control) in [(TIGHT, 0xa0), (TIGHT, 0xe0), (TIGHT, 0xb0), (TIGHT_PNG, 0xf3)] {
            let e = h.decode(encoding, r, &[control]).unwrap_err();
            assert!(malformed(e).contains("unknown compression type"), "{control:#x}");
        }
        let e = h.decode(TIGHT, r, &[0x40, 3]).unwrap_err();
        assert_eq!(malformed(e), "unknown filter 3");
    }

    /// One rectangle of each kind, for the truncation test.
    fn samples() -> Vec<(i32, Rect, Vec<u8>)> {
        let r = Rect::new(0, 0, 6, 4);
        let px = test_image(6, 4);
        let mut out = vec![
            (TIGHT, r, vec![0x80, 1, 2, 3]),
            (TIGHT, Rect::new(0, 0, 3, 1), [&[0x00][..], &rgb(&px[..3])].concat()),
            (TIGHT, r, zlib_rect(&[0x00], &mut Deflater::default(), &rgb(&px))),
            (TIGHT, r, vec![0x41, 0x01, 0x01, 1, 2, 3, 4, 5, 6, 0x5a, 0xa5, 0x0f, 0xf0]),
            (TIGHT, r, zlib_rect(&[0x40, 0x01, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9], &mut Deflater::default(), &[2; 24])),
            (TIGHT, r, zlib_rect(&[0x40, 0x02], &mut Deflater::default(), &[9; 72])),
        ];
        let image = jpeg(6, 4, &px);
        out.push((TIGHT, r, [&[0x90][..], &compact(image.len()), &image].concat()));
        let image = png(6, 4, png::ColorType::Rgb, png::BitDepth::Eight, &[], &rgb(&px));
        out.push((TIGHT_PNG, r, png_rect(&image)));
        out
    }

    #[test]
    fn truncated_input_waits_at_every_cut() {
        for (i, (encoding, r, input)) in samples().into_iter().enumerate() {
            let mut h = Harness::new(8, 8);
            for cut in 0..input.len() {
                assert_eq!(h.decode(encoding, r, &input[..cut]), Ok(Progress::Partial(0)), "sample {i} cut {cut}");
            }
            assert_eq!(h.fb.pixels(), &[0; 64][..], "sample {i} wrote before its input was complete");
            let mut once = Harness::new(8, 8);
            assert_eq!(once.decode(encoding, r, &input), Ok(Progress::Done(input.len())), "sample {i}");
            assert_eq!(h.decode_trickled(encoding, r, &input), Ok(input.len()), "sample {i}");
            assert_eq!(h.fb.pixels(), once.fb.pixels(), "sample {i}");
        }
    }

    #[test]
    fn palette_index_beyond_the_palette() {
        let mut h = Harness::new(4, 4);
        let head = [&[0x40, 0x01, 0x02][..], &rgb(&[1, 2, 3])].concat();
        let input = zlib_rect(&head, &mut Deflater::default(), &[0, 1, 2, 0, 1, 2, 7, 0, 0, 0, 0, 0]);
        let e = h.decode(TIGHT, Rect::new(0, 0, 4, 3), &input).unwrap_err();
        assert_eq!(malformed(e), "palette index 7 is beyond the palette of 3 colours");
    }

    #[test]
    fn image_of_the_wrong_size() {
        let mut h = Harness::new(32, 32);
        let px = test_image(8, 8);
        let image = jpeg(8, 8, &px);
        let input = [&[0x90][..], &compact(image.len()), &image].concat();
        let e = h.decode(TIGHT, Rect::new(0, 0, 16, 8), &input).unwrap_err();
        assert_eq!(malformed(e), "Invalid width/height of the rectangle: the JPEG image is 8x8, the rectangle 16x8");
        let image = png(8, 8, png::ColorType::Rgb, png::BitDepth::Eight, &[], &rgb(&px));
        let e = h.decode(TIGHT_PNG, Rect::new(0, 0, 8, 9), &png_rect(&image)).unwrap_err();
        assert_eq!(malformed(e), "Invalid width/height of the rectangle: the PNG image is 8x8, the rectangle 8x9");
    }

    #[test]
    fn corrupt_images() {
        let mut h = Harness::new(8, 8);
        let r = Rect::new(0, 0, 8, 8);
        let garbage = b"this is not an image at all";
        let input = [&[0x90][..], &compact(garbage.len()), garbage].concat();
        assert!(malformed(h.decode(TIGHT, r, &input).unwrap_err()).starts_with("corrupt JPEG image"));
        let e = h.decode(TIGHT_PNG, r, &png_rect(garbage)).unwrap_err();
        assert!(malformed(e).starts_with("corrupt PNG image"));

        let mut image = png(8, 8, png::ColorType::Rgb, png::BitDepth::Eight, &[], &rgb(&test_image(8, 8)));
        let len = image.len();
        image.truncate(len - 30);
        let e = h.decode(TIGHT_PNG, r, &png_rect(&image)).unwrap_err();
        assert!(malformed(e).starts_with("corrupt PNG image"));
        let e = h.decode(TIGHT, r, &zlib_rect(&[0x00], &mut Deflater::default(), &[0; 300])).unwrap_err();
        assert_eq!(malformed(e), "zlib data inflates to more than the 192 bytes the rectangle can hold");
    }

    #[test]
    fn lengths_are_bounded_before_waiting() {
        let mut h = Harness::new(64, 64);
        h.limits.max_buffered_bytes = 1000;
        let r = Rect::new(0, 0, 64, 64);
        let e = h.decode(TIGHT, r, &[0x00, 0xe9, 0x07]).unwrap_err();
        assert_eq!(e, ProtocolError::TooLarge { what: "Tight zlib data", size: 1001, limit: 1000 });
        let e = h.decode(TIGHT, r, &[0x90, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(matches!(e, ProtocolError::TooLarge { what: "Tight JPEG data", size: 4194303, .. }), "{e}");

        // Within the session's limit but more than a 4x4 rectangle can need.
        let mut h = Harness::new(4, 4);
        let e = h.decode(TIGHT, Rect::new(0, 0, 4, 4), &[0x00, 0x80, 0x10]).unwrap_err();
        assert_eq!(e, ProtocolError::TooLarge { what: "Tight zlib data", size: 2048, limit: 48 + 12 + 1024 });
        let e = h.decode(TIGHT_PNG, Rect::new(0, 0, 4, 4), &[0xa0, 0xff, 0xff, 0x7f]).unwrap_err();
        assert!(matches!(e, ProtocolError::TooLarge { what: "TightPNG PNG data", .. }), "{e}");
    }

    #[test]
    fn rectangles_wider_than_2048_are_refused() {
        let mut h = Harness::new(4096, 1);
        let e = h.decode(TIGHT, Rect::new(0, 0, 2049, 1), &[0x80, 0, 0, 0]).unwrap_err();
        assert_eq!(malformed(e), "rectangle width 2049 exceeds the maximum of 2048");
        assert_eq!(h.decode(TIGHT, Rect::new(0, 0, 2048, 1), &[0x80, 0, 0, 0]), Ok(Progress::Done(4)));
    }

    #[test]
    fn empty_rectangles() {
        let mut h = Harness::new(4, 4);
        assert_eq!(h.decode(TIGHT, Rect::new(1, 1, 0, 3), &[0x00]), Ok(Progress::Done(1)));
        assert_eq!(
            h.decode(TIGHT, Rect::new(1, 1, 3, 0), &[0x40, 0x01, 0x01, 0, 0, 0, 1, 1, 1]),
            Ok(Progress::Done(9))
        );
        assert_eq!(h.fb.pixels(), &[0; 16][..]);
    }
}
