#![no_main]
//! See `logoff_users::fuzzing::linux::btf`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logoff_users::fuzzing::linux::btf(data));
