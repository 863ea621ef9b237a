//! Screens: the [`Canvas`] decoders draw on (3-byte B,G,R pixels, the layout of os-autoinst's tinycv
//! images, so that a client can draw straight into its caller's image), the [`Framebuffer`] that owns one,
//! and the list of damaged rectangles.
//!
//! Decoders write through the methods here, which take rectangles already checked against the screen's
//! bounds ([`Rect::check_inside`]), so no decoder can write outside it.

use crate::error::ProtocolError;
use crate::pixel::Rgb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

impl Rect {
    pub const fn new(x: u16, y: u16, w: u16, h: u16) -> Self {
        Rect { x, y, w, h }
    }

    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }

    pub fn area(&self) -> u64 {
        u64::from(self.w) * u64::from(self.h)
    }

    pub fn right(&self) -> u32 {
        u32::from(self.x) + u32::from(self.w)
    }

    pub fn bottom(&self) -> u32 {
        u32::from(self.y) + u32::from(self.h)
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, o: &Rect) -> Rect {
        if self.is_empty() {
            return *o;
        }
        if o.is_empty() {
            return *self;
        }
        let x = self.x.min(o.x);
        let y = self.y.min(o.y);
        let r = self.right().max(o.right());
        let b = self.bottom().max(o.bottom());
        Rect::new(x, y, (r - u32::from(x)) as u16, (b - u32::from(y)) as u16)
    }

    /// Checks that the rectangle lies inside a `width x height` screen.
    pub fn check_inside(&self, width: u16, height: u16, encoding: &'static str) -> Result<(), ProtocolError> {
        if self.right() > u32::from(width) || self.bottom() > u32::from(height) {
            return Err(ProtocolError::RectOutOfBounds {
                encoding,
                x: self.x.into(),
                y: self.y.into(),
                w: self.w.into(),
                h: self.h.into(),
                fb_w: width.into(),
                fb_h: height.into(),
            });
        }
        Ok(())
    }

    pub fn contains(&self, o: &Rect) -> bool {
        o.x >= self.x && o.y >= self.y && o.right() <= self.right() && o.bottom() <= self.bottom()
    }
}

/// Bytes per pixel of a screen: blue, green, red.
pub const BYTES_PER_PIXEL: usize = 3;

/// The pixel `px` as the 3 bytes of a screen.
fn bgr(px: Rgb) -> [u8; 3] {
    let [b, g, r, _] = px.to_le_bytes();
    [b, g, r]
}

/// A screen the decoders draw on: `width x height` pixels of 3 bytes (blue, green, red: tinycv's layout),
/// rows `stride` bytes apart, in memory somebody else owns: a [`Framebuffer`], or the caller's image for
/// the time of one call.
#[derive(Debug)]
pub struct Canvas<'a> {
    px: &'a mut [u8],
    width: u16,
    height: u16,
    stride: usize,
}

impl<'a> Canvas<'a> {
    /// A canvas over `px`, or `None` if `px` cannot hold `height` rows of `stride` bytes, or a row of
    /// `width` pixels does not fit in `stride`.
    pub fn new(px: &'a mut [u8], width: u16, height: u16, stride: usize) -> Option<Self> {
        let fits = stride >= usize::from(width) * BYTES_PER_PIXEL
            && stride.checked_mul(usize::from(height)).is_some_and(|n| n <= px.len());
        fits.then_some(Canvas { px, width, height, stride })
    }

    /// The canvas's memory and shape, for lending it to another thread ([`Self::from_raw_parts`]).
    pub(crate) fn as_raw_parts(&mut self) -> (*mut u8, usize, u16, u16, usize) {
        (self.px.as_mut_ptr(), self.px.len(), self.width, self.height, self.stride)
    }

    /// A canvas over memory lent by [`Self::as_raw_parts`].
    ///
    /// # Safety
    ///
    /// The parts come from [`Self::as_raw_parts`] of a canvas that is not used, and whose memory stays
    /// valid, for as long as the canvas made here lives.
    pub(crate) unsafe fn from_raw_parts(px: *mut u8, len: usize, width: u16, height: u16, stride: usize) -> Self {
        // SAFETY: the caller promises exclusive use of valid memory for the canvas's lifetime.
        Canvas { px: unsafe { std::slice::from_raw_parts_mut(px, len) }, width, height, stride }
    }

    /// The same canvas, borrowed for a shorter time.
    pub fn reborrow(&mut self) -> Canvas<'_> {
        Canvas { px: &mut *self.px, width: self.width, height: self.height, stride: self.stride }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// Checks that `r` lies inside the canvas.
    pub fn check(&self, r: &Rect, encoding: &'static str) -> Result<(), ProtocolError> {
        r.check_inside(self.width, self.height, encoding)
    }

    fn offset(&self, x: u16, y: u16) -> usize {
        usize::from(y) * self.stride + usize::from(x) * BYTES_PER_PIXEL
    }

    /// The bytes of `w` pixels of row `y` from column `x`, for writing.
    pub fn row_mut(&mut self, x: u16, y: u16, w: u16) -> &mut [u8] {
        let o = self.offset(x, y);
        &mut self.px[o..o + usize::from(w) * BYTES_PER_PIXEL]
    }

    pub fn fill(&mut self, r: &Rect, px: Rgb) {
        let px = bgr(px);
        for y in r.y..r.y + r.h {
            for d in self.row_mut(r.x, y, r.w).chunks_exact_mut(BYTES_PER_PIXEL) {
                d.copy_from_slice(&px);
            }
        }
    }

    /// Copies the `dst.w x dst.h` pixels at (`src_x`, `src_y`) to `dst`; the two areas may overlap.
    pub fn copy_rect(&mut self, src_x: u16, src_y: u16, dst: &Rect) {
        let len = usize::from(dst.w) * BYTES_PER_PIXEL;
        let mut copy_row = |dy: u16| {
            let from = self.offset(src_x, src_y + dy);
            let to = self.offset(dst.x, dst.y + dy);
            self.px.copy_within(from..from + len, to);
        };
        if src_y < dst.y {
            (0..dst.h).rev().for_each(&mut copy_row);
        } else {
            (0..dst.h).for_each(&mut copy_row);
        }
    }
}

/// A screen that owns its pixels (the layout of [`Canvas`], rows without padding): what a client keeps
/// when it has no image of its caller to draw on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framebuffer {
    width: u16,
    height: u16,
    px: Vec<u8>,
}

impl Framebuffer {
    /// A black framebuffer. Callers check the size against their limit first
    /// ([`crate::config::Limits::check_framebuffer`]).
    pub fn new(width: u16, height: u16) -> Self {
        Framebuffer { width, height, px: vec![0; usize::from(width) * usize::from(height) * BYTES_PER_PIXEL] }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// The framebuffer to draw on.
    pub fn canvas(&mut self) -> Canvas<'_> {
        let stride = usize::from(self.width) * BYTES_PER_PIXEL;
        Canvas { px: &mut self.px, width: self.width, height: self.height, stride }
    }

    /// All pixels' bytes (blue, green, red), row after row.
    pub fn bytes(&self) -> &[u8] {
        &self.px
    }

    /// The bytes of `w` pixels of row `y` from column `x`.
    pub fn row(&self, x: u16, y: u16, w: u16) -> &[u8] {
        let o = (usize::from(y) * usize::from(self.width) + usize::from(x)) * BYTES_PER_PIXEL;
        &self.px[o..o + usize::from(w) * BYTES_PER_PIXEL]
    }

    pub fn get(&self, x: u16, y: u16) -> Rgb {
        let [b, g, r] = self.row(x, y, 1) else { unreachable!("a row of one pixel has three bytes") };
        u32::from_le_bytes([*b, *g, *r, 0])
    }

    /// All pixels as `0x00RRGGBB`, row after row.
    pub fn pixels(&self) -> Vec<Rgb> {
        self.px.chunks_exact(BYTES_PER_PIXEL).map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0])).collect()
    }

    /// Appends rectangle `r`'s pixels as `0x00RRGGBB` to `out`, row after row.
    pub fn read(&self, r: &Rect, out: &mut Vec<Rgb>) {
        for y in r.y..r.y + r.h {
            out.extend(
                self.row(r.x, y, r.w).chunks_exact(BYTES_PER_PIXEL).map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0])),
            );
        }
    }
}

/// Writes `px` as the 3 bytes of a screen pixel into `dst`.
pub fn put_pixel(dst: &mut [u8], px: Rgb) {
    dst.copy_from_slice(&bgr(px));
}

/// Damaged areas since the last time they were taken. Kept short: past [`Damage::MAX_RECTS`] rectangles,
/// or when a rectangle covers most of the others, they merge into their bounding box.
#[derive(Debug, Clone, Default)]
pub struct Damage {
    rects: Vec<Rect>,
}

impl Damage {
    pub const MAX_RECTS: usize = 64;

    pub fn add(&mut self, r: Rect) {
        if r.is_empty() || self.rects.iter().any(|d| d.contains(&r)) {
            return;
        }
        self.rects.retain(|d| !r.contains(d));
        self.rects.push(r);
        if self.rects.len() > Self::MAX_RECTS {
            let all = self.rects.iter().fold(Rect::default(), |a, r| a.union(r));
            self.rects.clear();
            self.rects.push(all);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    pub fn rects(&self) -> &[Rect] {
        &self.rects
    }

    pub fn take(&mut self) -> Vec<Rect> {
        std::mem::take(&mut self.rects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_rejects_rects_outside() {
        assert!(Rect::new(0, 0, 100, 50).check_inside(100, 50, "Raw").is_ok());
        assert!(Rect::new(90, 0, 11, 1).check_inside(100, 50, "Raw").is_err());
        let e = Rect::new(0, 0xffff, 1, 0xffff).check_inside(100, 50, "Raw").unwrap_err();
        assert_eq!(e.to_string(), "Raw rectangle at 0,65535 size 1x65535 lies outside the 100x50 framebuffer");
    }

    #[test]
    fn canvas_over_foreign_memory_with_padded_rows() {
        let mut memory = vec![0xee; 4 * 7 * 2 + 5];
        assert!(Canvas::new(&mut memory, 3, 2, 8).is_none(), "a row of 3 pixels needs 9 bytes");
        assert!(Canvas::new(&mut memory, 2, 7, 9).is_none(), "7 rows of 9 bytes need 63");
        let mut c = Canvas::new(&mut memory, 2, 2, 7).unwrap();
        c.fill(&Rect::new(0, 0, 2, 2), 0x112233);
        c.fill(&Rect::new(1, 1, 1, 1), 0x445566);
        assert_eq!(&memory[..7], [0x33, 0x22, 0x11, 0x33, 0x22, 0x11, 0xee], "the padding byte stays");
        assert_eq!(&memory[7..14], [0x33, 0x22, 0x11, 0x66, 0x55, 0x44, 0xee]);
    }

    #[test]
    fn copy_rect_handles_overlap_both_ways() {
        let mut fb = Framebuffer::new(4, 4);
        for y in 0..4 {
            for x in 0..4 {
                fb.canvas().fill(&Rect::new(x, y, 1, 1), u32::from(y * 4 + x) * 0x010203);
            }
        }
        let before = fb.clone();
        fb.canvas().copy_rect(0, 0, &Rect::new(1, 1, 3, 3));
        for y in 0..3 {
            for x in 0..3 {
                assert_eq!(fb.get(x + 1, y + 1), before.get(x, y));
            }
        }
        let mut fb = before.clone();
        fb.canvas().copy_rect(1, 1, &Rect::new(0, 0, 3, 3));
        for y in 0..3 {
            for x in 0..3 {
                assert_eq!(fb.get(x, y), before.get(x + 1, y + 1));
            }
        }
    }

    #[test]
    fn damage_merges() {
        let mut d = Damage::default();
        d.add(Rect::new(0, 0, 10, 10));
        d.add(Rect::new(2, 2, 3, 3));
        assert_eq!(d.rects(), [Rect::new(0, 0, 10, 10)]);
        d.add(Rect::new(0, 0, 20, 20));
        assert_eq!(d.rects(), [Rect::new(0, 0, 20, 20)]);
        for i in 0..100 {
            d.add(Rect::new(30 + i, 30, 1, 1));
        }
        assert!(d.rects().len() <= Damage::MAX_RECTS);
        assert!(d.rects().iter().any(|r| r.contains(&Rect::new(129, 30, 1, 1))));
        assert!(!d.take().is_empty());
        assert!(d.is_empty());
    }
}
