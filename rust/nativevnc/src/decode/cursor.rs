//! The Cursor pseudo-encoding (-239, RFC 6143 §7.8.1): the server's cursor shape, for a client that
//! draws the cursor itself.
//!
//! The pseudo-rectangle's position is the hotspot and its size the cursor's. The payload is `w * h`
//! `PIXEL`s, then a bitmask of `ceil(w / 8) * h` bytes, each row padded to whole bytes, the most
//! significant bit the leftmost pixel, 1 meaning the pixel is part of the cursor. The hotspot is not a
//! framebuffer position and may lie anywhere; a 0x0 cursor (no payload) hides the cursor.
//!
//! VMware's cursor pseudo-encoding (`VMWDefineCursor`, 0x574d5664) has the same rectangle meaning and a
//! payload of `u8 type, u8 padding`, then for type 0 (classic) an AND mask and an XOR image, each `w * h`
//! `PIXEL`s, and for type 1 (alpha) `w * h` 4-byte B,G,R,A pixels.

use crate::config::Limits;
use crate::error::ProtocolError;
use crate::framebuffer::Rect;
use crate::pixel::{PixelReader, Rgb};

/// A cursor shape the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorShape {
    /// Column of the pixel that points, from the cursor's left edge (it may lie outside the cursor).
    pub hotspot_x: u16,
    /// Row of the pixel that points, from the cursor's top edge (it may lie outside the cursor).
    pub hotspot_y: u16,
    /// Width in pixels; 0 (with a height of 0) when the server hides the cursor.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// `width * height` colours, row after row.
    pub pixels: Vec<Rgb>,
    /// Which pixels belong to the cursor: `ceil(width / 8)` bytes per row, the most significant bit of
    /// each byte the leftmost pixel, 1 meaning visible.
    pub mask: Vec<u8>,
}

/// Reads a cursor shape from `input`, which starts at the pseudo-rectangle's payload. Returns `None` when
/// the payload is not complete yet, otherwise the shape and the bytes it used.
pub(crate) fn read(
    rect: &Rect,
    input: &[u8],
    pixels: &PixelReader,
    limits: &Limits,
) -> Result<Option<(CursorShape, usize)>, ProtocolError> {
    let pixel_bytes = rect.area() * pixels.bytes_per_pixel() as u64;
    let mask_bytes = u64::from(rect.w).div_ceil(8) * u64::from(rect.h);
    limits.check_buffered("Cursor shape", pixel_bytes + mask_bytes)?;
    let (pixel_bytes, mask_bytes) = (pixel_bytes as usize, mask_bytes as usize);
    let Some(payload) = input.get(..pixel_bytes + mask_bytes) else {
        return Ok(None);
    };
    let (wire_pixels, mask) = payload.split_at(pixel_bytes);
    let colours = wire_pixels.chunks_exact(pixels.bytes_per_pixel()).map(|p| pixels.pixel(p)).collect();
    let shape = CursorShape {
        hotspot_x: rect.x,
        hotspot_y: rect.y,
        width: rect.w,
        height: rect.h,
        pixels: colours,
        mask: mask.to_vec(),
    };
    Ok(Some((shape, payload.len())))
}

/// Reads a VMware cursor (`VMWDefineCursor`) from `input`, which starts at the pseudo-rectangle's payload,
/// into the same shape as [`read`]: a classic cursor's pixel is visible unless its AND mask is all ones and
/// its XOR value zero (an inverting pixel, AND and XOR both set, is shown black, as other clients do); an
/// alpha cursor's pixel is visible from half opacity on.
pub(crate) fn read_vmware(
    rect: &Rect,
    input: &[u8],
    pixels: &PixelReader,
    limits: &Limits,
) -> Result<Option<(CursorShape, usize)>, ProtocolError> {
    let Some(&[kind, _]) = input.get(..2) else {
        return Ok(None);
    };
    let area = rect.area();
    let (image_bytes, mask_bytes) = match kind {
        0 => {
            let n = area * pixels.bytes_per_pixel() as u64;
            (n, n)
        }
        1 => (area * 4, 0),
        other => return Err(ProtocolError::malformed("VMware cursor", format!("unknown cursor type {other}"))),
    };
    limits.check_buffered("VMware cursor shape", image_bytes + mask_bytes)?;
    let used = 2 + (image_bytes + mask_bytes) as usize;
    let Some(payload) = input.get(2..used) else {
        return Ok(None);
    };
    let n = area as usize;
    let row_bytes = usize::from(rect.w).div_ceil(8);
    let mut mask = vec![0; row_bytes * usize::from(rect.h)];
    let mut colours = vec![0; n];
    let mut visible = vec![false; n];
    if kind == 0 {
        let (and, xor) = payload.split_at(mask_bytes as usize);
        for (colour, px) in colours.iter_mut().zip(xor.chunks_exact(pixels.bytes_per_pixel())) {
            *colour = pixels.pixel(px);
        }
        let bpp = pixels.bytes_per_pixel();
        for (i, (a, x)) in and.chunks_exact(bpp).zip(xor.chunks_exact(bpp)).enumerate() {
            let screen_kept = a.iter().all(|&b| b == 0xff);
            let inverting = screen_kept && x.iter().any(|&b| b != 0);
            if inverting {
                colours[i] = 0;
            }
            visible[i] = !screen_kept || inverting;
        }
    } else {
        for (i, px) in payload.chunks_exact(4).enumerate() {
            colours[i] = u32::from_be_bytes([0, px[2], px[1], px[0]]);
            visible[i] = px[3] >= 0x80;
        }
    }
    for (i, _) in visible.iter().enumerate().filter(|(_, v)| **v) {
        let (x, y) = (i % usize::from(rect.w), i / usize::from(rect.w));
        mask[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
    }
    let shape =
        CursorShape { hotspot_x: rect.x, hotspot_y: rect.y, width: rect.w, height: rect.h, pixels: colours, mask };
    Ok(Some((shape, used)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::testutil::bgrx;
    use crate::pixel::PixelFormat;

    fn reader() -> PixelReader {
        PixelReader::new(PixelFormat::BGRX)
    }

    /// A 3x2 arrow-ish cursor with its hotspot at (1, 0): BGRX pixels, then one mask byte per row.
    fn three_by_two() -> (Rect, Vec<u8>, Vec<Rgb>) {
        let colours = vec![0xffffff, 0x000000, 0xff0000, 0x00ff00, 0x0000ff, 0x123456];
        let mut wire = bgrx(&colours);
        wire.extend_from_slice(&[0b1010_0000, 0b0110_0000]);
        (Rect::new(1, 0, 3, 2), wire, colours)
    }

    #[test]
    fn reads_pixels_and_mask() {
        let (rect, wire, colours) = three_by_two();
        assert_eq!(wire.len(), 26);
        let mut input = wire.clone();
        input.extend_from_slice(b"next message");
        let (shape, used) = read(&rect, &input, &reader(), &Limits::default()).unwrap().unwrap();
        assert_eq!(used, 26);
        assert_eq!(
            shape,
            CursorShape {
                hotspot_x: 1,
                hotspot_y: 0,
                width: 3,
                height: 2,
                pixels: colours,
                mask: vec![0b1010_0000, 0b0110_0000],
            }
        );
    }

    #[test]
    fn sixteen_bit_pixels() {
        let r = PixelReader::new(PixelFormat::for_depth(16).unwrap());
        let input = [0x00, 0x7c, 0x1f, 0x00, 0b1000_0000];
        let (shape, used) = read(&Rect::new(0, 0, 2, 1), &input, &r, &Limits::default()).unwrap().unwrap();
        assert_eq!(used, 5);
        assert_eq!(shape.pixels, [0xff0000, 0x0000ff]);
        assert_eq!(shape.mask, [0b1000_0000]);
    }

    #[test]
    fn empty_cursor_has_no_payload() {
        let (shape, used) = read(&Rect::new(500, 9000, 0, 0), &[], &reader(), &Limits::default()).unwrap().unwrap();
        assert_eq!(used, 0);
        assert_eq!((shape.hotspot_x, shape.hotspot_y, shape.width, shape.height), (500, 9000, 0, 0));
        assert!(shape.pixels.is_empty() && shape.mask.is_empty());
    }

    #[test]
    fn truncated_payload_waits() {
        let (rect, wire, _) = three_by_two();
        for cut in 0..wire.len() {
            assert_eq!(read(&rect, &wire[..cut], &reader(), &Limits::default()), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn vmware_classic_cursor() {
        // 4x1: opaque red, transparent, inverting, opaque black. AND mask then XOR image, BGRX.
        let mut wire = vec![0, 0];
        wire.extend_from_slice(&bgrx(&[0, 0xffffffff, 0xffffffff, 0]));
        wire.extend_from_slice(&bgrx(&[0xff0000, 0, 0x00ff00, 0]));
        wire.extend_from_slice(b"next");
        let rect = Rect::new(2, 3, 4, 1);
        let (shape, used) = read_vmware(&rect, &wire, &reader(), &Limits::default()).unwrap().unwrap();
        assert_eq!(used, 2 + 32);
        assert_eq!((shape.hotspot_x, shape.hotspot_y, shape.width, shape.height), (2, 3, 4, 1));
        assert_eq!(shape.pixels, [0xff0000, 0, 0, 0]);
        assert_eq!(shape.mask, [0b1011_0000]);
        for cut in 0..used {
            assert_eq!(read_vmware(&rect, &wire[..cut], &reader(), &Limits::default()), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn vmware_alpha_cursor() {
        // 2x2 B,G,R,A: blue opaque, green transparent, red half, white faint.
        let wire = [1, 0, 0xff, 0, 0, 0xff, 0, 0xff, 0, 0, 0, 0, 0xff, 0x80, 0xff, 0xff, 0xff, 0x7f];
        let (shape, used) = read_vmware(&Rect::new(0, 0, 2, 2), &wire, &reader(), &Limits::default()).unwrap().unwrap();
        assert_eq!(used, 18);
        assert_eq!(shape.pixels, [0x0000ff, 0x00ff00, 0xff0000, 0xffffff]);
        assert_eq!(shape.mask, [0b1000_0000, 0b1000_0000]);
    }

    #[test]
    fn vmware_cursor_rejects_unknown_type_and_oversize() {
        let e = read_vmware(&Rect::new(0, 0, 1, 1), &[7, 0], &reader(), &Limits::default()).unwrap_err();
        assert_eq!(e.to_string(), "VMware cursor: unknown cursor type 7");
        let e = read_vmware(&Rect::new(0, 0, 0xffff, 0xffff), &[1, 0], &reader(), &Limits::default()).unwrap_err();
        assert!(matches!(e, ProtocolError::TooLarge { what: "VMware cursor shape", .. }), "{e}");
    }

    #[test]
    fn oversized_cursor_is_refused_before_buffering() {
        let e = read(&Rect::new(0, 0, 0xffff, 0xffff), &[], &reader(), &Limits::default()).unwrap_err();
        let size = 0xffff_u64 * 0xffff * 4 + 0x2000 * 0xffff;
        assert_eq!(e, ProtocolError::TooLarge { what: "Cursor shape", size, limit: 256 << 20 });
        let small = Limits { max_buffered_bytes: 25, ..Limits::default() };
        let (rect, wire, _) = three_by_two();
        assert!(matches!(read(&rect, &wire, &reader(), &small), Err(ProtocolError::TooLarge { size: 26, .. })));
    }
}
