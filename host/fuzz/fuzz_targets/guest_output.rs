//! What a guest returns → an outcome. The input is split into fields at NUL bytes:
//! payload, route metadata, then header names and values.
#![no_main]

#[path = "../../../tests/properties/checks.rs"]
mod checks;

use wasya::runtime::wasm::output::{GuestOutput, GuestRoute};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let outputs = text
        .split('\u{1}')
        .map(|part| {
            let mut fields = part.split('\0');
            let payload = fields.next().unwrap_or("").to_owned();
            let route = fields.next().map(|metadata| GuestRoute {
                actors: vec!["a".into(), "b".into()],
                current: u32::try_from(metadata.len() % 4).unwrap_or(0),
                metadata: (!metadata.is_empty()).then(|| metadata.to_owned()),
            });
            let rest: Vec<&str> = fields.collect();
            let headers = (!rest.is_empty()).then(|| {
                rest.chunks(2)
                    .map(|pair| (pair[0].to_owned(), pair.get(1).copied().unwrap_or("").to_owned()))
                    .collect()
            });
            GuestOutput {
                payload,
                route,
                headers,
            }
        })
        .collect();
    checks::guest_outputs(outputs);
});
