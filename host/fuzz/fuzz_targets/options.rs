//! Option texts (sizes, durations, Go durations) and `PUT /v1/actors` JSON bodies.
#![no_main]

#[path = "../../../tests/properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::unit_texts(&String::from_utf8_lossy(data));
});
