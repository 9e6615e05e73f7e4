//! The parts a node is assembled from, each given by the caller or built from the
//! configuration.
//!
//! A test or an embedder hands in what it wants to control (a transport of its own, a
//! journal opened elsewhere, a trace exporter, an engine shared between nodes); the
//! rest is built here from the configuration's sections (the pool's store always is:
//! it is named by its URL in [`crate::config::DeploymentConfig`]), in the order the start
//! needs: the pool's store first (the engine reads compiled components from it), then
//! the engine and the actors (a component that does not compile stops the start before
//! a queue is touched), then the journal and the transport.

use super::assemble::Parts;
use super::{Node, NodeError, load};
use crate::config::{EngineConfig, NodeConfig};
use crate::data_dir::journal::{Journal, Recovered, StoredSubmission};
use crate::outbound::ClientSettings;
use crate::queues::QueueNames;
use crate::runtime::wasm::{EngineOptions, WasmEngine};
use crate::store::postgres::PgStore;
use crate::trace::{ExportError, Exporter};
use crate::transport::Transport;
use crate::transport::amqp::{AmqpOptions, AmqpTransport};
use crate::transport::embedded::EmbeddedTransport;
use std::sync::Arc;

/// Assembles a [`Node`] from parts; every part left out is built from the
/// configuration.
pub struct NodeBuilder {
    config: NodeConfig,
    transport: Option<Arc<dyn Transport>>,
    journal: Option<(Journal, Recovered)>,
    exporter: Option<Option<Exporter>>,
    engine: Option<WasmEngine>,
}

impl NodeBuilder {
    /// A node of `config`, with no part given yet.
    pub fn new(config: NodeConfig) -> Self {
        NodeBuilder {
            config,
            transport: None,
            journal: None,
            exporter: None,
            engine: None,
        }
    }

    /// Routes over `transport` instead of the one the configuration names.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Keeps the data directory's records in `journal`, opened with what it
    /// `recovered`: the embedded queue is durable on it and outcomes are restored from
    /// it (with a transport of the caller's, only the outcomes).
    pub fn journal(mut self, journal: Journal, recovered: Recovered) -> Self {
        self.journal = Some((journal, recovered));
        self
    }

    /// Sends hop spans to `exporter` (`None`: nowhere) instead of what the
    /// `OTEL_*` environment asks for.
    pub fn exporter(mut self, exporter: Option<Exporter>) -> Self {
        self.exporter = Some(exporter);
        self
    }

    /// Runs wasm actors on `engine` instead of one built from the configuration.
    pub fn engine(mut self, engine: WasmEngine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Loads the actors, connects the transport, starts routing and binds the API.
    pub async fn start(self) -> Result<Node, NodeError> {
        let NodeBuilder {
            config,
            transport,
            journal,
            exporter,
            engine,
        } = self;
        config.validate()?;
        let store = connect_store(&config).await?;
        let engine = match (engine, &config.engine) {
            (Some(engine), _) => Some(engine),
            (None, Some(settings)) => Some(build_engine(settings, &config).await?),
            (None, None) => None,
        };
        let engine = match (&store, engine) {
            (Some(store), Some(engine)) => Some(engine.with_artifacts(store.clone())),
            (_, engine) => engine,
        };
        let loaded = load::actors(&config, engine.as_ref()).await?;
        let journal = match journal {
            Some(journal) => Some(journal),
            None if transport.is_none() => open_journal(&config).await?,
            None => None,
        };
        let (transport, restored) = transport_of(transport, journal, &config).await?;
        let exporter = match exporter {
            Some(exporter) => exporter,
            None => exporter_from_env().await?,
        };
        Parts {
            config,
            transport,
            restored,
            store,
            engine,
            exporter,
            loaded,
        }
        .start()
        .await
    }
}

/// The pool's store the configuration names, connected.
async fn connect_store(config: &NodeConfig) -> Result<Option<Arc<PgStore>>, NodeError> {
    match &config.deployments.store {
        Some(settings) => Ok(Some(
            PgStore::connect(settings).await.map_err(NodeError::Store)?,
        )),
        None => Ok(None),
    }
}

/// The engine of `settings`, its compile cache in the data directory.
async fn build_engine(
    settings: &EngineConfig,
    config: &NodeConfig,
) -> Result<WasmEngine, NodeError> {
    let engine = WasmEngine::new(&EngineOptions {
        pooling: settings.pooling,
        max_instances: settings.max_instances,
        cache_dir: config.data_dir.as_ref().map(|dir| dir.join("compiled")),
        table_elements: settings.pool_table_elements,
        instance_size: settings.pool_instance_size,
        outbound: ClientSettings {
            ca_files: settings.outbound_ca.clone(),
        },
        ..EngineOptions::default()
    })
    .map_err(NodeError::Engine)?;
    // With CA files to read, built now, so that one that cannot be used stops the
    // start; otherwise on the first outbound request (it reads the platform's roots).
    if !settings.outbound_ca.is_empty() {
        engine.outbound().get().await?;
    }
    Ok(engine)
}

/// The data directory's journal, where the embedded queue keeps what it accepted.
async fn open_journal(config: &NodeConfig) -> Result<Option<(Journal, Recovered)>, NodeError> {
    match (&config.data_dir, config.ephemeral, &config.transport.amqp) {
        (Some(dir), false, None) => {
            let (journal, recovered) = Journal::open(dir).await?;
            log_recovered(&recovered);
            Ok(Some((journal, recovered)))
        }
        _ => Ok(None),
    }
}

/// The transport to route over, and the journal with the submissions it kept where
/// outcomes are kept there.
async fn transport_of(
    given: Option<Arc<dyn Transport>>,
    journal: Option<(Journal, Recovered)>,
    config: &NodeConfig,
) -> Result<(Arc<dyn Transport>, Option<(Journal, Vec<StoredSubmission>)>), NodeError> {
    let settings = &config.transport;
    let outcomes_only = |journal: Option<(Journal, Recovered)>| {
        journal.map(|(journal, kept)| (journal, kept.submissions))
    };
    if let Some(transport) = given {
        return Ok((transport, outcomes_only(journal)));
    }
    if let Some(amqp) = &settings.amqp {
        let options = AmqpOptions {
            exchange: amqp.exchange.clone(),
            names: QueueNames::new(settings.queue_prefix.clone()),
            max_redeliveries: amqp.max_redeliveries,
            ..AmqpOptions::new(amqp.url.clone())
        };
        let transport = AmqpTransport::connect(options).await?;
        return Ok((Arc::new(transport), outcomes_only(journal)));
    }
    let (transport, restored) = match journal {
        Some((journal, recovered)) => (
            EmbeddedTransport::durable(
                settings.queue_capacity,
                journal.clone(),
                recovered.messages,
            ),
            Some((journal, recovered.submissions)),
        ),
        None => (EmbeddedTransport::new(settings.queue_capacity), None),
    };
    let transport = transport.with_max_redeliveries(settings.max_redeliveries);
    Ok((Arc::new(transport), restored))
}

/// The exporter the `OTEL_*` environment asks for, built where it may block.
async fn exporter_from_env() -> Result<Option<Exporter>, NodeError> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || Exporter::from_env(runtime))
        .await
        .map_err(|error| NodeError::Trace(ExportError::Task(error.to_string())))?
        .map_err(NodeError::Trace)
}

/// Says what the data directory's store held at start.
fn log_recovered(recovered: &Recovered) {
    let in_flight = recovered
        .messages
        .iter()
        .filter(|message| message.was_in_flight)
        .count();
    tracing::info!(
        messages = recovered.messages.len(),
        in_flight,
        submissions = recovered.submissions.len(),
        "embedded queue opened from the data directory (messages in flight at the last stop are delivered again, counted as redeliveries)"
    );
}
