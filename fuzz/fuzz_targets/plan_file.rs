//! Fuzzes the saved plan reader (`wi::plan::file::decode`): never a panic,
//! and a decoded plan renders and survives an encode/decode round trip. The
//! checks live in `fuzz/checks.rs`.
#![no_main]

#[allow(dead_code)] // each target uses only its own checks
#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_plan_file(data);
});
