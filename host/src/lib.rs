//! wasya: a node for actor pipelines.
//!
//! The node takes envelopes from queues, runs the actor each one is addressed to, and
//! routes the results on, as the Asya actor mesh does. The crate is split so that each
//! concern can be tested alone:
//!
//! - [`envelope`] and [`route_rules`] are plain data and pure functions: what an
//!   envelope is and where its results go; no I/O.
//! - [`transport`] moves bytes between queues (embedded, or a broker); [`data_dir`]
//!   keeps what a single node must not lose (the embedded queue, outcomes,
//!   deployments) in its data directory.
//! - [`runtime`] runs one actor call (a WebAssembly component in-process, or an
//!   external runtime over a socket).
//! - [`router`] is the loop that ties them together: receive, run, route, ack.
//! - [`outcomes`] records what reached `happy-end` / `error-end`; the HTTP API serves it.
//! - [`node`] assembles a node from parts ([`NodeBuilder`]) configured by [`config`].
//!
//! The public surface is what the binary, the benchmarks and an embedder need: the
//! items re-exported at the root below (the node and its builder, the configuration,
//! the envelope, the router, the transports, the runtimes and the outcome record), and
//! the modules they come from for their less used parts. The HTTP API, the pool's
//! store, the retry policy and the other plumbing stay inside the crate, free to
//! change.

pub mod actors;
pub(crate) mod api;
pub mod archive;
pub(crate) mod background;
pub(crate) mod backoff;
pub(crate) mod branch;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod defaults;
pub mod deployments;
pub mod envelope;
pub(crate) mod error_chain;
pub mod failure;
pub(crate) mod files;
pub mod lag;
pub mod metrics;
pub mod node;
pub mod outbound;
pub mod outcomes;
pub(crate) mod pool_feed;
pub(crate) mod progress;
pub mod queues;
pub(crate) mod readiness;
pub mod records;
pub mod route_rules;
pub mod router;
pub mod runtime;
pub(crate) mod store;
pub(crate) mod tools;
pub mod trace;
pub mod transport;
pub mod units;

pub use actors::ActorSlot;
pub use config::NodeConfig;
pub use envelope::Envelope;
pub use lag::LagMonitor;
pub use node::{Node, NodeBuilder};
pub use outcomes::Outcomes;
pub use queues::QueueNames;
pub use route_rules::{Outcome, Output};
pub use router::{Router, RouterSettings};
pub use runtime::socket::{SocketActor, SocketOptions};
pub use runtime::wasm::{EngineOptions, WasmEngine};
pub use runtime::{ActorLimits, ActorRuntime};
pub use transport::Transport;
pub use transport::amqp::{AmqpOptions, AmqpTransport};
pub use transport::embedded::EmbeddedTransport;

/// The tokio runtime the node runs on.
///
/// Timers and I/O readiness are checked every 16 task polls instead of tokio's default
/// 61: under a burst of thousands of ready tasks (10,000 socket calls completing at
/// once) that keeps a periodic tick, an HTTP probe or a broker heartbeat from waiting
/// behind a long run queue, at a small cost in raw throughput.
pub fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(16)
        .build()
}

/// The example actors built from `guests/` and embedded in the binary, as
/// `(name, component bytes)`.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_actors.rs"));
}

/// The WASI WIT packages (`wasi:http` and what it uses) the node implements, as
/// `(package, text)`: what a Python actor's bindings are generated from.
pub mod wasi_wit {
    include!(concat!(env!("OUT_DIR"), "/wasi_wit.rs"));
}
