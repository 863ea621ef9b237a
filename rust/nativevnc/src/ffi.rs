//! The C ABI used by the XS glue (`xs/*.xs`, declared in `xs/nativevnc.h`).
//!
//! Conventions: functions that can fail return 0 on success and -1 on failure, with `*err` set to an
//! [`NvError`] the caller frees with [`nv_error_free`]. Every function catches panics; a panic becomes an
//! error of kind "internal", never an unwind into C. Pointers handed in are only borrowed for the call.
//!
//! The functions are `unsafe` because they trust their caller with pointers: every pointer is NULL (where
//! the function allows it) or valid for the call; objects (`NvClient`, `Image`) come from this module and
//! are not used after they are freed; a buffer comes with its true length.

use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use crate::client::{Client, ConnectOptions, PixelSink, Target};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::framebuffer::Rect;
use crate::handshake::{Credentials, Version};
use crate::image::Image;
use crate::keys;
use crate::pixel::PixelFormat;
use crate::runtime;
use crate::vsphere;
use crate::webmks::{self, Webmks};

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
    pub webmks_vm: *const c_char,
    /// Replaces the URL's password; NULL to keep it.
    pub webmks_password: *const c_char,
    /// Failed ticket requests retried before giving up.
    pub ticket_retries: u32,
    pub ticket_delay_ms: u32,
    /// Non-zero: do not verify TLS certificates.
    pub insecure: u8,
    /// NULL, or a PEM file of CA certificates trusted besides the system's.
    pub ca_file: *const c_char,
    /// NULL, or the vSphere API certificate's SHA-1 or SHA-256 thumbprints (comma-separated), pinned.
    pub thumbprint: *const c_char,
    /// NULL, or addresses to connect to instead of tickets' hosts: `NAME=ADDRESS,…`
    /// ([`webmks::TicketHosts`]).
    pub ticket_hosts: *const c_char,
    /// NULL, or the vSphere API that gives tickets: `soap`, `rest` or `auto` ([`vsphere::Api`]).
    pub api: *const c_char,
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
    let (vm, password) = unsafe { (arg_str(o.webmks_vm, "VM id")?, arg_str(o.webmks_password, "password")?) };
    let (ca_file, thumbprint) = unsafe { (arg_str(o.ca_file, "CA file")?, arg_str(o.thumbprint, "thumbprint")?) };
    let tls = webmks::api_verification(o.insecure != 0, ca_file, thumbprint)?;
    let mut webmks = Webmks::from_url(url, vm, password, tls)?;
    webmks.retries = o.ticket_retries;
    webmks.retry_delay = Duration::from_millis(o.ticket_delay_ms.into());
    if let Some(hosts) = unsafe { arg_str(o.ticket_hosts, "ticket hosts")? } {
        webmks.hosts = webmks::TicketHosts::parse(hosts)?;
    }
    if let Some(api) = unsafe { arg_str(o.api, "vSphere API")? } {
        webmks.endpoint.api = api.parse()?;
    }
    Ok(Some(webmks))
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

/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_disconnect(c: *mut NvClient) {
    // SAFETY: `c` is a live client.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { client(c) }.map(Client::disconnect)));
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

/// Updates and messages since the last poll; fails with the connection's error if it broke.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_poll(
    c: *mut NvClient,
    updates: *mut u64,
    messages: *mut u64,
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

/// Copies the damage since the last call into a B,G,R image of `width x height` pixels whose rows are
/// `stride` bytes apart and whose buffer `data` holds `len` bytes; returns the number of rectangles or -1.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_take_damage_bgr(
    c: *mut NvClient,
    data: *mut u8,
    len: usize,
    width: u16,
    height: u16,
    stride: usize,
    err: *mut *mut NvError,
) -> i64 {
    guard(err, || {
        // SAFETY: `c` is a live client; `data` points to `len` writable bytes.
        let client = unsafe { client(c)? };
        if data.is_null() {
            return Err(Error::usage("no image buffer"));
        }
        let dst = unsafe { std::slice::from_raw_parts_mut(data, len) };
        Ok(client.take_damage_bgr(dst, width, height, stride)?.len() as i64)
    })
    .unwrap_or(-1)
}

/// Copies the damage since the last call into `img`; returns the number of rectangles or -1.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_take_damage_image(c: *mut NvClient, img: *mut Image, err: *mut *mut NvError) -> i64 {
    guard(err, || {
        // SAFETY: live client and image.
        let client = unsafe { client(c)? };
        let image = unsafe { image(img)? };
        Ok(client.take_damage_into_image(image)?.len() as i64)
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

/// A copy of the current screen, or NULL (with `*err`) when there is none.
/// # Safety
///
/// Pointer arguments are NULL or valid for the call, as the module documentation says.
#[no_mangle]
pub unsafe extern "C" fn nv_client_snapshot(c: *mut NvClient, err: *mut *mut NvError) -> *mut Image {
    guard(err, || {
        // SAFETY: `c` is a live client.
        let client = unsafe { client(c)? };
        let image = client.with_framebuffer(Image::from_framebuffer)?;
        image.ok_or_else(|| Error::usage("not connected: there is no screen yet"))
    })
    .map_or(std::ptr::null_mut(), |i| Box::into_raw(Box::new(i)))
}

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
unsafe fn image<'a>(img: *mut Image) -> Result<&'a mut Image> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            webmks_vm: std::ptr::null(),
            webmks_password: std::ptr::null(),
            ticket_retries: 0,
            ticket_delay_ms: 0,
            insecure: 0,
            ca_file: std::ptr::null(),
            thumbprint: std::ptr::null(),
            ticket_hosts: std::ptr::null(),
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
