//! Which actor world a component targets, read from its imports.
//!
//! Both worlds import `wasya:actor/types` (the records of the message), and every
//! component of either imports it under its version: `@0.1.0` (`handle` a plain
//! function, one call per instance) or `@0.2.0` (`handle` an `async func`, many calls
//! per instance). The node tells them apart at upload and runs each as it must.

use wasmtime::Engine;
use wasmtime::component::Component;

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

    /// The world `component` imports its actor types from; 0.1.0 unless it names 0.2.
    pub fn of(component: &Component, engine: &Engine) -> World {
        let async_world = component
            .component_type()
            .imports(engine)
            .any(|(name, _)| name.starts_with("wasya:actor/") && name.ends_with("@0.2.0"));
        if async_world {
            World::Async
        } else {
            World::Sync
        }
    }
}
