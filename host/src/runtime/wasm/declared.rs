//! What a component says of itself: the handler mode `wasya build` built it in.
//!
//! A Python or JavaScript handler is built for one of Asya's handler modes, and the
//! glue around it decides what its results carry; the node could not tell from the
//! outside. `wasya build` writes the mode into a custom section of the component
//! (`wasya:handler-mode`, appended at the end), and the node reads it back when it
//! loads the component, so a listing shows the mode the handler runs in. Only the
//! component's own top-level sections are read: nested modules are skipped whole.

use crate::records::HandlerMode;
use wasmparser::{Chunk, Parser, Payload};

/// The custom section naming the handler mode.
pub const HANDLER_MODE_SECTION: &str = "wasya:handler-mode";

/// Appends the custom section that declares `mode` to a component's bytes.
pub fn declare_mode(component: &mut Vec<u8>, mode: HandlerMode) {
    let name = HANDLER_MODE_SECTION.as_bytes();
    let data = mode.as_str().as_bytes();
    let mut content = Vec::with_capacity(1 + name.len() + data.len());
    leb128(&mut content, name.len());
    content.extend_from_slice(name);
    content.extend_from_slice(data);
    component.push(0);
    leb128(component, content.len());
    component.extend_from_slice(&content);
}

/// The handler mode the component declares, if it declares one.
pub fn declared_mode(bytes: &[u8]) -> Option<HandlerMode> {
    let mut parser = Parser::new(0);
    let mut offset = 0;
    let mut found = None;
    loop {
        let (consumed, payload) = match parser.parse(bytes.get(offset..)?, true).ok()? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => return found,
        };
        offset += consumed;
        match payload {
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => offset = unchecked_range.end,
            Payload::CustomSection(section) if section.name() == HANDLER_MODE_SECTION => {
                found = match section.data() {
                    b"payload" => Some(HandlerMode::Payload),
                    b"envelope" => Some(HandlerMode::Envelope),
                    _ => None,
                };
            }
            Payload::End(_) => return found,
            _ => {}
        }
    }
}

/// Appends `value` as an unsigned LEB128, as section sizes are written.
fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_mode_is_read_back_and_nested_sections_are_not_the_components() {
        let mut component = wat::parse_str(
            r#"(component
                (core module (@custom "wasya:handler-mode" "envelope") (func (export "g")))
            )"#,
        )
        .unwrap();
        let nested = HANDLER_MODE_SECTION.as_bytes();
        assert!(
            component.windows(nested.len()).any(|w| w == nested),
            "the nested module carries the section"
        );
        assert_eq!(
            declared_mode(&component),
            None,
            "a nested module's says nothing"
        );
        declare_mode(&mut component, HandlerMode::Payload);
        assert_eq!(declared_mode(&component), Some(HandlerMode::Payload));
        wasmparser::Validator::new()
            .validate_all(&component)
            .expect("still a valid component");
        assert_eq!(declared_mode(b"not wasm"), None);
    }
}
