//! Fuzz target: SOAP responses and the AcquireTicket ticket (see `nativevnc::fuzzing::soap_response`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nativevnc::fuzzing::soap_response(data));
