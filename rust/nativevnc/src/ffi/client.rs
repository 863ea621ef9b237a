//! The ABI of the client: connecting, polling, input, the screen.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::{arg_str, guard, image::image, status, NvError};
use crate::client::{Client, ConnectOptions, PixelSink, Retry, Target};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::framebuffer::{Canvas, Rect};
use crate::handshake::{Credentials, Version};
use crate::image::Image;
use crate::pixel::PixelFormat;
use crate::webmks::{Webmks, WebmksSettings};

/// Options for [`nv_client_connect`].
#[repr(C)]
pub struct NvConnectOptions {
    pub host: *const c_char,
    pub port: u16,
    /// NULL or empty for none.
    pub password: *const c_char,
    pub connect_timeout_ms: u32,
    pub io_timeout_ms: u32,
    /// Encodings in order of preference; NULL for the default list.
    pub encodings: *const i32,
    pub n_encodings: usize,
    /// 0 asks for 32-bit pixels; 8, 15, 16, 24, 32 ask for os-autoinst's format of that depth.
    pub depth: u8,
    /// Non-zero: send no SetPixelFormat, decode the server's own format.
    pub keep_server_format: u8,
    pub shared: u8,
    /// Non-zero: type with scancodes (QEMU extended key events) where the server supports them.
    pub scancode_keys: u8,
    /// NULL for the VNC server at `host:port`; otherwise a vSphere VM's webmks console, os-autoinst's
    /// `https://user:password@host[:port]/vm` (then `host`, `port`, `password` and `depth` are unused).
    pub webmks_url: *const c_char,
    /// The VM when the URL names none (os-autoinst's `VIRSH_VM_ID`); NULL for none.
    pub vm: *const c_char,
    /// Replaces the URL's password; NULL to keep it.
    pub webmks_password: *const c_char,
    /// Failed ticket requests retried before giving up.
    pub ticket_attempts: u32,
    pub ticket_delay_ms: u32,
    /// Non-zero: do not verify TLS certificates.
    pub insecure: u8,
    /// NULL, or a PEM file of CA certificates trusted besides the system's.
    pub ca_file: *const c_char,
    /// NULL, or the vSphere API certificate's SHA-1 or SHA-256 thumbprints (comma-separated), pinned.
    pub thumbprint: *const c_char,
    /// NULL, or addresses to connect to instead of tickets' hosts: `NAME=ADDRESS,…`
    /// ([`crate::webmks::TicketHosts`]).
    pub hosts: *const c_char,
    /// NULL, or the vSphere API that gives tickets: `soap`, `rest` or `auto` ([`crate::vsphere::Api`]).
    pub api: *const c_char,
}

/// The server a connection goes to when the caller names none.
const DEFAULT_HOST: &CStr = c"localhost";
const DEFAULT_PORT: u16 = 5900;

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Fills `out` with every option's default, the one place callers take them from: `localhost:5900`, the
/// core's timeouts, a shared session typing with scancodes, os-autoinst's ticket attempts and delay; the
/// other pointers NULL and the other numbers 0.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_connect_defaults(out: *mut NvConnectOptions) {
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: `out` is NULL or valid for the call.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Error::usage("no options"))?;
        let tcp = ConnectOptions::new(DEFAULT_HOST.to_string_lossy(), DEFAULT_PORT);
        let webmks = WebmksSettings::new("");
        *out = NvConnectOptions {
            host: DEFAULT_HOST.as_ptr(),
            port: DEFAULT_PORT,
            password: std::ptr::null(),
            connect_timeout_ms: millis(tcp.connect_timeout),
            io_timeout_ms: millis(tcp.io_timeout),
            encodings: std::ptr::null(),
            n_encodings: 0,
            depth: 0,
            keep_server_format: 0,
            shared: tcp.config.shared.into(),
            scancode_keys: tcp.config.scancode_keys.into(),
            webmks_url: std::ptr::null(),
            vm: std::ptr::null(),
            webmks_password: std::ptr::null(),
            ticket_attempts: webmks.ticket_attempts,
            ticket_delay_ms: millis(webmks.ticket_delay),
            insecure: 0,
            ca_file: std::ptr::null(),
            thumbprint: std::ptr::null(),
            hosts: std::ptr::null(),
            api: std::ptr::null(),
        };
        Ok(())
    });
}

/// What [`nv_client_connect`] and [`nv_client_status`] report.
#[repr(C)]
#[derive(Default)]
pub struct NvStatus {
    pub connected: u8,
    /// The RFB minor version spoken (3, 7 or 8), 0 before the first connection.
    pub rfb_minor: u8,
    pub absolute: u8,
    pub scancodes: u8,
    pub width: u16,
    pub height: u16,
}

/// What [`nv_client_counters`] reports: what the current connection received so far.
#[repr(C)]
#[derive(Default)]
pub struct NvCounters {
    /// Server messages started.
    pub messages: u64,
    /// FramebufferUpdate messages completed.
    pub updates: u64,
    /// Completed updates that carried pixels.
    pub pixel_updates: u64,
    /// Pixels of the complete pixel rectangles.
    pub pixels: u64,
}

pub struct NvClient(Client);

#[no_mangle]
pub extern "C" fn nv_client_new() -> *mut NvClient {
    catch_unwind(|| Box::into_raw(Box::new(NvClient(Client::new())))).unwrap_or(std::ptr::null_mut())
}

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_free(c: *mut NvClient) {
    if c.is_null() {
        return;
    }
    // SAFETY: `c` came from `nv_client_new` and is freed once.
    let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(c) })));
}

/// # Safety
/// `c` is a live client from [`nv_client_new`].
unsafe fn client<'a>(c: *mut NvClient) -> Result<&'a mut Client> {
    c.as_mut().map(|c| &mut c.0).ok_or_else(|| Error::usage("no client"))
}

/// The webmks console the options name, if they name one.
fn webmks_from(o: &NvConnectOptions) -> Result<Option<Webmks>> {
    // SAFETY: the strings are NULL or valid for the call (the ABI contract).
    let Some(url) = (unsafe { arg_str(o.webmks_url, "webmks URL")? }) else {
        return Ok(None);
    };
    let settings = unsafe {
        WebmksSettings {
            url,
            vm: arg_str(o.vm, "VM id")?,
            password: arg_str(o.webmks_password, "password")?,
            insecure: o.insecure != 0,
            ca_file: arg_str(o.ca_file, "CA file")?,
            thumbprint: arg_str(o.thumbprint, "thumbprint")?,
            ticket_attempts: o.ticket_attempts,
            ticket_delay: Duration::from_millis(o.ticket_delay_ms.into()),
            hosts: arg_str(o.hosts, "ticket hosts")?,
            api: arg_str(o.api, "vSphere API")?,
        }
    };
    settings.build().map(Some)
}

fn options_from(o: &NvConnectOptions) -> Result<ConnectOptions> {
    let mut options = match webmks_from(o)? {
        Some(webmks) => ConnectOptions::webmks(webmks),
        None => {
            // SAFETY: the strings are NULL or valid for the call (the ABI contract).
            let host = unsafe { arg_str(o.host, "host")? }.ok_or_else(|| Error::usage("no host given"))?;
            let password = unsafe { arg_str(o.password, "password")? }.map(str::to_string);
            let mut options = ConnectOptions::new(host, o.port);
            options.credentials = Credentials::new(password);
            options
        }
    };
    let webmks = matches!(options.target, Target::Webmks(_));
    let mut config = options.config.clone();
    if !o.encodings.is_null() {
        // SAFETY: `encodings` points to `n_encodings` values.
        config.encodings = unsafe { std::slice::from_raw_parts(o.encodings, o.n_encodings) }.to_vec();
    }
    config.pixel_format = if o.keep_server_format != 0 || webmks {
        None
    } else if o.depth == 0 {
        Some(PixelFormat::BGRX)
    } else {
        Some(PixelFormat::for_depth(o.depth).ok_or_else(|| Error::usage(format!("unsupported depth {}", o.depth)))?)
    };
    config.shared = o.shared != 0;
    config.scancode_keys = o.scancode_keys != 0;
    options.config = config;
    options.connect_timeout = Duration::from_millis(o.connect_timeout_ms.max(1).into());
    options.io_timeout = Duration::from_millis(o.io_timeout_ms.max(1).into());
    Ok(options)
}

fn fill_status(c: &Client, out: &mut NvStatus) {
    let init = c.server_init();
    *out = NvStatus {
        connected: c.is_connected() as u8,
        rfb_minor: init.as_ref().map_or(0, |i| match i.version {
            Version::V3_3 => 3,
            Version::V3_7 => 7,
            Version::V3_8 => 8,
        }),
        absolute: c.absolute_pointer() as u8,
        scancodes: c.uses_scancodes() as u8,
        width: init.as_ref().map_or(0, |i| i.width),
        height: init.as_ref().map_or(0, |i| i.height),
    };
}

/// Connects and runs the handshake; blocks up to the connect timeout.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_connect(
    c: *mut NvClient,
    options: *const NvConnectOptions,
    out: *mut NvStatus,
    err: *mut *mut NvError,
) -> i32 {
    status(guard(err, || {
        // SAFETY: pointers from the caller, valid for the call.
        let client = unsafe { client(c)? };
        let options = unsafe { options.as_ref() }.ok_or_else(|| Error::usage("no options"))?;
        client.connect(options_from(options)?)?;
        if let Some(out) = unsafe { out.as_mut() } {
            fill_status(client, out);
        }
        Ok(())
    }))
}

/// Hears of a failed attempt of [`nv_client_connect_until`] that will be tried again: the failures so far
/// and the error (valid for the call). Returns 0 to go on, anything else to give up with that error.
pub type NvRetryFn = extern "C" fn(ctx: *mut c_void, failures: u32, e: *const NvError) -> i32;

/// Connects as [`nv_client_connect`] does, trying again every `pause_ms` while attempts are refused or time
/// out, until `window_ms` have passed ([`Client::connect_until`]; each attempt has the options' whole
/// connect timeout). Before every new attempt, `log_fn` receives what the failed attempt logged and then
/// `retry_fn` the failure; neither may use the client. What the last attempt logged stays in the client
/// ([`nv_client_take_log`]).
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says; `log_fn` and
/// `retry_fn` are functions, never NULL.
#[no_mangle]
pub unsafe extern "C" fn nv_client_connect_until(
    c: *mut NvClient,
    options: *const NvConnectOptions,
    window_ms: u32,
    pause_ms: u32,
    log_fn: NvLogFn,
    retry_fn: NvRetryFn,
    ctx: *mut c_void,
    out: *mut NvStatus,
    err: *mut *mut NvError,
) -> i32 {
    status(guard(err, || {
        // SAFETY: pointers from the caller, valid for the call.
        let client = unsafe { client(c)? };
        let options = options_from(unsafe { options.as_ref() }.ok_or_else(|| Error::usage("no options"))?)?;
        let window = Duration::from_millis(window_ms.into());
        let policy = Retry::within(window, Duration::from_millis(pause_ms.into()), false);
        client.connect_until(&options, policy, |failure| {
            for line in &failure.log {
                log_fn(ctx, line.warning as i32, line.message.as_ptr().cast(), line.message.len());
            }
            let message = CString::new(failure.error.message().replace('\0', " ")).unwrap_or_default();
            let e = NvError { kind: failure.error.kind() as i32, message: message.as_ptr().cast_mut() };
            match retry_fn(ctx, failure.failures, &e) {
                0 => ControlFlow::Continue(()),
                _ => ControlFlow::Break(()),
            }
        })?;
        if let Some(out) = unsafe { out.as_mut() } {
            fill_status(client, out);
        }
        Ok(())
    }))
}

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_disconnect(c: *mut NvClient) {
    // SAFETY: `c` is a live client.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { client(c) }.map(Client::disconnect)));
}

/// 1 if this process created the client; 0 for NULL or in a child forked after that, where the client
/// belongs to the parent: only [`nv_client_disconnect`] (which lets go of the parent's connection) and
/// [`nv_client_free`] may be used there.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_in_this_process(c: *mut NvClient) -> i32 {
    // SAFETY: `c` is NULL or a live client.
    catch_unwind(AssertUnwindSafe(|| unsafe { client(c) }.is_ok_and(|c| c.in_this_process()) as i32)).unwrap_or(0)
}

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_status(c: *mut NvClient, out: *mut NvStatus) -> i32 {
    status(guard(std::ptr::null_mut(), || {
        // SAFETY: pointers from the caller, valid for the call.
        let client = unsafe { client(c)? };
        let out = unsafe { out.as_mut() }.ok_or_else(|| Error::usage("no status"))?;
        fill_status(client, out);
        Ok(())
    }))
}

/// Updates and messages since the last poll, and whether the pixels of an update wait to be drawn; fails
/// with the connection's error if it broke.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_poll(
    c: *mut NvClient,
    updates: *mut u64,
    messages: *mut u64,
    pending: *mut i32,
    err: *mut *mut NvError,
) -> i32 {
    status(guard(err, || {
        // SAFETY: pointers from the caller, valid for the call.
        let client = unsafe { client(c)? };
        let p = client.poll()?;
        unsafe {
            if let Some(u) = updates.as_mut() {
                *u = p.updates;
            }
            if let Some(m) = messages.as_mut() {
                *m = p.messages;
            }
            if let Some(w) = pending.as_mut() {
                *w = i32::from(p.pending);
            }
        }
        Ok(())
    }))
}

/// Waits up to `timeout_ms` for an update; returns 1 if one arrived, 0 if not, -1 on error.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_wait_update(c: *mut NvClient, timeout_ms: u32, err: *mut *mut NvError) -> i32 {
    guard(err, || {
        // SAFETY: `c` is a live client.
        let client = unsafe { client(c)? };
        client.wait_update(Duration::from_millis(timeout_ms.into()))
    })
    .map_or(-1, i32::from)
}

/// Returns a buffer of exactly `len` bytes for the pixels of the rectangle, or NULL to give up.
pub type NvPixelSinkFn = extern "C" fn(ctx: *mut c_void, x: u16, y: u16, w: u16, h: u16, len: usize) -> *mut u8;

struct CSink {
    f: NvPixelSinkFn,
    ctx: *mut c_void,
    failed: bool,
    fallback: Vec<u8>,
}

impl PixelSink for CSink {
    fn buffer(&mut self, r: &Rect, len: usize) -> &mut [u8] {
        let p = (self.f)(self.ctx, r.x, r.y, r.w, r.h, len);
        if p.is_null() {
            self.failed = true;
            self.fallback.resize(len, 0);
            return &mut self.fallback;
        }
        // SAFETY: the callback returned a buffer of `len` bytes that stays valid until the next call.
        unsafe { std::slice::from_raw_parts_mut(p, len) }
    }
}

/// Hands the pixels of every rectangle damaged since the last call to `sink` (one call per rectangle,
/// bytes B,G,R,0 per pixel) and returns the number of rectangles, or -1 on error.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_take_damage(
    c: *mut NvClient,
    sink: NvPixelSinkFn,
    ctx: *mut c_void,
    err: *mut *mut NvError,
) -> i64 {
    guard(err, || {
        // SAFETY: `c` is a live client.
        let client = unsafe { client(c)? };
        let mut s = CSink { f: sink, ctx, failed: false, fallback: Vec::new() };
        let rects = client.take_damage(&mut s)?;
        if s.failed {
            return Err(Error::new(ErrorKind::Internal, "could not allocate a buffer for the screen update"));
        }
        Ok(rects.len() as i64)
    })
    .unwrap_or(-1)
}

/// Draws the updates whose pixels arrived into a B,G,R image of `width x height` pixels whose rows are
/// `stride` bytes apart and whose buffer `data` holds `len` bytes (straight into it, each update whole,
/// waiting up to `timeout_ms` for the rest of one); returns the number of updates completed, or -1. After
/// an error other than a wrong size the image may hold part of an update.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn nv_client_draw_bgr(
    c: *mut NvClient,
    data: *mut u8,
    len: usize,
    width: u16,
    height: u16,
    stride: usize,
    timeout_ms: u32,
    err: *mut *mut NvError,
) -> i64 {
    guard(err, || {
        // SAFETY: `c` is a live client; `data` points to `len` writable bytes.
        let client = unsafe { client(c)? };
        if data.is_null() {
            return Err(Error::usage("no image buffer"));
        }
        let dst = unsafe { std::slice::from_raw_parts_mut(data, len) };
        let mut canvas = Canvas::new(dst, width, height, stride).ok_or_else(|| {
            Error::usage(format!(
                "a buffer of {len} bytes with rows of {stride} bytes cannot hold {width}x{height} pixels"
            ))
        })?;
        Ok(client.draw(&mut canvas, Duration::from_millis(timeout_ms.into()))?.updates as i64)
    })
    .unwrap_or(-1)
}

/// Draws the updates whose pixels arrived into `img` as [`nv_client_draw_bgr`] does.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_draw_image(
    c: *mut NvClient,
    img: *mut Image,
    timeout_ms: u32,
    err: *mut *mut NvError,
) -> i64 {
    guard(err, || {
        // SAFETY: live client and image.
        let client = unsafe { client(c)? };
        let image = unsafe { image(img)? };
        Ok(client.draw(&mut image.canvas(), Duration::from_millis(timeout_ms.into()))?.updates as i64)
    })
    .unwrap_or(-1)
}

/// Draws the updates whose pixels arrived onto the client's own screen; returns the number of updates
/// completed, or -1.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_update(c: *mut NvClient, timeout_ms: u32, err: *mut *mut NvError) -> i64 {
    guard(err, || {
        // SAFETY: `c` is a live client.
        let client = unsafe { client(c)? };
        Ok(client.update(Duration::from_millis(timeout_ms.into()))? as i64)
    })
    .unwrap_or(-1)
}

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_key(c: *mut NvClient, keysym: u32, down: i32, err: *mut *mut NvError) -> i32 {
    // SAFETY: `c` is a live client.
    status(guard(err, || unsafe { client(c)? }.key(keysym, down != 0)))
}

/// A pointer event; coordinates are clamped to 0..=65535.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_pointer(
    c: *mut NvClient,
    buttons: u8,
    x: i64,
    y: i64,
    err: *mut *mut NvError,
) -> i32 {
    let clamp = |v: i64| v.clamp(0, i64::from(u16::MAX)) as u16;
    // SAFETY: `c` is a live client.
    status(guard(err, || unsafe { client(c)? }.pointer(buttons, clamp(x), clamp(y))))
}

/// Requests an update of the given rectangle, or of the whole screen when `w` or `h` is 0.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_request_update(
    c: *mut NvClient,
    incremental: i32,
    x: u16,
    y: u16,
    w: u16,
    h: u16,
    err: *mut *mut NvError,
) -> i32 {
    let rect = Rect::new(x, y, w, h);
    let rect = (!rect.is_empty()).then_some(rect);
    // SAFETY: `c` is a live client.
    status(guard(err, || unsafe { client(c)? }.request_update(incremental != 0, rect)))
}

pub type NvLogFn = extern "C" fn(ctx: *mut c_void, warning: i32, message: *const c_char, len: usize);

/// Calls `f` for every log line the connection produced since the last call.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_take_log(c: *mut NvClient, f: NvLogFn, ctx: *mut c_void) {
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: `c` is a live client.
        for line in unsafe { client(c)? }.take_log() {
            f(ctx, line.warning as i32, line.message.as_ptr().cast(), line.message.len());
        }
        Ok(())
    });
}

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_counters(c: *mut NvClient, out: *mut NvCounters) -> i32 {
    status(guard(std::ptr::null_mut(), || {
        // SAFETY: pointers from the caller, valid for the call.
        let counters = unsafe { client(c)? }.counters();
        let out = unsafe { out.as_mut() }.ok_or_else(|| Error::usage("no counters"))?;
        *out = NvCounters {
            messages: counters.messages,
            updates: counters.updates,
            pixel_updates: counters.pixel_updates,
            pixels: counters.pixels,
        };
        Ok(())
    }))
}

pub type NvCountFn = extern "C" fn(ctx: *mut c_void, encoding: i32, count: u64);

/// Calls `f` with the number of rectangles received per encoding on the current connection.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_encoding_counts(c: *mut NvClient, f: NvCountFn, ctx: *mut c_void) {
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: `c` is a live client.
        for (encoding, count) in unsafe { client(c)? }.rects_by_encoding() {
            f(ctx, encoding, count);
        }
        Ok(())
    });
}

/// A copy of the client's own screen, or NULL (with `*err`) when there is none.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_snapshot(c: *mut NvClient, err: *mut *mut NvError) -> *mut Image {
    guard(err, || {
        // SAFETY: `c` is a live client.
        let client = unsafe { client(c)? };
        client.snapshot()?.ok_or_else(|| Error::usage("there is no screen yet: wait for an update first"))
    })
    .map_or(std::ptr::null_mut(), |i| Box::into_raw(Box::new(i)))
}

/// Writes up to `cap` encodings of the default preference list to `out`; returns how many there are.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_default_encodings(out: *mut i32, cap: usize) -> usize {
    let list = Config::default_encodings();
    let n = list.len().min(cap);
    if !out.is_null() {
        // SAFETY: `out` has room for `cap` values.
        unsafe { std::ptr::copy_nonoverlapping(list.as_ptr(), out, n) };
    }
    list.len()
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};

    use super::*;
    use crate::ffi::nv_error_free;

    #[test]
    fn defaults_are_the_cores() {
        let mut o = std::mem::MaybeUninit::<NvConnectOptions>::uninit();
        // SAFETY: `nv_connect_defaults` fills every field.
        let o = unsafe {
            nv_connect_defaults(o.as_mut_ptr());
            o.assume_init()
        };
        // SAFETY: a static NUL-terminated string.
        assert_eq!(unsafe { CStr::from_ptr(o.host) }.to_str().unwrap(), "localhost");
        assert_eq!((o.port, o.connect_timeout_ms, o.io_timeout_ms), (5900, 20_000, 60_000));
        assert_eq!((o.ticket_attempts, o.ticket_delay_ms), (11, 5_000));
        assert_eq!((o.shared, o.scancode_keys, o.depth, o.insecure), (1, 1, 0, 0));
        assert!(o.password.is_null() && o.webmks_url.is_null() && o.encodings.is_null());
    }

    extern "C" fn no_log(_: *mut c_void, _: i32, _: *const c_char, _: usize) {}

    /// Counts the failures it hears of in `*ctx` (a `u32`); gives up at the second.
    extern "C" fn give_up_at_two(ctx: *mut c_void, failures: u32, e: *const NvError) -> i32 {
        // SAFETY: `ctx` is the test's counter, `e` valid for the call.
        unsafe {
            *ctx.cast::<u32>() += 1;
            assert_eq!(*ctx.cast::<u32>(), failures);
            assert_eq!((*e).kind, ErrorKind::Connect as i32);
            assert!(CStr::from_ptr((*e).message).to_str().unwrap().starts_with("connecting to 127.0.0.1:"));
        }
        i32::from(failures >= 2)
    }

    #[test]
    fn connect_until_retries_and_the_caller_can_give_up() {
        let c = nv_client_new();
        let host = CString::new("127.0.0.1").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut o = std::mem::MaybeUninit::<NvConnectOptions>::uninit();
        let mut heard = 0u32;
        let mut err: *mut NvError = std::ptr::null_mut();
        // SAFETY: the defaults fill every field; a live client, valid options and counter; freed once.
        unsafe {
            nv_connect_defaults(o.as_mut_ptr());
            let mut o = o.assume_init();
            (o.host, o.port) = (host.as_ptr(), port);
            let ctx = std::ptr::from_mut(&mut heard).cast();
            let rc =
                nv_client_connect_until(c, &o, 30_000, 10, no_log, give_up_at_two, ctx, std::ptr::null_mut(), &mut err);
            assert_eq!((rc, heard), (-1, 2));
            assert_eq!((*err).kind, ErrorKind::Connect as i32);
            nv_error_free(err);
            assert_eq!(nv_client_in_this_process(c), 1);
            assert_eq!(nv_client_in_this_process(std::ptr::null_mut()), 0);
            nv_client_free(c);
        }
    }

    #[test]
    fn connect_errors_name_the_target() {
        let c = nv_client_new();
        let host = CString::new("127.0.0.1").unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let options = NvConnectOptions {
            host: host.as_ptr(),
            port,
            password: std::ptr::null(),
            connect_timeout_ms: 2000,
            io_timeout_ms: 2000,
            encodings: std::ptr::null(),
            n_encodings: 0,
            depth: 0,
            keep_server_format: 0,
            shared: 1,
            scancode_keys: 1,
            webmks_url: std::ptr::null(),
            vm: std::ptr::null(),
            webmks_password: std::ptr::null(),
            ticket_attempts: 0,
            ticket_delay_ms: 0,
            insecure: 0,
            ca_file: std::ptr::null(),
            thumbprint: std::ptr::null(),
            hosts: std::ptr::null(),
            api: std::ptr::null(),
        };
        let mut err: *mut NvError = std::ptr::null_mut();
        // SAFETY: a live client, valid options; the error and the client are freed once.
        unsafe {
            assert_eq!(nv_client_connect(c, &options, std::ptr::null_mut(), &mut err), -1);
            let e = &*err;
            assert_eq!(e.kind, ErrorKind::Connect as i32);
            let msg = CStr::from_ptr(e.message).to_str().unwrap();
            assert!(msg.starts_with(&format!("connecting to 127.0.0.1:{port}: ")), "{msg}");
            nv_error_free(err);
            nv_client_free(c);
        }
    }
}
