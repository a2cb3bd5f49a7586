//! Fuzzes the YAML spec loader (`wi::spec::load_str` with `Format::Yaml`):
//! never a panic, and a successful load is deterministic. The checks live
//! in `fuzz/checks.rs`.
#![no_main]

#[allow(dead_code)] // each target uses only its own checks
#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_spec(data, wi::spec::Format::Yaml);
});
