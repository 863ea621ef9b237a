//! Fuzz target: WebSocket frames from the server after the handshake, as the transport reassembles them for
//! the session (see `nativevnc::fuzzing::transport::websocket`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::transport::websocket(data));
