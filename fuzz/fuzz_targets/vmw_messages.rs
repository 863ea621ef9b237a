//! Fuzz target: VMware type-127 server messages (see `nativevnc::fuzzing::vmw_messages`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::vmw_messages(data));
