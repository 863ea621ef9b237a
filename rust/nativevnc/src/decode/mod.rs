//! Rectangle decoders, one module per encoding.
//!
//! A rectangle is decoded by a [`Decoder`], made for its encoding when its header arrives:
//!
//! ```text
//! Decoder::new(encoding)?.decode(rect, input, ctx) -> Result<Progress, ProtocolError>
//! ```
//!
//! `input` holds the bytes received so far, starting where the previous call stopped. The decoder consumes
//! whole units and says how many bytes it used: [`Progress::Done`] when the rectangle is complete,
//! [`Progress::Partial`] when it needs more bytes. Each variant of [`Decoder`] holds the state of one
//! encoding's decoder, a type its module owns, so that a decoder only ever sees its own state. Raw, RRE,
//! Hextile and TRLE decode row by row, subrectangle by subrectangle or tile by tile and keep their place in
//! that state ([`raw::Rows`], [`rre::Subrects`], [`hextile::Tiles`], [`trle::Tiles`]), so a large rectangle
//! never has to be buffered whole. ZRLE and Zlib feed their compressed bytes to the connection's zlib stream
//! as they arrive and decode tiles or pixels from a small window of inflated bytes ([`zlib::Chunk`], see
//! [`zlib::decode_chunk`]); every byte they report as used is in the stream and in the chunk. CopyRect and
//! Tight decode a rectangle at once ([`atomic`]) and keep no state: they must read all of their input before
//! they change any state (the Tight zlib streams), so that a retry with more bytes starts from the same
//! state.
//!
//! The session has checked `rect` against the framebuffer before the first call; decoders write only
//! inside it. Anything that can never be valid is a [`ProtocolError`].

pub(crate) mod copyrect;
pub(crate) mod cursor;
pub(crate) mod hextile;
pub(crate) mod raw;
pub(crate) mod rre;
pub(crate) mod tight;
pub(crate) mod trle;
pub(crate) mod zlib;
pub(crate) mod zrle;

use crate::codec::{Parse, ReadError, Reader};
use crate::config::Limits;
use crate::encoding as enc;
use crate::error::ProtocolError;
use crate::framebuffer::{Canvas, Rect};
use crate::pixel::{PixelReader, Rgb};

/// How far a decoder got with the input it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The rectangle is complete; this many bytes were used.
    Done(usize),
    /// More input is needed; this many bytes were used (and must not be offered again).
    Partial(usize),
}

/// The decoder of one rectangle of a pixel encoding, with the state it carries from call to call.
#[derive(Debug)]
pub(crate) enum Decoder {
    Raw(raw::Rows),
    CopyRect,
    Rre(rre::Subrects),
    Hextile(hextile::Tiles),
    Zlib(zlib::Chunk),
    Tight(tight::Flavour),
    Trle(trle::Tiles),
    Zrle(zlib::Chunk),
}

impl Decoder {
    /// A decoder for a new rectangle of `encoding`, if that is a pixel encoding this client decodes.
    pub fn new(encoding: i32) -> Option<Self> {
        Some(match encoding {
            enc::RAW => Decoder::Raw(raw::Rows::default()),
            enc::COPY_RECT => Decoder::CopyRect,
            enc::RRE => Decoder::Rre(rre::Subrects::default()),
            enc::HEXTILE => Decoder::Hextile(hextile::Tiles::default()),
            enc::ZLIB => Decoder::Zlib(zlib::Chunk::default()),
            enc::TIGHT => Decoder::Tight(tight::Flavour::Tight),
            enc::TIGHT_PNG => Decoder::Tight(tight::Flavour::TightPng),
            enc::TRLE => Decoder::Trle(trle::Tiles::default()),
            enc::ZRLE => Decoder::Zrle(zlib::Chunk::default()),
            _ => return None,
        })
    }

    /// Decodes as much of the rectangle as `input` holds (see the module documentation).
    pub fn decode(&mut self, rect: &Rect, input: &[u8], ctx: &mut Ctx) -> Result<Progress, ProtocolError> {
        match self {
            Decoder::Raw(rows) => raw::decode(rect, input, rows, ctx),
            Decoder::CopyRect => copyrect::decode(rect, input, ctx),
            Decoder::Rre(subrects) => rre::decode(rect, input, subrects, ctx),
            Decoder::Hextile(tiles) => hextile::decode(rect, input, tiles, ctx),
            Decoder::Zlib(chunk) => zlib::decode(rect, input, chunk, ctx),
            Decoder::Tight(flavour) => tight::decode(rect, input, ctx, *flavour),
            Decoder::Trle(tiles) => trle::decode(rect, input, tiles, ctx),
            Decoder::Zrle(chunk) => zrle::decode(rect, input, chunk, ctx),
        }
    }
}

/// State that lives as long as the connection: the zlib streams.
#[derive(Default)]
pub(crate) struct Streams {
    pub zlib: Inflater,
    pub zrle: Inflater,
    pub tight: [Inflater; 4],
}

/// What a decoder works with.
pub(crate) struct Ctx<'a> {
    pub pixels: &'a PixelReader,
    pub fb: Canvas<'a>,
    pub streams: &'a mut Streams,
    pub limits: &'a Limits,
    /// Reusable buffers, so that steady-state decoding does not allocate.
    pub scratch: &'a mut Scratch,
}

#[derive(Default)]
pub(crate) struct Scratch {
    pub bytes: Vec<u8>,
    pub pixels: Vec<Rgb>,
}

/// Whether [`Decoder::new`] handles this encoding.
pub fn is_pixel_encoding(encoding: i32) -> bool {
    Decoder::new(encoding).is_some()
}

/// Runs a decoder that needs its whole input at once: `Incomplete` becomes `Partial(0)`.
pub(crate) fn atomic(input: &[u8], f: impl FnOnce(&mut Reader) -> Parse<()>) -> Result<Progress, ProtocolError> {
    let mut r = Reader::new(input);
    match f(&mut r) {
        Ok(()) => Ok(Progress::Done(r.consumed())),
        Err(ReadError::Incomplete) => Ok(Progress::Partial(0)),
        Err(ReadError::Invalid(e)) => Err(e),
    }
}

/// One zlib stream of a connection (ZRLE, Zlib and Tight keep theirs across rectangles). The inflater
/// (about 47 KiB with its window) is made on first use and dropped on reset: a connection holds only
/// those of the streams its server uses.
#[derive(Default)]
pub(crate) struct Inflater {
    z: Option<flate2::Decompress>,
}

impl Inflater {
    pub fn reset(&mut self) {
        self.z = None;
    }

    fn stream(&mut self) -> &mut flate2::Decompress {
        self.z.get_or_insert_with(|| flate2::Decompress::new(true))
    }

    /// Inflates from `input` into `out` as far as either goes; returns the bytes consumed and produced.
    /// The stream keeps what it consumed (never offer those bytes again) and may hold back output until
    /// `out` has room: with input left or `out` full, call again. Fails if the data is corrupt or the
    /// stream ends.
    pub fn inflate_some(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        encoding: &'static str,
    ) -> Result<(usize, usize), ProtocolError> {
        let z = self.stream();
        let before_in = z.total_in();
        let before_out = z.total_out();
        let status = z
            .decompress(input, out, flate2::FlushDecompress::Sync)
            .map_err(|e| ProtocolError::malformed(encoding, format!("corrupt zlib data: {e}")))?;
        if status == flate2::Status::StreamEnd {
            return Err(ProtocolError::malformed(encoding, "the zlib stream ended"));
        }
        // Both are at most the slices' lengths.
        Ok(((z.total_in() - before_in) as usize, (z.total_out() - before_out) as usize))
    }

    /// Inflates all of `input`, a complete chunk the server flushed, into `out` (replacing its contents).
    /// Fails if the data is corrupt or would inflate to more than `max_out` bytes.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
        encoding: &'static str,
    ) -> Result<(), ProtocolError> {
        out.clear();
        let too_much = || {
            ProtocolError::malformed(
                encoding,
                format!("zlib data inflates to more than the {max_out} bytes the rectangle can hold"),
            )
        };
        // One byte of room beyond the limit tells "exactly max_out" from "more than max_out".
        let room = max_out.saturating_add(1);
        let mut used = 0;
        loop {
            if out.len() == out.capacity() {
                let grow = input.len().saturating_mul(4).max(4096).min(room - out.len());
                out.reserve_exact(grow);
            }
            let z = self.stream();
            let before_in = z.total_in();
            let before_out = z.total_out();
            let status = z
                .decompress_vec(&input[used..], out, flate2::FlushDecompress::Sync)
                .map_err(|e| ProtocolError::malformed(encoding, format!("corrupt zlib data: {e}")))?;
            let consumed = (z.total_in() - before_in) as usize;
            let produced = z.total_out() - before_out;
            used += consumed;
            if out.len() > max_out {
                return Err(too_much());
            }
            if status == flate2::Status::StreamEnd {
                return Err(ProtocolError::malformed(encoding, "the zlib stream ended"));
            }
            if used == input.len() && out.len() < out.capacity() {
                return Ok(());
            }
            if consumed == 0 && produced == 0 && out.len() < out.capacity() {
                return Err(ProtocolError::malformed(encoding, "zlib data made no progress"));
            }
        }
    }

    /// Inflates all of `input` and requires exactly `expected` bytes out.
    pub fn inflate_exact(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        expected: usize,
        encoding: &'static str,
    ) -> Result<(), ProtocolError> {
        self.inflate(input, out, expected, encoding)?;
        if out.len() != expected {
            return Err(ProtocolError::malformed(
                encoding,
                format!("zlib data inflated to {} bytes, expected {expected}", out.len()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A small harness for decoder tests: a framebuffer, a pixel reader and streams in one place, and
    //! a driver that feeds input in pieces to check that partial input resumes correctly.

    use super::*;
    use crate::framebuffer::Framebuffer;
    use crate::pixel::PixelFormat;

    pub struct Harness {
        pub pixels: PixelReader,
        pub fb: Framebuffer,
        pub streams: Streams,
        pub limits: Limits,
        pub scratch: Scratch,
    }

    impl Harness {
        pub fn new(w: u16, h: u16) -> Self {
            Self::with_format(w, h, PixelFormat::BGRX)
        }

        pub fn with_format(w: u16, h: u16, pf: PixelFormat) -> Self {
            pf.validate().unwrap();
            Harness {
                pixels: PixelReader::new(pf),
                fb: Framebuffer::new(w, h),
                streams: Streams::default(),
                limits: Limits::default(),
                scratch: Scratch::default(),
            }
        }

        /// What a decoder works with, borrowed from the harness.
        pub fn ctx(&mut self) -> Ctx<'_> {
            Ctx {
                pixels: &self.pixels,
                fb: self.fb.canvas(),
                streams: &mut self.streams,
                limits: &self.limits,
                scratch: &mut self.scratch,
            }
        }

        /// Decodes `input` given all at once; returns the result and the bytes used.
        pub fn decode(&mut self, encoding: i32, rect: Rect, input: &[u8]) -> Result<Progress, ProtocolError> {
            let mut decoder = Decoder::new(encoding).expect("a pixel encoding");
            decoder.decode(&rect, input, &mut self.ctx())
        }

        /// Decodes `input` offered one byte more at a time, as a trickling socket would deliver it, and
        /// checks that every byte is used exactly once. Returns the bytes used.
        pub fn decode_trickled(&mut self, encoding: i32, rect: Rect, input: &[u8]) -> Result<usize, ProtocolError> {
            let mut decoder = Decoder::new(encoding).expect("a pixel encoding");
            let mut start = 0;
            for end in 0..=input.len() {
                match decoder.decode(&rect, &input[start..end], &mut self.ctx())? {
                    Progress::Done(n) => return Ok(start + n),
                    Progress::Partial(n) => start += n,
                }
            }
            panic!("decoder wanted more than the {} bytes of its complete input", input.len());
        }

        pub fn pixels_of(&self, r: Rect) -> Vec<Rgb> {
            let mut v = Vec::new();
            self.fb.read(&r, &mut v);
            v
        }
    }

    /// BGRX wire bytes of `px`.
    pub fn bgrx(px: &[Rgb]) -> Vec<u8> {
        px.iter().flat_map(|p| p.to_le_bytes()).collect()
    }

    /// A zlib stream with a sync flush after each chunk, as VNC servers send it.
    pub struct Deflater(flate2::Compress);

    impl Default for Deflater {
        fn default() -> Self {
            Deflater(flate2::Compress::new(flate2::Compression::default(), true))
        }
    }

    impl Deflater {
        pub fn chunk(&mut self, data: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(data.len() + 1024);
            let mut used = 0;
            loop {
                if out.len() == out.capacity() {
                    out.reserve(out.capacity().max(1024));
                }
                let before = self.0.total_in();
                self.0.compress_vec(&data[used..], &mut out, flate2::FlushCompress::Sync).unwrap();
                used += (self.0.total_in() - before) as usize;
                if used == data.len() && out.len() < out.capacity() {
                    return out;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::Deflater;
    use super::*;

    #[test]
    fn inflater_keeps_its_stream_across_chunks() {
        let mut d = Deflater::default();
        let mut i = Inflater::default();
        let mut out = Vec::new();
        let a = d.chunk(&[7; 5000]);
        let b = d.chunk(b"second chunk");
        i.inflate_exact(&a, &mut out, 5000, "test").unwrap();
        assert_eq!(out, vec![7; 5000]);
        i.inflate_exact(&b, &mut out, 12, "test").unwrap();
        assert_eq!(out, b"second chunk");
    }

    #[test]
    fn inflater_is_made_on_first_use_and_dropped_on_reset() {
        let mut d = Deflater::default();
        let mut i = Inflater::default();
        assert!(i.z.is_none());
        let mut out = Vec::new();
        i.inflate_exact(&d.chunk(b"one"), &mut out, 3, "test").unwrap();
        assert!(i.z.is_some());
        i.reset();
        assert!(i.z.is_none());
        // After a reset the stream starts afresh: the old stream's next chunk lacks the zlib header.
        let e = i.inflate_exact(&d.chunk(b"two"), &mut out, 3, "test").unwrap_err();
        assert!(e.to_string().starts_with("test: corrupt zlib data"), "{e}");
        i.reset();
        i.inflate_exact(&Deflater::default().chunk(b"three"), &mut out, 5, "test").unwrap();
        assert_eq!(out, b"three");
    }

    #[test]
    fn inflater_streams_in_small_steps() {
        let mut d = Deflater::default();
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 / 3) as u8).collect();
        let z = [d.chunk(&data), d.chunk(b"and more")].concat();
        let mut i = Inflater::default();
        let (mut fed, mut out, mut buf) = (0, Vec::new(), [0; 100]);
        // Input a byte more at a time, output into 100 bytes: every byte is consumed once.
        for end in 1..=z.len() {
            loop {
                let (consumed, produced) = i.inflate_some(&z[fed..end], &mut buf, "test").unwrap();
                fed += consumed;
                out.extend_from_slice(&buf[..produced]);
                if produced < buf.len() && fed == end {
                    break;
                }
            }
        }
        assert_eq!(out, [&data[..], b"and more"].concat());
        let e = Inflater::default().inflate_some(&[0x78, 0x9c, 0xff, 0xff, 0xff, 0, 0x12], &mut buf, "Zlib");
        assert!(e.unwrap_err().to_string().starts_with("Zlib: corrupt zlib data"));
    }

    #[test]
    fn inflater_rejects_garbage_and_bombs() {
        let mut i = Inflater::default();
        let mut out = Vec::new();
        let e = i.inflate(&[0x78, 0x9c, 0xff, 0xff, 0xff, 0x00, 0x12], &mut out, 100, "Zlib").unwrap_err();
        assert!(e.to_string().starts_with("Zlib: corrupt zlib data"), "{e}");

        let mut d = Deflater::default();
        let bomb = d.chunk(&vec![0; 1 << 20]);
        let mut i = Inflater::default();
        let e = i.inflate(&bomb, &mut out, 1000, "ZRLE").unwrap_err();
        assert!(e.to_string().contains("more than the 1000 bytes"), "{e}");
        let mut i = Inflater::default();
        let e = i.inflate_exact(&d.chunk(b"abc"), &mut out, 4, "Zlib");
        assert!(e.is_err());
    }
}
