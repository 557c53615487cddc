//! libFuzzer target: [`sshfleet_fuzz::module_args`] (see fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sshfleet_fuzz::module_args(data));
