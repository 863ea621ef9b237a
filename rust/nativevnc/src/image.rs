//! A plain RGB image: the screen object the Perl layer uses when os-autoinst's tinycv is not available,
//! and what the command-line program writes as PNG.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::framebuffer::{Canvas, Framebuffer, Rect, BYTES_PER_PIXEL};
use crate::pixel::Rgb;

/// Largest image accepted, in pixels; the same bound as the default framebuffer limit.
const MAX_PIXELS: u64 = 8192 * 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    fb: Framebuffer,
}

impl Image {
    /// A black image.
    pub fn new(width: u16, height: u16) -> Result<Self> {
        if u64::from(width) * u64::from(height) > MAX_PIXELS {
            return Err(Error::usage(format!(
                "an image of {width}x{height} pixels is larger than {MAX_PIXELS} pixels"
            )));
        }
        Ok(Image { fb: Framebuffer::new(width, height) })
    }

    pub fn from_framebuffer(fb: &Framebuffer) -> Self {
        Image { fb: fb.clone() }
    }

    pub fn width(&self) -> u16 {
        self.fb.width()
    }

    pub fn height(&self) -> u16 {
        self.fb.height()
    }

    /// The image to draw on.
    pub fn canvas(&mut self) -> Canvas<'_> {
        self.fb.canvas()
    }

    /// The pixel at (`x`, `y`) as `0x00RRGGBB`, or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb> {
        let (x, y) = (u16::try_from(x).ok()?, u16::try_from(y).ok()?);
        (x < self.width() && y < self.height()).then(|| self.fb.get(x, y))
    }

    /// Copies `rect.w * rect.h` pixels given as little-endian `u32` `0x00RRGGBB` (what
    /// [`crate::client::Client::take_damage`] produces) into `rect`.
    pub fn blit(&mut self, rect: &Rect, data: &[u8]) -> Result<()> {
        if rect.right() > u32::from(self.width()) || rect.bottom() > u32::from(self.height()) {
            return Err(Error::usage(format!(
                "rectangle {}x{} at {},{} does not fit the {}x{} image",
                rect.w,
                rect.h,
                rect.x,
                rect.y,
                self.width(),
                self.height()
            )));
        }
        if data.len() as u64 != rect.area() * 4 {
            return Err(Error::usage(format!(
                "{} bytes of pixel data for a {}x{} rectangle, expected {}",
                data.len(),
                rect.w,
                rect.h,
                rect.area() * 4
            )));
        }
        if rect.w == 0 {
            return Ok(());
        }
        let w = usize::from(rect.w);
        let mut canvas = self.fb.canvas();
        for (y, src) in (rect.y..).zip(data.chunks_exact(w * 4)) {
            for (d, s) in canvas.row_mut(rect.x, y, rect.w).chunks_exact_mut(BYTES_PER_PIXEL).zip(src.chunks_exact(4)) {
                d.copy_from_slice(&s[..3]);
            }
        }
        Ok(())
    }

    /// R, G, B bytes, row after row.
    pub fn rgb_bytes(&self) -> Vec<u8> {
        self.fb.bytes().chunks_exact(BYTES_PER_PIXEL).flat_map(|p| [p[2], p[1], p[0]]).collect()
    }

    pub fn write_png(&self, out: impl Write) -> Result<()> {
        let mut encoder = png::Encoder::new(out, self.width().into(), self.height().into());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let err = |e: png::EncodingError| Error::usage(format!("writing PNG: {e}"));
        let mut writer = encoder.write_header().map_err(err)?;
        writer.write_image_data(&self.rgb_bytes()).map_err(err)?;
        writer.finish().map_err(err)
    }

    pub fn write_ppm(&self, mut out: impl Write) -> Result<()> {
        let err = |e: std::io::Error| Error::usage(format!("writing PPM: {e}"));
        write!(out, "P6\n{} {}\n255\n", self.width(), self.height()).map_err(err)?;
        out.write_all(&self.rgb_bytes()).map_err(err)
    }

    /// Writes the image to `path`, as PPM if the name ends in `.ppm`, otherwise as PNG.
    pub fn write(&self, path: &Path) -> Result<()> {
        let file =
            std::fs::File::create(path).map_err(|e| Error::usage(format!("cannot create {}: {e}", path.display())))?;
        let out = std::io::BufWriter::new(file);
        let is_ppm = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ppm"));
        if is_ppm {
            self.write_ppm(out)
        } else {
            self.write_png(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blit_and_read_back() {
        let mut img = Image::new(4, 3).unwrap();
        let data: Vec<u8> = [0x112233u32, 0x445566].iter().flat_map(|p| p.to_le_bytes()).collect();
        img.blit(&Rect::new(2, 1, 2, 1), &data).unwrap();
        assert_eq!(img.pixel(2, 1), Some(0x112233));
        assert_eq!(img.pixel(3, 1), Some(0x445566));
        assert_eq!(img.pixel(0, 0), Some(0));
        assert_eq!(img.pixel(4, 0), None);
        assert!(img.blit(&Rect::new(3, 1, 2, 1), &data).is_err());
        assert!(img.blit(&Rect::new(0, 0, 1, 1), &data).is_err());
    }

    #[test]
    fn png_round_trip() {
        let mut img = Image::new(3, 2).unwrap();
        let data: Vec<u8> = (0..6u32).flat_map(|i| (i * 0x2a1b0c).to_le_bytes()).collect();
        img.blit(&Rect::new(0, 0, 3, 2), &data).unwrap();
        let mut png_bytes = Vec::new();
        img.write_png(&mut png_bytes).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..info.buffer_size()], &img.rgb_bytes()[..]);
    }

    #[test]
    fn ppm_header() {
        let img = Image::new(2, 1).unwrap();
        let mut out = Vec::new();
        img.write_ppm(&mut out).unwrap();
        assert_eq!(out, b"P6\n2 1\n255\n\0\0\0\0\0\0");
    }

    #[test]
    fn refuses_absurd_sizes() {
        assert!(Image::new(65535, 65535).is_err());
    }
}
