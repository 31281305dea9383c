#![no_main]
//! See `logoff_users::testing::fuzz::text`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logoff_users::testing::fuzz::text(data));
