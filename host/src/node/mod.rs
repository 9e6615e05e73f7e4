//! A whole node: the engine, the actors, a transport, the router and the HTTP API,
//! started and stopped as one.
//!
//! A node is assembled by a [`NodeBuilder`] from ready parts (a transport, the data
//! directory's journal, the pool's store, a trace exporter, a wasm engine), each built
//! from the configuration where the caller gives none; [`Node::start`] is the builder
//! with every default. It returns once every actor is loaded and consuming and the API
//! is bound, so a caller (the CLI, a test, a benchmark) can send envelopes at once.
//! Everything after the transport is chosen holds it as an `Arc<dyn` [`Transport`]`>`,
//! so the node behaves the same on the embedded queue and on RabbitMQ.
//!
//! [`Node::stop`] runs the stop as an ordered list of named steps ([`stop`]): readiness
//! goes false and new envelopes are refused while the API keeps answering; the router
//! stops ([`crate::router::stop`]: a broker keeps what is queued, the embedded queues
//! are drained), in-flight calls finish within the grace period, what is queued for a
//! gateway, the pool's store or object storage goes out, and only then does the API
//! close. The stop returns (and logs) what became of what was left.

mod assemble;
mod builder;
mod load;
pub mod stop;

pub use builder::NodeBuilder;
pub use stop::StopSequence;

use crate::config::NodeConfig;
use crate::records::NameError;
use crate::router::stop::StopSummary;
use crate::runtime::wasm::WasmError;
use crate::trace::ExportError;
use crate::transport::TransportError;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The actors directory could not be read.
    #[error("cannot read actors from {path}")]
    ActorsDir {
        /// The actors directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An actor file's name is not a valid actor name.
    #[error("{file}")]
    ActorName {
        /// The actor file.
        file: PathBuf,
        /// Why its name is not valid.
        source: NameError,
    },
    /// The actors directory holds no `NAME.wasm` files; holds the directory.
    #[error("no actors to serve in {0} (expected NAME.wasm files)")]
    NoActors(PathBuf),
    /// A per-actor setting names an actor that is not served; holds the name.
    #[error("a setting names actor `{0}`, which is not among the actors to serve")]
    UnknownOverride(String),
    /// `--serve` names an actor that is not available; holds the name.
    #[error("--serve names actor `{0}`, which is not among the available actors")]
    UnknownServe(String),
    /// The same name is both a wasm actor and a socket actor; holds the name.
    #[error("actor `{0}` is defined twice (a wasm actor and a socket actor)")]
    Duplicate(String),
    /// A wasm actor could not be loaded.
    #[error("actor `{name}`")]
    Actor {
        /// The actor's name.
        name: String,
        /// Why it could not be loaded.
        source: WasmError,
    },
    /// The wasm engine could not be built.
    #[error(transparent)]
    Engine(WasmError),
    /// A wasm actor is to be served by a node that runs without the wasm engine.
    #[error("actor `{0}` is a wasm component, and this node runs without the wasm engine")]
    NoEngine(String),
    /// The HTTP client for actors' outbound requests could not be built.
    #[error(transparent)]
    Outbound(#[from] crate::outbound::ClientError),
    /// The transport could not connect or declare a queue.
    #[error("transport")]
    Transport(#[from] TransportError),
    /// Deployed actors could not be restored.
    #[error(transparent)]
    Deploy(#[from] crate::deployments::DeployError),
    /// The shared store could not be reached or used.
    #[error("the shared store")]
    Store(#[source] crate::store::StoreError),
    /// The data directory's store could not be opened.
    #[error(transparent)]
    Journal(#[from] crate::data_dir::journal::JournalError),
    /// The trace exporter could not be set up.
    #[error("traces")]
    Trace(#[source] ExportError),
    /// Object storage for results (`--s3-bucket`) cannot be used.
    #[error(transparent)]
    Archive(crate::archive::ArchiveError),
    /// The API could not bind its address.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A running node.
pub struct Node {
    local_addr: Option<SocketAddr>,
    actor_names: Vec<String>,
    stop: StopSequence,
}

impl Node {
    /// Loads the actors, connects the transport, starts routing and binds the API,
    /// every part built from `config`.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        NodeBuilder::new(config).start().await
    }

    /// The address the API is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Names of the actors served.
    pub fn actor_names(&self) -> &[String] {
        &self.actor_names
    }

    /// The names of the steps [`Node::stop`] runs, in order.
    pub fn stop_steps(&self) -> Vec<&'static str> {
        self.stop.names()
    }

    /// Stops gracefully within the configured grace period; says what the routing
    /// left behind.
    pub async fn stop(self) -> StopSummary {
        self.stop.run().await
    }
}

#[cfg(test)]
mod tests;
