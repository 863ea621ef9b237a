//! Fuzz target: arbitrary server messages after a valid ServerInit, in several pixel formats and dialects (see `nativevnc::fuzzing::session_stream`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::session_stream(data));
