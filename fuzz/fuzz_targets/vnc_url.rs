//! Fuzz target: `vnc://` URLs as the CLI's `--url` takes them (see `nativevnc::fuzzing::transport::vnc_url`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::transport::vnc_url(data));
