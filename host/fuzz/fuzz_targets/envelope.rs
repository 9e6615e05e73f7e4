//! Bytes on a queue → an envelope or its rejection → what goes to error-end, which
//! must read again.
#![no_main]

#[path = "../../../tests/properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::envelope_bytes(data);
});
