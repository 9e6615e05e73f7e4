//! Bytes from an external runtime → a frame under the limit → an outcome. The first
//! byte picks the frame limit (in steps of 16 bytes); the rest is what the runtime
//! sent.
#![no_main]

#[path = "../../../tests/properties/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let Some((&selector, sent)) = data.split_first() else {
        return;
    };
    runtime.block_on(checks::socket_bytes(sent, usize::from(selector) << 4));
});
