//! WebAssembly component actors, run in-process with wasmtime.
//!
//! - [`engine`]: the one `Engine` (pooling allocator, epoch interruption) and the
//!   linker every actor shares;
//! - [`cache`]: compiled components on disk, keyed by content digest and engine
//!   compatibility, so a restart deserialises instead of compiling;
//! - [`host`]: what a guest may reach: a WASI context with nothing granted, the log
//!   interface, the memory limiter;
//! - [`actor`]: one actor: an `InstancePre`, and a fresh store and instance per call;
//! - [`output`]: envelopes into guest messages, guest outputs into outcomes;
//! - [`imports`]: a component's imports, checked before it compiles;
//! - [`declared`]: the handler mode a component was built in, as it declares it;
//! - [`stdio`]: what a guest prints, kept per call;
//! - [`warm`]: instances kept between messages, for actors that opt in;
//! - [`shared`]: async actors (`wasya:actor@0.2.0`): instances entered by many calls;
//! - [`world`]: which of the two worlds a component targets.

pub mod actor;
pub mod artifacts;
pub mod cache;
pub mod declared;
pub mod engine;
pub mod host;
pub mod imports;
pub mod output;
pub mod shared;
pub mod stdio;
pub mod warm;
pub mod world;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "actor",
        exports: { default: async },
    });
}

mod bindings_async {
    wasmtime::component::bindgen!({
        path: "../wit/async",
        world: "actor",
    });
}

pub use actor::WasmActor;
pub use engine::{EngineOptions, WasmEngine};

use crate::error_chain::Cause;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The bytes are empty.
    #[error("the upload is empty")]
    Empty,
    /// The bytes are a core WebAssembly module, not a component.
    #[error("this is a core WebAssembly module, not a component (build for wasm32-wasip2)")]
    CoreModule,
    /// The bytes do not start with the WebAssembly header.
    #[error("this is not WebAssembly (no `\\0asm` header)")]
    NotWasm,
    /// The component imports interfaces this node does not provide.
    #[error("the component imports what this node does not provide")]
    Imports(#[source] Cause),
    /// The component does not compile.
    #[error("the component does not compile")]
    Compile(#[source] Cause),
    /// The component does not fit the `wasya:actor` world.
    #[error("the component does not fit the wasya:actor world")]
    WrongWorld(#[source] Cause),
    /// The wasm engine could not be set up.
    #[error("engine setup failed")]
    Engine(#[source] Cause),
    /// A blocking task (named by the string) panicked or was cancelled.
    #[error("the {0} task did not finish")]
    Task(&'static str, #[source] tokio::task::JoinError),
}
