//! Pixel formats and their conversion to the framebuffer's own format.
//!
//! The framebuffer stores every pixel as a `u32` `0x00RRGGBB` ([`Rgb`]), whatever format the server sends.
//! A [`PixelReader`] turns wire pixels (`PIXEL` and the compressed `CPIXEL` of ZRLE and TRLE) into that
//! form; the common case, 32-bit little-endian B,G,R,X, is a plain copy.

use crate::codec::{Put, Reader};
use crate::error::ProtocolError;
use crate::framebuffer::put_pixel;

/// A framebuffer pixel: `0x00RRGGBB`.
pub type Rgb = u32;

/// The RFB `PIXEL_FORMAT` structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    pub true_colour: bool,
    pub red_max: u16,
    pub green_max: u16,
    pub blue_max: u16,
    pub red_shift: u8,
    pub green_shift: u8,
    pub blue_shift: u8,
}

impl PixelFormat {
    /// 32 bits per pixel, depth 24, little-endian, red at bit 16: bytes B,G,R,X. What this client asks for,
    /// and what VMware servers always send.
    pub const BGRX: PixelFormat = PixelFormat {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        red_max: 255,
        green_max: 255,
        blue_max: 255,
        red_shift: 16,
        green_shift: 8,
        blue_shift: 0,
    };

    /// 8 bits per pixel through a colour map (SetColourMapEntries): os-autoinst's depth 8.
    pub const COLOUR_MAPPED: PixelFormat = PixelFormat {
        bits_per_pixel: 8,
        depth: 8,
        big_endian: false,
        true_colour: false,
        red_max: 0,
        green_max: 0,
        blue_max: 0,
        red_shift: 0,
        green_shift: 0,
        blue_shift: 0,
    };

    /// The format os-autoinst requests for a preset `depth` (its `%supported_depths` table: 32 and 24 are
    /// [`Self::BGRX`], 16 and 15 are 5-5-5 in 16 bits, 8 is colour-mapped).
    pub fn for_depth(depth: u8) -> Option<PixelFormat> {
        match depth {
            32 | 24 => Some(Self::BGRX),
            16 | 15 => Some(PixelFormat {
                bits_per_pixel: 16,
                depth,
                big_endian: false,
                true_colour: true,
                red_max: 31,
                green_max: 31,
                blue_max: 31,
                red_shift: 10,
                green_shift: 5,
                blue_shift: 0,
            }),
            8 => Some(Self::COLOUR_MAPPED),
            _ => None,
        }
    }

    pub const WIRE_LEN: usize = 16;

    pub fn read(r: &mut Reader) -> Result<PixelFormat, crate::codec::Incomplete> {
        let bits_per_pixel = r.u8()?;
        let depth = r.u8()?;
        let big_endian = r.u8()? != 0;
        let true_colour = r.u8()? != 0;
        let red_max = r.u16()?;
        let green_max = r.u16()?;
        let blue_max = r.u16()?;
        let red_shift = r.u8()?;
        let green_shift = r.u8()?;
        let blue_shift = r.u8()?;
        r.skip(3)?;
        Ok(PixelFormat {
            bits_per_pixel,
            depth,
            big_endian,
            true_colour,
            red_max,
            green_max,
            blue_max,
            red_shift,
            green_shift,
            blue_shift,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.bits_per_pixel);
        out.put_u8(self.depth);
        out.put_u8(self.big_endian as u8);
        out.put_u8(self.true_colour as u8);
        out.put_u16(self.red_max);
        out.put_u16(self.green_max);
        out.put_u16(self.blue_max);
        out.put_u8(self.red_shift);
        out.put_u8(self.green_shift);
        out.put_u8(self.blue_shift);
        out.extend_from_slice(&[0; 3]);
    }

    /// Checks that pixels in this format can be decoded.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |why: &str| Err(ProtocolError::UnsupportedPixelFormat(format!("{why} ({self:?})")));
        if !matches!(self.bits_per_pixel, 8 | 16 | 32) {
            return bad("bits per pixel must be 8, 16 or 32");
        }
        if self.true_colour {
            for (max, shift) in
                [(self.red_max, self.red_shift), (self.green_max, self.green_shift), (self.blue_max, self.blue_shift)]
            {
                if max == 0 {
                    return bad("a colour channel has a maximum of 0");
                }
                let bits = 16 - max.leading_zeros();
                if u32::from(shift) + bits > u32::from(self.bits_per_pixel) {
                    return bad("a colour channel lies outside the pixel");
                }
            }
        } else if self.bits_per_pixel != 8 {
            return bad("colour-mapped pixels must be 8 bits");
        }
        Ok(())
    }

    pub fn bytes_per_pixel(&self) -> usize {
        usize::from(self.bits_per_pixel / 8)
    }

    /// Where the colour bits of a 32-bit true-colour pixel of depth <= 24 sit, if they fit in three bytes;
    /// such a format sends 3-byte compressed pixels (CPIXEL).
    fn packed_bytes(&self) -> Option<Packed> {
        if !(self.true_colour && self.bits_per_pixel == 32 && self.depth <= 24) {
            return None;
        }
        let mask = |max: u16, shift: u8| u32::from(max).checked_shl(u32::from(shift)).unwrap_or(0);
        let all = mask(self.red_max, self.red_shift)
            | mask(self.green_max, self.green_shift)
            | mask(self.blue_max, self.blue_shift);
        if all & 0xff00_0000 == 0 {
            Some(Packed::Low)
        } else if all & 0xff == 0 {
            Some(Packed::High)
        } else {
            None
        }
    }

    /// Size of a compressed pixel (CPIXEL) in this format.
    pub fn cpixel_size(&self) -> usize {
        if self.packed_bytes().is_some() {
            3
        } else {
            self.bytes_per_pixel()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packed {
    /// The colour bits are in the three least significant bytes.
    Low,
    /// The colour bits are in the three most significant bytes.
    High,
}

/// How wire pixels are laid out, chosen once per pixel format so the hot loops do not branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Little-endian 32-bit pixels with 8-bit channels at shifts 16/8/0: a masked copy.
    Bgrx,
    /// Any other true-colour format.
    General,
    /// 8-bit colour-map indices.
    Mapped,
}

/// Converts wire pixels of one format to [`Rgb`].
#[derive(Debug, Clone)]
pub struct PixelReader {
    format: PixelFormat,
    layout: Layout,
    packed: Option<Packed>,
    bpp: usize,
    cpixel: usize,
    red: ChannelScale,
    green: ChannelScale,
    blue: ChannelScale,
    colour_map: Box<[Rgb; 256]>,
}

impl PixelReader {
    /// A reader for a format that passed [`PixelFormat::validate`].
    pub fn new(format: PixelFormat) -> Self {
        let layout = if !format.true_colour {
            Layout::Mapped
        } else if format.bits_per_pixel == 32
            && !format.big_endian
            && (format.red_max, format.green_max, format.blue_max) == (255, 255, 255)
            && (format.red_shift, format.green_shift, format.blue_shift) == (16, 8, 0)
        {
            Layout::Bgrx
        } else {
            Layout::General
        };
        PixelReader {
            format,
            layout,
            packed: format.packed_bytes(),
            bpp: format.bytes_per_pixel(),
            cpixel: format.cpixel_size(),
            red: ChannelScale::new(format.red_max, format.red_shift),
            green: ChannelScale::new(format.green_max, format.green_shift),
            blue: ChannelScale::new(format.blue_max, format.blue_shift),
            colour_map: Box::new([0; 256]),
        }
    }

    pub fn format(&self) -> &PixelFormat {
        &self.format
    }

    pub fn bytes_per_pixel(&self) -> usize {
        self.bpp
    }

    pub fn cpixel_size(&self) -> usize {
        self.cpixel
    }

    /// Applies a `SetColourMapEntries` entry (16-bit channel values).
    pub fn set_colour(&mut self, index: usize, r: u16, g: u16, b: u16) {
        if let Some(slot) = self.colour_map.get_mut(index) {
            *slot = (u32::from(r >> 8) << 16) | (u32::from(g >> 8) << 8) | u32::from(b >> 8);
        }
    }

    fn to_rgb(&self, v: u32) -> Rgb {
        match self.layout {
            Layout::Bgrx => v & 0x00ff_ffff,
            Layout::General => (self.red.apply(v) << 16) | (self.green.apply(v) << 8) | self.blue.apply(v),
            Layout::Mapped => self.colour_map[(v & 0xff) as usize],
        }
    }

    fn value(&self, src: &[u8]) -> u32 {
        match (self.bpp, self.format.big_endian) {
            (4, false) => u32::from_le_bytes([src[0], src[1], src[2], src[3]]),
            (4, true) => u32::from_be_bytes([src[0], src[1], src[2], src[3]]),
            (2, false) => u32::from(u16::from_le_bytes([src[0], src[1]])),
            (2, true) => u32::from(u16::from_be_bytes([src[0], src[1]])),
            _ => u32::from(src[0]),
        }
    }

    /// One `PIXEL`; `src` holds at least [`Self::bytes_per_pixel`] bytes.
    pub fn pixel(&self, src: &[u8]) -> Rgb {
        self.to_rgb(self.value(src))
    }

    /// Converts consecutive `PIXEL`s into 3-byte screen pixels (blue, green, red); `src` holds
    /// `dst.len() / 3` of them.
    pub fn pixels(&self, src: &[u8], dst: &mut [u8]) {
        debug_assert_eq!(src.len() / self.bpp, dst.len() / 3);
        match self.layout {
            // The wire bytes are blue, green, red and padding: drop the padding.
            Layout::Bgrx => drop_padding(src, dst),
            _ => {
                for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(self.bpp)) {
                    put_pixel(d, self.pixel(s));
                }
            }
        }
    }

    /// One compressed pixel (ZRLE/TRLE `CPIXEL`; Tight's `TPIXEL` is R,G,B and read by its decoder);
    /// `src` holds [`Self::cpixel_size`] bytes.
    pub fn cpixel(&self, src: &[u8]) -> Rgb {
        match (self.packed, self.format.big_endian) {
            (None, _) => self.pixel(src),
            (Some(Packed::Low), false) => self.to_rgb(u32::from_le_bytes([src[0], src[1], src[2], 0])),
            (Some(Packed::High), false) => self.to_rgb(u32::from_le_bytes([0, src[0], src[1], src[2]])),
            (Some(Packed::Low), true) => self.to_rgb(u32::from_be_bytes([0, src[0], src[1], src[2]])),
            (Some(Packed::High), true) => self.to_rgb(u32::from_be_bytes([src[0], src[1], src[2], 0])),
        }
    }

    /// Converts consecutive compressed pixels into 3-byte screen pixels; `src` holds `dst.len() / 3` of them.
    pub fn cpixels(&self, src: &[u8], dst: &mut [u8]) {
        debug_assert_eq!(src.len() / self.cpixel, dst.len() / 3);
        if self.layout == Layout::Bgrx && self.packed == Some(Packed::Low) {
            // Blue, green, red on the wire: the screen's own bytes.
            dst.copy_from_slice(src);
        } else {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(self.cpixel)) {
                put_pixel(d, self.cpixel(s));
            }
        }
    }
}

/// Extracts one channel and scales it to 0..=255 (rounding, so that a 5-bit 31 becomes 255).
#[derive(Debug, Clone, Copy)]
struct ChannelScale {
    max: u32,
    shift: u32,
}

impl ChannelScale {
    fn new(max: u16, shift: u8) -> Self {
        ChannelScale { max: u32::from(max), shift: u32::from(shift) }
    }

    fn apply(&self, v: u32) -> u32 {
        if self.max == 0 {
            return 0;
        }
        let c = (v >> self.shift) & self.max;
        if self.max == 255 {
            c
        } else {
            (c * 255 + self.max / 2) / self.max
        }
    }
}

/// Copies 4-byte pixels (blue, green, red, padding) to 3-byte ones; `dst` holds `3 * src.len() / 4` bytes.
/// With SSSE3 (nearly every x86-64 CPU), one byte shuffle per four pixels: three times the speed of the
/// portable version, which the compiler cannot vectorise for the x86-64 baseline.
fn drop_padding(src: &[u8], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3.
        return unsafe { drop_padding_ssse3(src, dst) };
    }
    drop_padding_portable(src, dst)
}

/// Four pixels at a time, through two integer stores.
fn drop_padding_portable(src: &[u8], dst: &mut [u8]) {
    let mut from = src.chunks_exact(16);
    let mut to = dst.chunks_exact_mut(12);
    for (s, d) in (&mut from).zip(&mut to) {
        let p = |i: usize| u64::from(u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], 0]));
        let low = p(0) | p(1) << 24 | p(2) << 48;
        let high = (p(2) >> 16 | p(3) << 8) as u32;
        d[..8].copy_from_slice(&low.to_le_bytes());
        d[8..].copy_from_slice(&high.to_le_bytes());
    }
    drop_padding_rest(from.remainder(), to.into_remainder());
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn drop_padding_ssse3(src: &[u8], dst: &mut [u8]) {
    use std::arch::x86_64::{
        __m128i, _mm_cvtsi128_si32, _mm_cvtsi128_si64, _mm_loadu_si128, _mm_setr_epi8, _mm_shuffle_epi8, _mm_srli_si128,
    };
    let keep = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    let mut from = src.chunks_exact(16);
    let mut to = dst.chunks_exact_mut(12);
    for (s, d) in (&mut from).zip(&mut to) {
        // SAFETY: `s` is 16 bytes long; the load needs no alignment.
        let packed = _mm_shuffle_epi8(unsafe { _mm_loadu_si128(s.as_ptr().cast::<__m128i>()) }, keep);
        d[..8].copy_from_slice(&_mm_cvtsi128_si64(packed).to_le_bytes());
        d[8..].copy_from_slice(&_mm_cvtsi128_si32(_mm_srli_si128::<8>(packed)).to_le_bytes());
    }
    drop_padding_rest(from.remainder(), to.into_remainder());
}

fn drop_padding_rest(src: &[u8], dst: &mut [u8]) {
    for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
        d.copy_from_slice(&s[..3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgr_cpixels_are_the_screen_bytes() {
        let bytes: Vec<u8> = (0..21u8).map(|i| i.wrapping_mul(37)).collect();
        let r = PixelReader::new(PixelFormat::BGRX);
        let mut fast = vec![0; 21];
        r.cpixels(&bytes, &mut fast);
        assert_eq!(fast, bytes);
        for c in bytes.chunks_exact(3) {
            assert_eq!(r.cpixel(c), u32::from_le_bytes([c[0], c[1], c[2], 0]));
        }
    }

    #[test]
    fn padding_is_dropped_in_blocks_and_the_rest() {
        type Way = fn(&[u8], &mut [u8]);
        let mut ways: Vec<(&str, Way)> = vec![("dispatched", drop_padding), ("portable", drop_padding_portable)];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("ssse3") {
            // SAFETY: the CPU has SSSE3.
            ways.push(("SSSE3", |s, d| unsafe { drop_padding_ssse3(s, d) }));
        }
        for (way, drop) in ways {
            for n in [0, 1, 3, 4, 5, 15, 16, 17, 40, 1027] {
                let src: Vec<u8> = (0..4 * n).map(|i| (i * 7 + i / 5 + 1) as u8).collect();
                let mut dst = vec![0; 3 * n];
                drop(&src, &mut dst);
                let expected: Vec<u8> = src.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
                assert_eq!(dst, expected, "{way}, {n} pixels");
            }
        }
    }

    #[test]
    fn wire_round_trip() {
        let mut v = Vec::new();
        PixelFormat::BGRX.encode(&mut v);
        assert_eq!(v, [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
        assert_eq!(PixelFormat::read(&mut Reader::new(&v)), Ok(PixelFormat::BGRX));
    }

    #[test]
    fn bgrx_pixels_are_copied() {
        let r = PixelReader::new(PixelFormat::BGRX);
        let mut dst = [0; 6];
        r.pixels(&[0x10, 0x20, 0x30, 0xff, 1, 2, 3, 4], &mut dst);
        assert_eq!(dst, [0x10, 0x20, 0x30, 1, 2, 3]);
        assert_eq!(r.cpixel_size(), 3);
        assert_eq!(r.cpixel(&[0x10, 0x20, 0x30]), 0x302010);
    }

    #[test]
    fn os_autoinst_vector_rgb_shifts() {
        // os-autoinst t/27-consoles-vnc.t: bpp 32, shifts r0/g8/b16, bytes 31,37,41,0 -> R=31 G=37 B=41.
        let pf = PixelFormat { red_shift: 0, blue_shift: 16, ..PixelFormat::BGRX };
        pf.validate().unwrap();
        let r = PixelReader::new(pf);
        assert_eq!(r.pixel(&[31, 37, 41, 0]), (31 << 16) | (37 << 8) | 41);
    }

    #[test]
    fn big_endian_and_high_packed_cpixels() {
        let pf = PixelFormat { big_endian: true, red_shift: 24, green_shift: 16, blue_shift: 8, ..PixelFormat::BGRX };
        pf.validate().unwrap();
        let r = PixelReader::new(pf);
        assert_eq!(r.pixel(&[0xaa, 0xbb, 0xcc, 0]), 0xaabbcc);
        assert_eq!(r.cpixel_size(), 3);
        assert_eq!(r.cpixel(&[0xaa, 0xbb, 0xcc]), 0xaabbcc);

        let le = PixelReader::new(PixelFormat { big_endian: false, ..pf });
        assert_eq!(le.cpixel(&[0xcc, 0xbb, 0xaa]), 0xaabbcc);
        let be_low = PixelReader::new(PixelFormat { big_endian: true, ..PixelFormat::BGRX });
        assert_eq!(be_low.pixel(&[0, 0xaa, 0xbb, 0xcc]), 0xaabbcc);
        assert_eq!(be_low.cpixel(&[0xaa, 0xbb, 0xcc]), 0xaabbcc);
    }

    #[test]
    fn rgb555_scales_to_full_range() {
        let pf = PixelFormat::for_depth(16).unwrap();
        pf.validate().unwrap();
        let r = PixelReader::new(pf);
        assert_eq!(r.cpixel_size(), 2);
        assert_eq!(r.pixel(&0x7fffu16.to_le_bytes()), 0xffffff);
        assert_eq!(r.pixel(&(0x1fu16 << 10).to_le_bytes()), 0xff0000);
        let be = PixelReader::new(PixelFormat { big_endian: true, ..pf });
        assert_eq!(be.pixel(&0x001fu16.to_be_bytes()), 0x0000ff);
    }

    #[test]
    fn colour_map() {
        let mut r = PixelReader::new(PixelFormat::for_depth(8).unwrap());
        r.set_colour(7, 0xffff, 0x8000, 0x0100);
        assert_eq!(r.pixel(&[7]), 0xff8001);
        assert_eq!(r.pixel(&[8]), 0);
    }

    #[test]
    fn rejects_undecodable_formats() {
        for pf in [
            PixelFormat { bits_per_pixel: 24, ..PixelFormat::BGRX },
            PixelFormat { red_shift: 30, ..PixelFormat::BGRX },
            PixelFormat { green_max: 0, ..PixelFormat::BGRX },
            PixelFormat { true_colour: false, ..PixelFormat::BGRX },
        ] {
            assert!(matches!(pf.validate(), Err(ProtocolError::UnsupportedPixelFormat(_))), "{pf:?}");
        }
    }
}
