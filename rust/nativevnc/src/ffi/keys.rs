//! The ABI of key names and chords: os-autoinst's chords, keymap and chord timing.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use super::{guard, status, NvError};
use crate::error::Error;
use crate::keys;

/// The keysyms of an os-autoinst key chord such as `ctrl-alt-f2`, in press order. Writes at most `cap`
/// keysyms to `out` and their number to `*n`.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_key_chord(
    keys: *const c_char,
    len: usize,
    out: *mut u32,
    cap: usize,
    n: *mut usize,
    err: *mut *mut NvError,
) -> i32 {
    status(guard(err, || {
        // SAFETY: `keys` points to `len` bytes; `out` to `cap` values; `n` is valid.
        let bytes = unsafe { std::slice::from_raw_parts(keys.cast::<u8>(), len) };
        let keys = std::str::from_utf8(bytes).map_err(|_| Error::usage("the key name is not valid UTF-8"))?;
        let chord = keys::chord(keys)?;
        if chord.len() > cap {
            return Err(Error::usage(format!("the chord '{keys}' has more than {cap} keys")));
        }
        unsafe {
            std::ptr::copy_nonoverlapping(chord.as_ptr(), out, chord.len());
            *n = chord.len();
        }
        Ok(())
    }))
}

pub type NvKeyMapFn = extern "C" fn(ctx: *mut c_void, name: *const c_char, len: usize, keysyms: *const u32, n: usize);

/// Calls `f` for every entry of os-autoinst's X11 keymap (see [`keys::keymap`]).
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_key_map(f: NvKeyMapFn, ctx: *mut c_void) {
    let _ = guard(std::ptr::null_mut(), || {
        for (name, keysyms) in keys::keymap() {
            f(ctx, name.as_ptr().cast(), name.len(), keysyms.as_ptr(), keysyms.len());
        }
        Ok(())
    });
}

/// How long each key of a chord is held, and the pause after each release, for a key that takes
/// `key_time_us` microseconds ([`keys::ChordTiming`]); NULL outputs are skipped.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_chord_timing(key_time_us: u64, hold_us: *mut u64, after_release_us: *mut u64) {
    let timing = keys::ChordTiming::for_key_time(Duration::from_micros(key_time_us));
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    // SAFETY: the outputs are NULL or valid for the call.
    unsafe {
        if let Some(hold) = hold_us.as_mut() {
            *hold = micros(timing.hold);
        }
        if let Some(after) = after_release_us.as_mut() {
            *after = micros(timing.after_release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::ffi::nv_error_free;

    #[test]
    fn chord_through_the_abi() {
        let mut out = [0u32; 8];
        let mut n = 0;
        let mut err: *mut NvError = std::ptr::null_mut();
        let keys = "ctrl-alt-f2";
        let bad = "nosuchkey";
        // SAFETY: valid buffers of the stated lengths; the error is freed once.
        unsafe {
            assert_eq!(nv_key_chord(keys.as_ptr().cast(), keys.len(), out.as_mut_ptr(), 8, &mut n, &mut err), 0);
            assert_eq!(&out[..n], [0xffe3, 0xffe9, 0xffbf]);
            assert_eq!(nv_key_chord(bad.as_ptr().cast(), bad.len(), out.as_mut_ptr(), 8, &mut n, &mut err), -1);
            assert_eq!((*err).kind, ErrorKind::Usage as i32);
            nv_error_free(err);
        }
    }

    #[test]
    fn chord_timing_through_the_abi() {
        let (mut hold, mut after) = (0, 0);
        // SAFETY: valid outputs, then NULL ones.
        unsafe {
            nv_chord_timing(50_000, &mut hold, &mut after);
            nv_chord_timing(1, std::ptr::null_mut(), std::ptr::null_mut());
        }
        assert_eq!((hold, after), (8_000, 42_000));
    }
}
