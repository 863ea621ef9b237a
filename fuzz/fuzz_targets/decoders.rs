//! Fuzz target: one rectangle straight into one decoder, whole and in pieces (see `nativevnc::fuzzing::decoders`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::decoders(data));
