//! Fuzz target: os-autoinst key chords and type_string characters (see `nativevnc::fuzzing::key_chord`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::key_chord(data));
