//! Checking what a component imports before compiling it.
//!
//! Compiling a large component takes seconds (a Python one, about six), and an
//! upload whose imports the node cannot satisfy would be refused only after that.
//! Toolchains put a component's imports first: its type, alias and import sections
//! come before any module or instance. Those sections alone form a component with no
//! code, which compiles in microseconds and links against the node's linker exactly
//! as the whole would; its imports are checked that way.
//!
//! The check covers the imports found before the first other section. A component
//! laid out differently is not refused here; linking the full component still checks
//! every import after compiling.

use wasmparser::{Chunk, Parser, Payload};

/// The component's leading type, alias and import sections, as a component of its
/// own; `None` when it has no such imports, or cannot be read (the compile then
/// reports what is wrong with it).
pub fn imports_only(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut parser = Parser::new(0);
    let mut offset = 0;
    let mut stub = Vec::new();
    let mut imports = false;
    loop {
        let (consumed, payload) = match parser.parse(&bytes[offset..], true).ok()? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => return None,
        };
        offset += consumed;
        match payload {
            Payload::Version { .. } => stub.extend_from_slice(&bytes[..offset]),
            Payload::ComponentImportSection(_) => imports = true,
            Payload::ComponentTypeSection(_)
            | Payload::ComponentAliasSection(_)
            | Payload::CustomSection(_) => {}
            _ => break,
        }
        if let Some((id, range)) = payload.as_section()
            && id != 0
        {
            stub.push(id);
            leb128(&mut stub, range.len());
            stub.extend_from_slice(bytes.get(range)?);
        }
    }
    imports.then_some(stub)
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
    fn keeps_the_imports_and_drops_the_rest() {
        let component = wat::parse_str(
            r#"(component
                (import "a:b/c" (instance (export "f" (func))))
                (core module (func (export "g")))
            )"#,
        )
        .unwrap();
        let stub = imports_only(&component).expect("imports");
        assert!(stub.len() < component.len());
        let expected =
            wat::parse_str(r#"(component (import "a:b/c" (instance (export "f" (func)))))"#)
                .unwrap();
        assert_eq!(stub, expected);
    }

    #[test]
    fn nothing_to_check_without_imports() {
        let component = wat::parse_str("(component (core module))").unwrap();
        assert_eq!(imports_only(&component), None);
        assert_eq!(imports_only(b"not wasm"), None);
    }

    #[test]
    fn writes_leb128() {
        let mut out = Vec::new();
        leb128(&mut out, 624_485);
        assert_eq!(out, [0xe5, 0x8e, 0x26]);
    }
}
