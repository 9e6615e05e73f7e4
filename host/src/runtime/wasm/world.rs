//! Which actor world a component targets, read from its imports.
//!
//! Both worlds import `wasya:actor/types` (the records of the message), and every
//! component of either imports it under its version: `@0.1.0` (`handle` a plain
//! function, one call per instance) or `@0.2.0` (`handle` an `async func`, many calls
//! per instance). The node tells them apart at upload, from the bytes (the world picks
//! the engine a component compiles for), and runs each as it must.

use wasmparser::{Parser, Payload};

/// The world a component was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `wasya:actor@0.1.0`: `handle` is synchronous, one call per instance.
    Sync,
    /// `wasya:actor@0.2.0`: `handle` is an `async func`, many calls per instance.
    Async,
}

impl World {
    /// The world's name, as listings show it.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Sync => "wasya:actor@0.1.0",
            World::Async => "wasya:actor@0.2.0",
        }
    }

    /// The world a component's top-level imports name: 0.1.0 unless they name
    /// `wasya:actor/…@0.2.0` (bytes that do not parse are left to the compile to refuse).
    pub fn of_bytes(bytes: &[u8]) -> World {
        let Some(imports) = super::imports::imports_only(bytes) else {
            return World::Sync;
        };
        let async_world = Parser::new(0)
            .parse_all(&imports)
            .filter_map(Result::ok)
            .filter_map(|payload| match payload {
                Payload::ComponentImportSection(section) => Some(section),
                _ => None,
            })
            .flat_map(|section| section.into_iter().filter_map(Result::ok))
            .any(|import| {
                let name = import.name.name;
                name.starts_with("wasya:actor/") && name.ends_with("@0.2.0")
            });
        if async_world {
            World::Async
        } else {
            World::Sync
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_read_from_the_imports() {
        let of = |wat: &str| World::of_bytes(&wat::parse_str(wat).expect("a component"));
        assert_eq!(
            of(r#"(component (import "wasya:actor/types@0.2.0" (instance)))"#),
            World::Async
        );
        assert_eq!(
            of(r#"(component (import "wasya:actor/types@0.1.0" (instance)))"#),
            World::Sync
        );
        assert_eq!(of("(component)"), World::Sync);
        assert_eq!(World::of_bytes(b"not wasm"), World::Sync);
    }
}
