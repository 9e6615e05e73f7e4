//! Ready parts put together into a running node: the outcome record, the router, the
//! end actors, the deployments, the pool's change feed, the API, and the stop that
//! ends them in order.
//!
//! Each part is built by one function from the section of the configuration it
//! takes, so the order of the start reads in [`Parts::start`] alone: nothing consumes
//! before every actor is served, and nothing is delivered before the deployments the
//! data directory or the pool recorded are back.

use super::load::LoadedActor;
use super::stop::{StopSequence, log_stop};
use super::{Node, NodeError};
use crate::api::server::Server;
use crate::api::{self, ApiState};
use crate::config::NodeConfig;
use crate::data_dir::deployments::FileStore;
use crate::data_dir::journal::{Journal, StoredSubmission};
use crate::deployments::Deployments;
use crate::envelope::limits::SizeLimit;
use crate::lag::LagMonitor;
use crate::outcomes::{OutcomeLimits, Outcomes};
use crate::pool_feed::PoolFeed;
use crate::progress::Reporter;
use crate::queues::QueueNames;
use crate::readiness::Readiness;
use crate::router::{Router, RouterSettings};
use crate::runtime::wasm::WasmEngine;
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::trace::Exporter;
use crate::transport::Transport;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long what is queued for a gateway or a pool's store gets at stop.
const FLUSH: Duration = Duration::from_secs(5);

/// How long open HTTP requests get to finish once the routing has stopped.
const HTTP_CLOSE: Duration = Duration::from_secs(5);

/// How often the event-loop lag is sampled.
const LAG_TICK: Duration = Duration::from_millis(10);

/// Everything a node is made of, ready.
pub(super) struct Parts {
    pub config: NodeConfig,
    pub transport: Arc<dyn Transport>,
    /// The data directory's journal and the submissions it kept, where outcomes are
    /// kept there.
    pub restored: Option<(Journal, Vec<StoredSubmission>)>,
    pub store: Option<Arc<PgStore>>,
    pub engine: Option<WasmEngine>,
    pub exporter: Option<Exporter>,
    pub loaded: Vec<LoadedActor>,
}

/// Who else hears of each hop: an Asya gateway, object storage.
struct Listeners {
    reporter: Option<Reporter>,
    archive: Option<Arc<crate::archive::Archive>>,
}

impl Parts {
    /// Starts routing, serves the actors and binds the API.
    pub(super) async fn start(mut self) -> Result<Node, NodeError> {
        let outcomes = self.outcomes();
        let listeners = Listeners {
            reporter: self
                .config
                .routing
                .gateway_url
                .as_deref()
                .map(crate::progress::gateway::AsyaGateway::start),
            archive: match self.config.routing.archive.clone() {
                Some(archive) => {
                    Some(crate::archive::Archive::start(archive).map_err(NodeError::Archive)?)
                }
                None => None,
            },
        };
        let router = self.router(&outcomes, &listeners);
        serve_ends(&self.config, &router).await?;
        let deployments = self.deployments(&router).await?;
        self.transport.start_delivering();
        let pool_feed = self.store.as_ref().map(|store| {
            let retention = self
                .config
                .deployments
                .store
                .as_ref()
                .map_or(crate::defaults::OUTCOME_RETENTION, |settings| {
                    settings.outcome_retention
                });
            PoolFeed::start(store.clone(), deployments.clone(), retention)
        });
        let ready = Arc::new(AtomicBool::new(true));
        let http = bind_api(&self, &router, &deployments, &ready).await?;
        let local_addr = http.as_ref().map(|(addr, _)| *addr);
        let mut stop = self.routing_stop(ready, &router, outcomes, listeners);
        if let Some((_, server)) = http {
            stop.then("http api", server.shutdown(HTTP_CLOSE));
        }
        self.background(&mut stop, &deployments, pool_feed);
        Ok(Node {
            local_addr,
            actor_names: deployments.names(),
            stop,
        })
    }

    /// The first steps of the stop: readiness off, the routing stopped, and what it
    /// queued for others sent. Nothing routes after them, so what is queued for the
    /// gateway, the pool's store and object storage goes out then, within a bound.
    fn routing_stop(
        &self,
        ready: Arc<AtomicBool>,
        router: &Arc<Router>,
        outcomes: Arc<Outcomes>,
        listeners: Listeners,
    ) -> StopSequence {
        let mut stop = StopSequence::new();
        let report = stop.report_slot();
        stop.then(
            "readiness",
            async move { ready.store(false, Ordering::SeqCst) },
        );
        let (router, kept) = (router.clone(), outcomes.clone());
        let (transport, grace) = (self.transport.clone(), self.config.grace_period);
        stop.then("routing", async move {
            let left = router.shutdown(grace).await;
            log_stop(transport.name(), &left, &kept);
            let _ = report.set(left);
        });
        if let Some(reporter) = listeners.reporter {
            stop.then(
                "gateway reports",
                async move { reporter.0.flush(FLUSH).await },
            );
        }
        stop.then("progress to the store", async move {
            outcomes.flush_progress(FLUSH).await
        });
        if let Some(archive) = listeners.archive {
            stop.then("object storage", async move { archive.flush(FLUSH).await });
        }
        stop
    }

    /// The bounded record of outcomes, shared with the pool and kept in the journal
    /// where there are.
    fn outcomes(&mut self) -> Arc<Outcomes> {
        let settings = &self.config.outcomes;
        let mut outcomes = Outcomes::bounded(OutcomeLimits {
            count: settings.capacity,
            bytes: settings.memory,
        });
        if let Some(store) = &self.store {
            outcomes = outcomes.with_shared(store.clone());
        }
        if let Some((journal, submissions)) = self.restored.take() {
            outcomes = outcomes.with_journal(journal);
            outcomes.restore(submissions);
        }
        Arc::new(outcomes)
    }

    /// The routing loop over the transport, with the routing section's settings.
    fn router(&self, outcomes: &Arc<Outcomes>, listeners: &Listeners) -> Arc<Router> {
        let routing = &self.config.routing;
        Router::configured(
            self.transport.clone(),
            outcomes.clone(),
            RouterSettings {
                archive: listeners.archive.clone(),
                ends: routing.end_names.clone(),
                queues: QueueNames::new(self.config.transport.queue_prefix.clone()),
                size: SizeLimit::new(self.config.transport.max_envelope_bytes),
                reporter: listeners.reporter.clone(),
                keep_progress: routing.keep_progress,
                tracer: self.exporter.clone(),
                terminal: routing.terminal_actors.clone(),
                log_each_message: routing.log_each_message,
            },
        )
    }

    /// The actors loaded at start and those recorded, served; the deployments that
    /// change them from then on.
    async fn deployments(&mut self, router: &Arc<Router>) -> Result<Arc<Deployments>, NodeError> {
        let store: Option<Arc<dyn Store>> = match &self.store {
            Some(store) => Some(store.clone()),
            None => self
                .config
                .data_dir
                .as_ref()
                .map(|dir| Arc::new(FileStore::new(dir.join("deployments"))) as Arc<dyn Store>),
        };
        let deployments = Arc::new(Deployments::new(
            router.clone(),
            self.engine.clone(),
            self.config.actors.clone(),
            self.config.deployments.clone(),
            store,
        ));
        for actor in std::mem::take(&mut self.loaded) {
            match actor {
                LoadedActor::Wasm(name, actor) => deployments.add_wasm(&name, *actor).await?,
                LoadedActor::Socket(name, path) => deployments.add_socket(&name, path).await?,
            }
        }
        let restored = deployments.restore().await?;
        if restored > 0 {
            let store = if self.store.is_some() {
                "shared"
            } else {
                "data directory"
            };
            tracing::info!(restored, store, "deployed actors restored");
        }
        Ok(deployments)
    }

    /// The tasks that run beside the routing, and their steps at the end of the stop.
    fn background(
        &self,
        stop: &mut StopSequence,
        deployments: &Arc<Deployments>,
        pool_feed: Option<PoolFeed>,
    ) {
        let lag = LagMonitor::spawn(LAG_TICK);
        let depth = tokio::spawn(report_queue_depths(
            self.transport.clone(),
            deployments.clone(),
        ));
        stop.then("queue depths", async move { depth.abort() });
        if let Some(pool_feed) = pool_feed {
            stop.then("pool feed", pool_feed.stop());
        }
        let transport = self.transport.clone();
        stop.then("transport", async move { transport.close().await });
        if let Some(exporter) = self.exporter.clone() {
            stop.then("traces", async move { exporter.shutdown().await });
        }
        stop.then("lag monitor", async move { drop(lag) });
    }
}

/// The end actors served here, or, where others record outcomes, their queues
/// declared all the same.
async fn serve_ends(config: &NodeConfig, router: &Arc<Router>) -> Result<(), NodeError> {
    let routing = &config.routing;
    if routing.end_actors {
        router.serve_end_actors().await?;
    } else {
        for end in [&routing.end_names.happy, &routing.end_names.error] {
            router.transport().declare(end).await?;
        }
    }
    Ok(())
}

/// The HTTP API bound to the API section's address, where it has one.
async fn bind_api(
    parts: &Parts,
    router: &Arc<Router>,
    deployments: &Arc<Deployments>,
    ready: &Arc<AtomicBool>,
) -> Result<Option<(SocketAddr, Server)>, NodeError> {
    let settings = &parts.config.api;
    let Some(addr) = settings.listen else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| NodeError::Listen { addr, source })?;
    let readiness: Vec<Arc<dyn Readiness>> = parts
        .store
        .iter()
        .map(|store| store.clone() as Arc<dyn Readiness>)
        .collect();
    let app = api::app(Arc::new(ApiState {
        router: router.clone(),
        ready: ready.clone(),
        deployments: deployments.clone(),
        max_body_bytes: settings.max_body_bytes,
        token: settings.token.clone(),
        readiness,
        tools: settings.tools.clone(),
        mcp_sessions: settings.mcp_sessions,
        open_reports: settings.open_reports,
        guard: Arc::new(api::guard::WebGuard::new(
            addr.ip().is_loopback(),
            &settings.public_hosts,
            &settings.allowed_origins,
        )),
    }));
    let server = Server::spawn(listener, app, settings.header_read_timeout);
    tracing::info!(address = %bound, transport = parts.transport.name(), "HTTP API listening");
    Ok(Some((bound, server)))
}

/// Keeps the queue-depth gauge current for every served actor, deployed ones
/// included, where the transport can tell.
async fn report_queue_depths(transport: Arc<dyn Transport>, deployments: Arc<Deployments>) {
    let gauge = &crate::metrics::metrics().queue_depth;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for actor in deployments.names() {
            if let Some(depth) = transport.depth(&actor) {
                gauge.with_label_values(&[actor.as_str()]).set(depth as i64);
            }
        }
    }
}
