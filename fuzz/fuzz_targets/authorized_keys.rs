//! libFuzzer target: [`sshfleet_fuzz::authorized_keys`] (see fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sshfleet_fuzz::authorized_keys(data));
