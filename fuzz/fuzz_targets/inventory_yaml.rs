//! libFuzzer target: [`sshfleet_fuzz::inventory_yaml`] (see fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sshfleet_fuzz::inventory_yaml(data));
