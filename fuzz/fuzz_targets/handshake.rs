//! Fuzz target: the server's side of the handshake, with or without a password (see `nativevnc::fuzzing::handshake`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::handshake(data));
