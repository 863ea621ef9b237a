//! Fuzz target: REST answers: values and errors of both generations (see `nativevnc::fuzzing::rest_response`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::rest_response(data));
