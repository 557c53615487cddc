//! libFuzzer target: [`sshfleet_fuzz::host_patterns`] (see fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sshfleet_fuzz::host_patterns(data));
