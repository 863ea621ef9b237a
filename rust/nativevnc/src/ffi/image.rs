//! The ABI of images: screenshots and the images Perl builds.

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use super::{arg_str, guard, status, NvError};
use crate::error::{Error, Result};
use crate::framebuffer::Rect;
use crate::image::Image;

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_image_new(width: u32, height: u32, err: *mut *mut NvError) -> *mut Image {
    guard(err, || {
        let (w, h) = (u16::try_from(width), u16::try_from(height));
        let (Ok(w), Ok(h)) = (w, h) else {
            return Err(Error::usage(format!("an image of {width}x{height} pixels is too large")));
        };
        Image::new(w, h)
    })
    .map_or(std::ptr::null_mut(), |i| Box::into_raw(Box::new(i)))
}

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_image_free(img: *mut Image) {
    if !img.is_null() {
        // SAFETY: `img` came from this module and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(img) })));
    }
}

/// # Safety
/// `img` is a live image from this module.
pub(super) unsafe fn image<'a>(img: *mut Image) -> Result<&'a mut Image> {
    img.as_mut().ok_or_else(|| Error::usage("no image"))
}

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_image_size(img: *mut Image, w: *mut u32, h: *mut u32) {
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: live image, valid out pointers.
        let i = unsafe { image(img)? };
        unsafe {
            *w = i.width().into();
            *h = i.height().into();
        }
        Ok(())
    });
}

/// Copies `len` bytes of B,G,R,0 pixels into the rectangle.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_image_blit(
    img: *mut Image,
    x: u16,
    y: u16,
    w: u16,
    h: u16,
    data: *const u8,
    len: usize,
    err: *mut *mut NvError,
) -> i32 {
    status(guard(err, || {
        // SAFETY: live image; `data` points to `len` bytes.
        let i = unsafe { image(img)? };
        let data = if len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(data, len) } };
        i.blit(&Rect::new(x, y, w, h), data)
    }))
}

/// The pixel at (`x`, `y`) as `0x00RRGGBB`, or -1 outside the image.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_image_pixel(img: *mut Image, x: u32, y: u32) -> i64 {
    // SAFETY: live image.
    guard(std::ptr::null_mut(), || Ok(unsafe { image(img)? }.pixel(x, y).map_or(-1, i64::from))).unwrap_or(-1)
}

/// Writes the image as PNG (or PPM for a `.ppm` name).
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_image_write(img: *mut Image, path: *const c_char, err: *mut *mut NvError) -> i32 {
    status(guard(err, || {
        // SAFETY: live image; NUL-terminated path.
        let i = unsafe { image(img)? };
        let path = unsafe { arg_str(path, "file name")? }.ok_or_else(|| Error::usage("no file name"))?;
        i.write(Path::new(path))
    }))
}
