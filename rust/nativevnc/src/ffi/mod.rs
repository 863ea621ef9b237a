//! The C ABI used by the XS glue (`xs/*.xs`, declared in `xs/nativevnc.h`), one concern per file: the
//! client (`client.rs`), key names (`keys.rs`), images (`image.rs`), vSphere questions (`vsphere.rs`); the
//! error plumbing every function shares lives here.
//!
//! Conventions: functions that can fail return 0 on success and -1 on failure, with `*err` set to an
//! [`NvError`] the caller frees with [`nv_error_free`]. Every function catches panics; a panic becomes an
//! error of kind "internal", never an unwind into C. Pointers handed in are only borrowed for the call.
//!
//! The functions are `unsafe` because they trust their caller with pointers: every pointer is NULL (where
//! the function allows it) or valid for the call; objects (`NvClient`, `Image`) come from this module and
//! are not used after they are freed; a buffer comes with its true length.

mod client;
mod image;
mod keys;
mod vsphere;

pub use client::*;
pub use image::*;
pub use keys::*;
pub use vsphere::*;

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::error::{Error, ErrorKind, Result};

/// An error for C: a kind (see [`ErrorKind`]) and a NUL-terminated message.
#[repr(C)]
pub struct NvError {
    pub kind: i32,
    pub message: *mut c_char,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn set_error(err: *mut *mut NvError, e: Error) {
    if err.is_null() {
        return;
    }
    let message = CString::new(e.message().replace('\0', " ")).unwrap_or_default();
    let boxed = Box::new(NvError { kind: e.kind() as i32, message: message.into_raw() });
    // SAFETY: the caller passes a valid pointer to an `NvError *` slot (or NULL, handled above).
    unsafe { *err = Box::into_raw(boxed) };
}

/// Runs `f`, turning an error or a panic into `*err` and `None`.
fn guard<T>(err: *mut *mut NvError, f: impl FnOnce() -> Result<T>) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            set_error(err, e);
            None
        }
        Err(payload) => {
            set_error(err, Error::new(ErrorKind::Internal, format!("internal error: {}", panic_message(&*payload))));
            None
        }
    }
}

fn status(r: Option<()>) -> i32 {
    if r.is_some() {
        0
    } else {
        -1
    }
}

/// A borrowed C string as `&str`, or an error naming the argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn arg_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(p).to_str().map(Some).map_err(|_| Error::usage(format!("{what} is not valid UTF-8")))
}

/// Every error kind, the numbers `nv_error.kind` carries.
const KINDS: [ErrorKind; 7] = [
    ErrorKind::Connect,
    ErrorKind::Auth,
    ErrorKind::Protocol,
    ErrorKind::Timeout,
    ErrorKind::Usage,
    ErrorKind::Internal,
    ErrorKind::Setup,
];

/// The name of the error kind numbered `kind` (`connect`, `auth`, …, see [`ErrorKind::name`]) as a static
/// NUL-terminated string; `internal` for a number that names no kind.
#[no_mangle]
pub extern "C" fn nv_error_kind_name(kind: i32) -> *const c_char {
    static NAMES: OnceLock<Vec<(i32, CString)>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        KINDS.iter().map(|&k| (k as i32, CString::new(k.name()).expect("a kind name without NUL"))).collect()
    });
    let internal = ErrorKind::Internal as i32;
    let name = names.iter().find(|(k, _)| *k == kind).or_else(|| names.iter().find(|(k, _)| *k == internal));
    name.map_or(std::ptr::null(), |(_, name)| name.as_ptr())
}

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_error_free(e: *mut NvError) {
    if e.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: `e` came from `set_error` and is freed once.
        let e = unsafe { Box::from_raw(e) };
        if !e.message.is_null() {
            // SAFETY: the message came from `CString::into_raw`.
            drop(unsafe { CString::from_raw(e.message) });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_and_named() {
        for kind in KINDS {
            // Exhaustive: a new kind fails to compile here until it is added to `KINDS`.
            let listed = match kind {
                ErrorKind::Connect
                | ErrorKind::Auth
                | ErrorKind::Protocol
                | ErrorKind::Timeout
                | ErrorKind::Usage
                | ErrorKind::Internal
                | ErrorKind::Setup => true,
            };
            assert!(listed);
            // SAFETY: the ABI returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(nv_error_kind_name(kind as i32)) };
            assert_eq!(name.to_str().unwrap(), kind.name());
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(nv_error_kind_name(99)) };
        assert_eq!(unknown.to_str().unwrap(), "internal");
    }

    #[test]
    fn panics_become_internal_errors() {
        let mut err: *mut NvError = std::ptr::null_mut();
        let r: Option<()> = guard(&mut err, || panic!("boom"));
        assert!(r.is_none());
        // SAFETY: set by guard.
        // SAFETY: set by guard, freed once.
        unsafe {
            let e = &*err;
            assert_eq!(e.kind, ErrorKind::Internal as i32);
            assert_eq!(CStr::from_ptr(e.message).to_str().unwrap(), "internal error: boom");
            nv_error_free(err);
        }
    }
}
