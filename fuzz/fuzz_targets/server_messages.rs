//! Fuzz target: server messages and pseudo-rectangles through their typed parsers, whole and in pieces (see `nativevnc::fuzzing::server_messages`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::server_messages(data));
