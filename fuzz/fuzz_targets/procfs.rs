#![no_main]
//! See `logoff_users::fuzzing::linux::procfs`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logoff_users::fuzzing::linux::procfs(data));
