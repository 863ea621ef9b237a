//! Fuzz target: vSphere/webmks URLs, wss:// ticket URLs and ticket-hosts lists (see `nativevnc::fuzzing::url`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::url(data));
