//! The TightPNG (-260) rectangle encoder, lossless: a single-colour area is a fill (control 0x80 and the
//! colour as R, G, B), anything else a PNG of its RGB pixels (control 0xA0, a Tight compact length, the
//! PNG). Rectangles are at most 2048 pixels wide, as Tight requires, and are cut into bands small enough
//! that a PNG always fits the compact length's 22 bits.

use nativevnc::codec::Put;
use nativevnc::encoding::TIGHT_PNG;
use nativevnc::framebuffer::{Framebuffer, Rect};
use nativevnc::pixel::Rgb;

/// The widest rectangle Tight allows.
pub const MAX_WIDTH: u16 = 2048;
/// The most RGB bytes one PNG carries (incompressible data grows a little in PNG; the limit is 4 MiB - 1).
const MAX_BAND_BYTES: usize = 1 << 20;
const FILL: u8 = 0x80;
const PNG: u8 = 0xa0;

/// Splits `r` into rectangles at most [`MAX_WIDTH`] wide with at most [`MAX_BAND_BYTES`] of RGB each.
pub fn tiles(r: Rect) -> Vec<Rect> {
    let mut out = Vec::new();
    let mut x = r.x;
    while x < r.x + r.w {
        let w = MAX_WIDTH.min(r.x + r.w - x);
        let band = (MAX_BAND_BYTES / (usize::from(w) * 3)).clamp(1, usize::from(u16::MAX)) as u16;
        let mut y = r.y;
        while y < r.y + r.h {
            let h = band.min(r.y + r.h - y);
            out.push(Rect::new(x, y, w, h));
            y += h;
        }
        x += w;
    }
    out
}

/// Appends one TightPNG rectangle (header and data) for `r`, which must be a [`tiles`] piece.
pub fn encode_tile(fb: &Framebuffer, r: Rect, out: &mut Vec<u8>) {
    for v in [r.x, r.y, r.w, r.h] {
        out.put_u16(v);
    }
    out.put_i32(TIGHT_PNG);
    let mut pixels = Vec::with_capacity(r.area() as usize);
    fb.read(&r, &mut pixels);
    let first = pixels.first().copied().unwrap_or(0);
    if pixels.iter().all(|&p| p == first) {
        out.push(FILL);
        out.extend_from_slice(&rgb(first));
        return;
    }
    let png = png_of(&pixels, r.w, r.h);
    out.push(PNG);
    compact_len(png.len(), out);
    out.extend_from_slice(&png);
}

fn rgb(p: Rgb) -> [u8; 3] {
    [(p >> 16) as u8, (p >> 8) as u8, p as u8]
}

/// Tight's compact length: 7 bits per byte with a continuation bit, a third byte of 8 bits.
pub fn compact_len(n: usize, out: &mut Vec<u8>) {
    debug_assert!(n < 1 << 22, "compact lengths have 22 bits");
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x4000 {
        out.extend_from_slice(&[(n as u8 & 0x7f) | 0x80, (n >> 7) as u8]);
    } else {
        out.extend_from_slice(&[(n as u8 & 0x7f) | 0x80, ((n >> 7) as u8 & 0x7f) | 0x80, (n >> 14) as u8]);
    }
}

fn png_of(pixels: &[Rgb], w: u16, h: u16) -> Vec<u8> {
    let data: Vec<u8> = pixels.iter().flat_map(|&p| rgb(p)).collect();
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, u32::from(w), u32::from(h));
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().expect("a PNG header goes into a Vec");
    writer.write_image_data(&data).expect("RGB data of the declared size encodes");
    writer.finish().expect("a PNG goes into a Vec");
    png
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_lengths() {
        let enc = |n| {
            let mut v = Vec::new();
            compact_len(n, &mut v);
            v
        };
        assert_eq!(enc(5), [5]);
        assert_eq!(enc(0x80), [0x80, 1]);
        assert_eq!(enc(0x3fff), [0xff, 0x7f]);
        assert_eq!(enc(0x4000), [0x80, 0x80, 1]);
        assert_eq!(enc((1 << 22) - 1), [0xff, 0xff, 0xff]);
    }

    #[test]
    fn tiles_cover_the_rectangle_within_limits() {
        let r = Rect::new(3, 5, 5000, 700);
        let t = tiles(r);
        assert!(t.iter().all(|p| p.w <= MAX_WIDTH && usize::from(p.w) * usize::from(p.h) * 3 <= MAX_BAND_BYTES));
        assert_eq!(t.iter().map(Rect::area).sum::<u64>(), r.area());
        assert_eq!(t.iter().fold(Rect::default(), |a, p| a.union(p)), r);
        assert_eq!(tiles(Rect::new(0, 0, 0, 10)), []);
    }
}
