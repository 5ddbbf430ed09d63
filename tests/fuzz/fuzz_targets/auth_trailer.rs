#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| minivrrp_fuzz::auth_trailer(data));
