//! How the API shows actors: built from a snapshot of what runs, never waiting on a
//! change in progress, with the counts each actor's slot keeps, the calls running,
//! the queue's depth where the transport can tell, and why the runtime cannot serve.

use super::Deployments;
use super::options::Effective;
use super::served::{Backend, Served};
use crate::records::{ActorKind, ActorRecord, HandlerMode, Version};
use crate::runtime::wasm::world::World;
use serde::Serialize;

/// A served actor as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActorView {
    /// The actor's name (its queue's, less the prefix).
    pub name: String,
    /// A wasm component in-process, or a socket actor's external runtime.
    pub kind: ActorKind,
    /// The sha256 of a wasm actor's current component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The current version of an uploaded component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Every uploaded version, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<Version>,
    /// The socket of an external runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Calls open to an external runtime at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    /// Messages of the actor run at once on this node.
    pub concurrency: usize,
    /// How long one call may run.
    pub timeout_ms: u64,
    /// Wasm actors: the memory one instance may grow to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<usize>,
    /// What the actor's results carry: `payload` (the node advances the route) or
    /// `envelope` (the actor may change it). Set by the actor's options, else the mode
    /// a component was built in (`wasya build --mode`), else `envelope` for a wasm
    /// component (it may return routes); absent for a socket actor whose options set
    /// none (its runtime's `ASYA_HANDLER_MODE` decides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler_mode: Option<HandlerMode>,
    /// Wasm actors: whether instances are kept between messages (not for an async
    /// actor, whose instances are shared by calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reuse_instances: Option<bool>,
    /// Served wasm actors: the world the component targets, `wasya:actor@0.1.0` (one
    /// call per instance) or `wasya:actor@0.2.0` (async: many calls per instance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<&'static str>,
    /// Async actors: calls one instance takes at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_concurrency: Option<usize>,
    /// Async actors: instances alive now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<usize>,
    /// Names of the environment variables granted to a wasm guest (values stay private).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Wasm actors: where the guest may send HTTP requests (node-wide and its own).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    /// Wasm actors: the outbound request timeout, body limit and concurrency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<OutboundView>,
    /// Messages this node finished for the actor, since it started.
    pub processed: u64,
    /// Of those, the ones that went to error-end.
    pub failed: u64,
    /// Time spent on the messages counted in `processed`, summed, in milliseconds
    /// (their mean latency is `processing_ms / processed`).
    pub processing_ms: f64,
    /// Calls running now, at most `concurrency` (the actor's saturation).
    pub in_flight: u64,
    /// Messages queued or in flight for the actor, where the transport can tell (on
    /// RabbitMQ: the messages ready in its queue, as the broker last counted them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<usize>,
    /// Why the actor cannot serve now (a socket actor's runtime unreachable), if it
    /// cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ready: Option<String>,
}

/// What a served actor is doing now; nothing for one only recorded.
#[derive(Default)]
struct Activity {
    processed: u64,
    failed: u64,
    processing_ms: f64,
    in_flight: u64,
    queue_depth: Option<usize>,
    not_ready: Option<String>,
}

/// An actor's outbound HTTP limits, as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboundView {
    /// How long one outbound request may take.
    pub timeout_ms: u64,
    /// The largest response body read.
    pub body_limit_bytes: usize,
    /// Outbound requests open at once.
    pub concurrency: usize,
}

impl Deployments {
    /// Every served actor.
    pub fn list(&self) -> Vec<ActorView> {
        self.served
            .snapshot()
            .values()
            .map(|served| self.view(served))
            .collect()
    }

    /// One served actor.
    pub fn get(&self, name: &str) -> Option<ActorView> {
        self.served.get(name).map(|served| self.view(&served))
    }

    /// The names of the served actors.
    pub fn names(&self) -> Vec<String> {
        self.served.snapshot().keys().cloned().collect()
    }

    /// Whether actor `name` is served here.
    pub fn serves(&self, name: &str) -> bool {
        self.served.get(name).is_some()
    }

    /// How many actors are served, and why each that cannot serve now cannot.
    pub fn readiness(&self) -> (usize, Vec<String>) {
        let snapshot = self.served.snapshot();
        let reasons = snapshot
            .values()
            .filter_map(|served| served.slot.current().not_ready())
            .collect();
        (snapshot.len(), reasons)
    }

    /// How the API shows an actor recorded but not served on this node.
    pub(super) fn record_view(&self, record: &ActorRecord) -> ActorView {
        let effective = Effective::of(&self.actors, &record.name, record.kind, &record.options);
        let digest = record.current().map(|version| version.digest.clone());
        let socket = record
            .options
            .socket
            .as_ref()
            .map(|path| path.display().to_string());
        view_of(
            record,
            &effective,
            BackendFacts {
                digest,
                socket,
                ..BackendFacts::default()
            },
            Activity::default(),
        )
    }

    pub(super) fn view(&self, served: &Served) -> ActorView {
        let facts = match &served.backend {
            Backend::Wasm(actor) => BackendFacts {
                digest: Some(actor.digest().to_owned()),
                socket: None,
                declared: actor.declared_mode(),
                world: Some(actor.world()),
                instances: actor.live_instances(),
            },
            Backend::Socket(path) => BackendFacts {
                socket: Some(path.display().to_string()),
                ..BackendFacts::default()
            },
        };
        let (processed, failed) = served.slot.counts();
        let activity = Activity {
            processed,
            failed,
            processing_ms: served.slot.busy().as_secs_f64() * 1000.0,
            in_flight: served.slot.calling(),
            queue_depth: self.router.transport().depth(&served.record.name),
            not_ready: served.slot.current().not_ready(),
        };
        view_of(&served.record, &served.effective, facts, activity)
    }
}

/// What the backend tells of an actor: a component's digest, declared mode, world and
/// live instances, or a runtime's socket.
#[derive(Default)]
struct BackendFacts {
    digest: Option<String>,
    socket: Option<String>,
    declared: Option<HandlerMode>,
    world: Option<World>,
    instances: Option<usize>,
}

fn view_of(
    record: &ActorRecord,
    effective: &Effective,
    facts: BackendFacts,
    activity: Activity,
) -> ActorView {
    let BackendFacts {
        digest,
        socket,
        declared,
        world,
        instances,
    } = facts;
    let is_socket = socket.is_some();
    let is_async = world == Some(World::Async);
    ActorView {
        name: record.name.clone(),
        kind: record.kind,
        digest,
        version: record.current().map(|version| version.version),
        versions: record.versions.clone(),
        connections: is_socket.then(|| record.options.connections.unwrap_or(effective.concurrency)),
        socket,
        concurrency: effective.concurrency,
        timeout_ms: effective
            .limits
            .timeout
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX),
        memory_limit_bytes: (!is_socket).then_some(effective.limits.memory_bytes),
        handler_mode: match record.kind {
            ActorKind::Socket => effective.handler_mode,
            ActorKind::Wasm => Some(
                effective
                    .handler_mode
                    .or(declared)
                    .unwrap_or(HandlerMode::Envelope),
            ),
        },
        reuse_instances: (!is_socket && !is_async)
            .then(|| effective.limits.reuses_instances(declared)),
        world: world.map(World::as_str),
        instance_concurrency: is_async.then_some(effective.limits.instance_concurrency),
        instances,
        env: effective
            .limits
            .env
            .iter()
            .map(|(key, _)| key.clone())
            .collect(),
        allowed_outbound_hosts: effective.limits.outbound.grant.patterns(),
        outbound: (!is_socket).then(|| OutboundView {
            timeout_ms: effective
                .limits
                .outbound
                .timeout
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
            body_limit_bytes: effective.limits.outbound.body_limit,
            concurrency: effective.limits.outbound.concurrency,
        }),
        processed: activity.processed,
        failed: activity.failed,
        processing_ms: activity.processing_ms,
        in_flight: activity.in_flight,
        queue_depth: activity.queue_depth,
        not_ready: activity.not_ready,
    }
}
