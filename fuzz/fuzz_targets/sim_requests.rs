//! Fuzz target: HTTP requests to webmks-sim's SOAP and REST APIs (see `webmks_sim::fuzzing::sim_requests`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webmks_sim::fuzzing::sim_requests(data));
