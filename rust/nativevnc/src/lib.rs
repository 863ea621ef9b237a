//! The core of NativeVNC: an RFB (VNC) client for os-autoinst.
//!
//! Data flows one way through the layers:
//!
//! * [`codec`], [`messages`], [`pixel`]: wire formats.
//! * `decode`: one module per encoding, pure functions over bytes and a [`framebuffer::Framebuffer`].
//! * [`session`]: the sans-I/O protocol state machine (handshake, server messages), fed with bytes,
//!   drained of bytes and events; it never touches a socket or a clock.
//! * [`transport`]: the bytes under the session, TCP or a WebSocket over TLS ([`tls`]: certificate
//!   verification, CA files, pinned thumbprints).
//! * [`vsphere`] and [`webmks`]: a one-shot webmks ticket from the vSphere SOAP API for a VMware console.
//! * [`client`] and [`runtime`]: the I/O edge. A per-process tokio runtime runs one task per connection
//!   that reads, decodes and publishes complete framebuffer updates; the blocking [`client::Client`]
//!   facade is what the C ABI and the command-line program use.
//! * [`ffi`]: the C ABI behind the Perl XS module.

pub mod client;
pub mod codec;
pub mod config;
pub(crate) mod decode;
pub mod encoding;
pub mod error;
pub mod ffi;
pub mod framebuffer;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod handshake;
pub mod image;
pub mod keys;
pub mod messages;
pub mod pixel;
pub mod runtime;
pub mod server_messages;
pub mod session;
pub mod tls;
pub mod transport;
pub mod vsphere;
pub mod webmks;

pub use decode::cursor::CursorShape;
