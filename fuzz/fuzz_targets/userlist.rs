#![no_main]
//! The user-list parser and matcher (see `logoff_users::testing::fuzz::userlist`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| logoff_users::testing::fuzz::userlist(data));
