//! The ABI of vSphere questions asked without a console.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use super::{arg_str, guard, status, NvError};
use crate::runtime;
use crate::vsphere;

pub type NvPairFn =
    extern "C" fn(ctx: *mut c_void, key: *const c_char, key_len: usize, value: *const c_char, value_len: usize);

/// What the vSphere API at `authority` (`HOST` or `HOST:PORT`) is, asked without logging in (see
/// [`vsphere::about`]), within `timeout_ms`: calls `f` for each of `full_name`, `version`, `api_version`,
/// `api_type`, `product_line_id` and `vnc_server` (`1` when its hosts have ESXi's built-in VNC server, `0`
/// when not, empty when the version cannot be read).
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_vsphere_about(
    authority: *const c_char,
    timeout_ms: u32,
    f: NvPairFn,
    ctx: *mut c_void,
    err: *mut *mut NvError,
) -> i32 {
    status(guard(err, || {
        // SAFETY: `authority` is NULL or a NUL-terminated string, valid for the call.
        let authority = unsafe { arg_str(authority, "the vSphere host")? }.unwrap_or_default();
        let timeout = Duration::from_millis(timeout_ms.into());
        let about = runtime::handle().block_on(vsphere::about(authority, timeout))?;
        let vnc_server = match about.has_vnc_server() {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        };
        let pairs = [
            ("full_name", about.full_name.as_str()),
            ("version", &about.version),
            ("api_version", &about.api_version),
            ("api_type", &about.api_type),
            ("product_line_id", &about.product_line_id),
            ("vnc_server", vnc_server),
        ];
        for (key, value) in pairs {
            f(ctx, key.as_ptr().cast(), key.len(), value.as_ptr().cast(), value.len());
        }
        Ok(())
    }))
}
