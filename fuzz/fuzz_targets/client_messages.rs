//! Fuzz target: client messages as the webmks simulator reads them, read back after encoding (see `nativevnc::fuzzing::client_messages`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::client_messages(data));
