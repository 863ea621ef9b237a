//! The framebuffer: `width x height` [`Rgb`] pixels, and a list of damaged rectangles.
//!
//! Decoders write through the methods here, which take rectangles already checked against the
//! framebuffer's bounds ([`Framebuffer::check`]), so no decoder can write outside it.

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

    pub fn contains(&self, o: &Rect) -> bool {
        o.x >= self.x && o.y >= self.y && o.right() <= self.right() && o.bottom() <= self.bottom()
    }
}

#[derive(Debug, Clone)]
pub struct Framebuffer {
    width: u16,
    height: u16,
    pixels: Vec<Rgb>,
}

impl Framebuffer {
    /// A black framebuffer. Callers check the size against their limit first
    /// ([`crate::config::Limits::check_framebuffer`]).
    pub fn new(width: u16, height: u16) -> Self {
        Framebuffer { width, height, pixels: vec![0; usize::from(width) * usize::from(height)] }
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

    /// All pixels, row after row.
    pub fn pixels(&self) -> &[Rgb] {
        &self.pixels
    }

    /// Checks that `r` lies inside the framebuffer.
    pub fn check(&self, r: &Rect, encoding: &'static str) -> Result<(), ProtocolError> {
        if r.right() > u32::from(self.width) || r.bottom() > u32::from(self.height) {
            return Err(ProtocolError::RectOutOfBounds {
                encoding,
                x: r.x.into(),
                y: r.y.into(),
                w: r.w.into(),
                h: r.h.into(),
                fb_w: self.width.into(),
                fb_h: self.height.into(),
            });
        }
        Ok(())
    }

    fn offset(&self, x: u16, y: u16) -> usize {
        usize::from(y) * usize::from(self.width) + usize::from(x)
    }

    pub fn get(&self, x: u16, y: u16) -> Rgb {
        self.pixels[self.offset(x, y)]
    }

    /// `w` pixels of row `y` from column `x`.
    pub fn row(&self, x: u16, y: u16, w: u16) -> &[Rgb] {
        let o = self.offset(x, y);
        &self.pixels[o..o + usize::from(w)]
    }

    /// `w` pixels of row `y` from column `x`, for writing.
    pub fn row_mut(&mut self, x: u16, y: u16, w: u16) -> &mut [Rgb] {
        let o = self.offset(x, y);
        &mut self.pixels[o..o + usize::from(w)]
    }

    pub fn fill(&mut self, r: &Rect, px: Rgb) {
        for y in r.y..r.y + r.h {
            self.row_mut(r.x, y, r.w).fill(px);
        }
    }

    /// Writes `src`, `r.w * r.h` pixels row after row, into `r`.
    pub fn put(&mut self, r: &Rect, src: &[Rgb]) {
        debug_assert_eq!(src.len() as u64, r.area());
        if r.w == 0 {
            return;
        }
        for (dy, line) in src.chunks_exact(usize::from(r.w)).enumerate() {
            self.row_mut(r.x, r.y + dy as u16, r.w).copy_from_slice(line);
        }
    }

    /// Copies the `dst.w x dst.h` pixels at (`src_x`, `src_y`) to `dst`; the two areas may overlap.
    pub fn copy_rect(&mut self, src_x: u16, src_y: u16, dst: &Rect) {
        let w = usize::from(dst.w);
        let rows: Box<dyn Iterator<Item = u16>> =
            if src_y < dst.y { Box::new((0..dst.h).rev()) } else { Box::new(0..dst.h) };
        for dy in rows {
            let from = self.offset(src_x, src_y + dy);
            let to = self.offset(dst.x, dst.y + dy);
            self.pixels.copy_within(from..from + w, to);
        }
    }

    /// Copies rectangle `r` out, row after row.
    pub fn read(&self, r: &Rect, out: &mut Vec<Rgb>) {
        for y in r.y..r.y + r.h {
            out.extend_from_slice(self.row(r.x, y, r.w));
        }
    }
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
        let fb = Framebuffer::new(100, 50);
        assert!(fb.check(&Rect::new(0, 0, 100, 50), "Raw").is_ok());
        assert!(fb.check(&Rect::new(90, 0, 11, 1), "Raw").is_err());
        let e = fb.check(&Rect::new(0, 0xffff, 1, 0xffff), "Raw").unwrap_err();
        assert_eq!(e.to_string(), "Raw rectangle at 0,65535 size 1x65535 lies outside the 100x50 framebuffer");
    }

    #[test]
    fn copy_rect_handles_overlap_both_ways() {
        let mut fb = Framebuffer::new(4, 4);
        for y in 0..4 {
            for x in 0..4 {
                fb.row_mut(x, y, 1)[0] = u32::from(y * 4 + x);
            }
        }
        let before = fb.clone();
        fb.copy_rect(0, 0, &Rect::new(1, 1, 3, 3));
        for y in 0..3 {
            for x in 0..3 {
                assert_eq!(fb.get(x + 1, y + 1), before.get(x, y));
            }
        }
        let mut fb = before.clone();
        fb.copy_rect(1, 1, &Rect::new(0, 0, 3, 3));
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
