//! Every metric the node exports, named in one place.
//!
//! The `asya_actor_*` families are those of Asya's sidecar, with the same names and
//! labels, so existing dashboards work on a wasya node. The `wasya_*` families are what
//! a wasm node adds: instantiation and compile times, compile-cache hits, guest traps,
//! timeouts and limit hits, saturation (in flight against the concurrency limit), queue
//! depth where the transport can tell, event-loop lag, and actors' outbound HTTP
//! requests by host and result.
//!
//! The metrics live in one process-wide registry, served at `/metrics` in Prometheus'
//! text format: one node per process is how the node runs.
//!
//! A label value a guest or a caller chooses (an error type a handler raises, a host
//! an actor calls) is bounded before it reaches the registry: [`bounded`] passes the
//! first [`LABEL_VALUES_PER_SCOPE`] distinct values per actor and reads the rest as
//! `other`, so a guest that raises a new exception class per message cannot grow the
//! registry without end. A removed actor's series go with it ([`forget_actor`]).

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::{LazyLock, OnceLock};

/// Buckets for call and processing durations, 100 µs to 60 s.
const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];
/// Buckets for envelope sizes, 64 B to 64 MiB.
const SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];
/// Buckets for the writes one store commit carries, 1 to 4096.
const GROUP_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0,
];
/// Buckets for event-loop lag, 100 µs to 1 s.
const LAG_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The node's metrics.
pub struct Metrics {
    /// The registry every metric below is registered in, rendered at `/metrics`.
    pub registry: Registry,
    /// `asya_actor_messages_received_total{queue, transport}`: messages taken from a queue.
    pub received: IntCounterVec,
    /// `asya_actor_messages_processed_total{queue, status}`: messages handled to the end, by status
    /// (`success`, `error`).
    pub processed: IntCounterVec,
    /// `asya_actor_messages_sent_total{destination_queue, message_type}`: envelopes handed to the
    /// transport.
    pub sent: IntCounterVec,
    /// `asya_actor_messages_failed_total{queue, reason}`: messages that failed, by reason.
    pub failed: IntCounterVec,
    /// `asya_actor_active_messages{queue}`: messages being handled now.
    pub active: IntGaugeVec,
    /// `asya_actor_processing_duration_seconds{queue}`: seconds from delivery to ack.
    pub processing_duration: HistogramVec,
    /// `asya_actor_runtime_execution_duration_seconds{queue}`: seconds spent in the actor call
    /// alone.
    pub runtime_duration: HistogramVec,
    /// `asya_actor_envelope_size_bytes{direction}`: sizes of envelopes received and sent, in bytes.
    pub envelope_size: HistogramVec,
    /// `wasya_wasm_instantiation_duration_seconds{actor}`: seconds to make a fresh store and
    /// instance for a message.
    pub instantiation: HistogramVec,
    /// `wasya_guest_traps_total{actor}`: guest calls that trapped.
    pub guest_traps: IntCounterVec,
    /// `wasya_guest_timeouts_total{actor}`: guest calls stopped at their timeout.
    pub guest_timeouts: IntCounterVec,
    /// `wasya_partials_total{actor}`: chunks of partial output actors emitted and the node
    /// handed to followers.
    pub partials: IntCounterVec,
    /// `wasya_partials_dropped_total{actor, reason}`: chunks dropped (`count` or `bytes`:
    /// past the call's bound; `not_json`; `no_call`: naming no call in flight;
    /// `no_follower`: in a pool, where followers read the pool's store).
    pub partials_dropped: IntCounterVec,
    /// `wasya_guest_resource_limit_hits_total{actor}`: guest calls stopped at their memory limit.
    pub guest_limit_hits: IntCounterVec,
    /// `wasya_compile_duration_seconds`: seconds to load one component, by compiling it or from the
    /// cache.
    pub compile_duration: Histogram,
    /// `wasya_compile_cache_total{result}`: component loads by source (`hit`, `shared`, `miss`).
    pub compile_cache: IntCounterVec,
    /// `wasya_actor_concurrency_limit{actor}`: how many messages of an actor may run at once.
    pub concurrency_limit: IntGaugeVec,
    /// `wasya_queue_depth{actor}`: messages queued or in flight, where the transport can tell.
    pub queue_depth: IntGaugeVec,
    /// `wasya_event_loop_lag_seconds`: how late a 10 ms tick on the async runtime fires, in
    /// seconds.
    pub event_loop_lag: Histogram,
    /// `wasya_deploys_total{outcome}`: uploads by outcome (`deployed`, `unchanged`, `rejected`).
    pub deploys: IntCounterVec,
    /// `wasya_outcomes_bytes`: bytes of ended envelopes kept as outcomes.
    pub outcomes_bytes: IntGauge,
    /// `wasya_outcomes_evicted_total`: submissions dropped from the outcome store to stay within
    /// its bounds.
    pub outcomes_evicted: IntCounter,
    /// `wasya_envelopes_timed_out_total`: tool calls failed at their tool's timeout.
    pub envelopes_timed_out: IntCounter,
    /// `wasya_results_archived_total{end, result}`: ended envelopes written to object storage, by
    /// end actor and result (`written`, `failed`, `dropped`).
    pub results_archived: IntCounterVec,
    /// `wasya_outbound_requests_total{actor, host, result}`: actors' outbound HTTP requests by
    /// result.
    pub outbound_requests: IntCounterVec,
    /// `wasya_outbound_request_duration_seconds{actor, host}`: seconds from an outbound request to
    /// its response headers.
    pub outbound_duration: HistogramVec,
    /// `wasya_outbound_in_flight{actor}`: an actor's outbound requests open now, until their body
    /// is read.
    pub outbound_in_flight: IntGaugeVec,
    /// `wasya_outbound_body_limit_hits_total{actor}`: outbound responses refused for a body over
    /// the actor's limit.
    pub outbound_body_limit_hits: IntCounterVec,
    /// `wasya_gateway_reports_total{result}`: progress reports to an Asya gateway, by result
    /// (`sent`, `failed`, `dropped`).
    pub gateway_reports: IntCounterVec,
    /// `wasya_progress_events_dropped_total`: progress events not kept in the pool's store.
    pub progress_dropped: IntCounter,
    /// `wasya_store_commits_total{result}`: commits of the data directory's store, by result (`ok`,
    /// `failed`).
    pub store_commits: IntCounterVec,
    /// `wasya_store_commit_duration_seconds`: seconds one store commit takes, its sync included.
    pub store_commit_duration: Histogram,
    /// `wasya_store_group_entries`: how many writes one store commit carries.
    pub store_group_entries: Histogram,
    /// `wasya_store_writes_dropped_total`: the store's bookkeeping writes dropped (its
    /// queue full, or their commit failed).
    pub store_writes_dropped: IntCounter,
    /// `wasya_mcp_sessions`: MCP sessions open now (at most `--mcp-sessions`).
    pub mcp_sessions: IntGauge,
    /// `wasya_store_recovered_messages_total{state}`: messages read back from the store at start,
    /// by state (`queued`, `in_flight`).
    pub store_recovered: IntCounterVec,
}

/// Registers `metric` (made from constant names, so neither step can fail in a
/// way a start would survive: a typo panics at the first start of any test).
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    name: &str,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.unwrap_or_else(|e| panic!("{name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        name,
        IntCounterVec::new(Opts::new(name, help), labels),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        registry,
        name,
        IntGaugeVec::new(Opts::new(name, help), labels),
    )
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, name, HistogramVec::new(opts, labels))
}

fn plain_histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, name, Histogram::with_opts(opts))
}

// The names and label sets below are constants: registering them cannot fail, and a
// typo would panic at the first start of any test.
static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    Metrics {
        received: counter(
            &r,
            "asya_actor_messages_received_total",
            "Messages taken from a queue.",
            &["queue", "transport"],
        ),
        processed: counter(
            &r,
            "asya_actor_messages_processed_total",
            "Messages handled to the end, by status (success, error).",
            &["queue", "status"],
        ),
        sent: counter(
            &r,
            "asya_actor_messages_sent_total",
            "Envelopes handed to the transport, by destination and type (routing, happy_end, error_end).",
            &["destination_queue", "message_type"],
        ),
        failed: counter(
            &r,
            "asya_actor_messages_failed_total",
            "Messages that failed, by reason.",
            &["queue", "reason"],
        ),
        active: gauge(
            &r,
            "asya_actor_active_messages",
            "Messages being handled now.",
            &["queue"],
        ),
        processing_duration: histogram(
            &r,
            "asya_actor_processing_duration_seconds",
            "From delivery to ack.",
            &["queue"],
            DURATION_BUCKETS,
        ),
        runtime_duration: histogram(
            &r,
            "asya_actor_runtime_execution_duration_seconds",
            "The actor call alone.",
            &["queue"],
            DURATION_BUCKETS,
        ),
        envelope_size: histogram(
            &r,
            "asya_actor_envelope_size_bytes",
            "Envelope sizes, received and sent.",
            &["direction"],
            SIZE_BUCKETS,
        ),
        instantiation: histogram(
            &r,
            "wasya_wasm_instantiation_duration_seconds",
            "Fresh store and instance per message.",
            &["actor"],
            DURATION_BUCKETS,
        ),
        guest_traps: counter(
            &r,
            "wasya_guest_traps_total",
            "Guest calls that trapped.",
            &["actor"],
        ),
        guest_timeouts: counter(
            &r,
            "wasya_guest_timeouts_total",
            "Calls stopped at their timeout.",
            &["actor"],
        ),
        partials: counter(
            &r,
            "wasya_partials_total",
            "Chunks of partial output actors emitted, handed to followers.",
            &["actor"],
        ),
        partials_dropped: counter(
            &r,
            "wasya_partials_dropped_total",
            "Chunks of partial output dropped (count, bytes: past the call's bound; not_json; no_call; no_follower).",
            &["actor", "reason"],
        ),
        guest_limit_hits: counter(
            &r,
            "wasya_guest_resource_limit_hits_total",
            "Calls stopped at their memory limit.",
            &["actor"],
        ),
        compile_duration: plain_histogram(
            &r,
            "wasya_compile_duration_seconds",
            "Loading one component: compile or cache load.",
            DURATION_BUCKETS,
        ),
        compile_cache: counter(
            &r,
            "wasya_compile_cache_total",
            "Component loads by result (hit, miss).",
            &["result"],
        ),
        concurrency_limit: gauge(
            &r,
            "wasya_actor_concurrency_limit",
            "Messages of an actor allowed at once.",
            &["actor"],
        ),
        queue_depth: gauge(
            &r,
            "wasya_queue_depth",
            "Messages queued or in flight, where the transport can tell.",
            &["actor"],
        ),
        event_loop_lag: plain_histogram(
            &r,
            "wasya_event_loop_lag_seconds",
            "How late a 10 ms tick on the async runtime fires.",
            LAG_BUCKETS,
        ),
        deploys: counter(
            &r,
            "wasya_deploys_total",
            "Uploads by outcome (deployed, unchanged, rejected).",
            &["outcome"],
        ),
        outcomes_bytes: register(
            &r,
            "wasya_outcomes_bytes",
            IntGauge::new(
                "wasya_outcomes_bytes",
                "Bytes of ended envelopes kept as outcomes (bounded by --outcome-memory).",
            ),
        ),
        outcomes_evicted: register(
            &r,
            "wasya_outcomes_evicted_total",
            IntCounter::new(
                "wasya_outcomes_evicted_total",
                "Submissions dropped from the outcome store to stay within its bounds.",
            ),
        ),
        envelopes_timed_out: register(
            &r,
            "wasya_envelopes_timed_out_total",
            IntCounter::new(
                "wasya_envelopes_timed_out_total",
                "Tool calls failed at their tool's timeout (\"envelope timed out\").",
            ),
        ),
        results_archived: counter(
            &r,
            "wasya_results_archived_total",
            "Ended envelopes written to object storage (--s3-bucket), by end actor and result (written; failed: every try failed; dropped: the queue to the store was full).",
            &["end", "result"],
        ),
        outbound_requests: counter(
            &r,
            "wasya_outbound_requests_total",
            "Outbound HTTP requests of actors, by host and result (2xx..5xx, denied, timeout, connect, tls, dns, error).",
            &["actor", "host", "result"],
        ),
        outbound_duration: histogram(
            &r,
            "wasya_outbound_request_duration_seconds",
            "From an actor's outbound request to its response headers.",
            &["actor", "host"],
            DURATION_BUCKETS,
        ),
        outbound_in_flight: gauge(
            &r,
            "wasya_outbound_in_flight",
            "Outbound requests of an actor open now (until their body is read).",
            &["actor"],
        ),
        outbound_body_limit_hits: counter(
            &r,
            "wasya_outbound_body_limit_hits_total",
            "Outbound responses refused for a body past the actor's limit.",
            &["actor"],
        ),
        gateway_reports: counter(
            &r,
            "wasya_gateway_reports_total",
            "Progress reports to an Asya gateway, by result (sent, failed, dropped: the queue of reports was full).",
            &["result"],
        ),
        progress_dropped: register(
            &r,
            "wasya_progress_events_dropped_total",
            IntCounter::new(
                "wasya_progress_events_dropped_total",
                "Progress events not kept in the pool's store (its queue was full, or the store was unreachable).",
            ),
        ),
        store_commits: counter(
            &r,
            "wasya_store_commits_total",
            "Commits of the data directory's store (the embedded queue, outcomes, progress), by result (ok, failed).",
            &["result"],
        ),
        store_commit_duration: plain_histogram(
            &r,
            "wasya_store_commit_duration_seconds",
            "One commit of the store, its sync included.",
            DURATION_BUCKETS,
        ),
        store_group_entries: plain_histogram(
            &r,
            "wasya_store_group_entries",
            "Writes one commit of the store carried (group commit).",
            GROUP_BUCKETS,
        ),
        store_writes_dropped: register(
            &r,
            "wasya_store_writes_dropped_total",
            IntCounter::new(
                "wasya_store_writes_dropped_total",
                "Bookkeeping writes of the data directory's store dropped (its queue full, or their commit failed); nothing acknowledged depends on them.",
            ),
        ),
        mcp_sessions: register(
            &r,
            "wasya_mcp_sessions",
            IntGauge::new(
                "wasya_mcp_sessions",
                "MCP sessions open now (at most --mcp-sessions).",
            ),
        ),
        store_recovered: counter(
            &r,
            "wasya_store_recovered_messages_total",
            "Messages read back from the store at start, by state (queued; in_flight: held by a consumer when the node stopped, delivered again and counted as a redelivery).",
            &["state"],
        ),
        registry: r,
    }
});

/// The node's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Distinct values a chosen label takes per actor; past them, `other`.
pub const LABEL_VALUES_PER_SCOPE: usize = 32;
/// The label value that stands for every value past the bound.
pub const OTHER: &str = "other";

/// The chosen label values seen, per (family, actor or queue).
type Seen = HashMap<(&'static str, String), HashSet<String>>;
static SEEN: LazyLock<Mutex<Seen>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// `value` as the label of `family` for `scope` (an actor or its queue): itself while
/// fewer than [`LABEL_VALUES_PER_SCOPE`] distinct values were seen there, else
/// [`OTHER`].
pub fn bounded(family: &'static str, scope: &str, value: &str) -> String {
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let values = seen.entry((family, scope.to_owned())).or_default();
    if values.contains(value) {
        return value.to_owned();
    }
    if values.len() >= LABEL_VALUES_PER_SCOPE {
        return OTHER.to_owned();
    }
    values.insert(value.to_owned());
    value.to_owned()
}

/// Removes every series of `vec` whose label `key` is `value`; `labels` are the
/// vec's label names, in order.
fn forget<B: MetricVecBuilder>(vec: &MetricVec<B>, labels: &[&str], key: &str, value: &str) {
    let mut doomed = Vec::new();
    for family in vec.collect() {
        for metric in family.get_metric() {
            let pairs = metric.get_label();
            let of = |name: &str| {
                pairs
                    .iter()
                    .find(|pair| pair.name() == name)
                    .map(|pair| pair.value().to_owned())
            };
            if of(key).as_deref() != Some(value) {
                continue;
            }
            let values: Option<Vec<String>> = labels.iter().map(|name| of(name)).collect();
            if let Some(values) = values {
                doomed.push(values);
            }
        }
    }
    for values in doomed {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let _ = vec.remove_label_values(&values);
    }
}

/// Drops the series of an actor that is no longer served (`queue`: its queue's name),
/// and the chosen label values remembered for it.
pub fn forget_actor(actor: &str, queue: &str) {
    let m = metrics();
    forget(&m.received, &["queue", "transport"], "queue", queue);
    forget(&m.processed, &["queue", "status"], "queue", queue);
    forget(&m.failed, &["queue", "reason"], "queue", queue);
    forget(&m.active, &["queue"], "queue", queue);
    forget(&m.processing_duration, &["queue"], "queue", queue);
    forget(&m.runtime_duration, &["queue"], "queue", queue);
    for vec in [
        &m.guest_traps,
        &m.guest_timeouts,
        &m.guest_limit_hits,
        &m.outbound_body_limit_hits,
        &m.partials,
    ] {
        forget(vec, &["actor"], "actor", actor);
    }
    forget(&m.partials_dropped, &["actor", "reason"], "actor", actor);
    forget(&m.instantiation, &["actor"], "actor", actor);
    forget(&m.concurrency_limit, &["actor"], "actor", actor);
    forget(&m.queue_depth, &["actor"], "actor", actor);
    forget(&m.outbound_in_flight, &["actor"], "actor", actor);
    forget(
        &m.outbound_requests,
        &["actor", "host", "result"],
        "actor",
        actor,
    );
    forget(&m.outbound_duration, &["actor", "host"], "actor", actor);
    SEEN.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .retain(|(_, scope), _| scope != actor && scope != queue);
}

/// The prefix of the families Asya's sidecar names, as registered.
const ASYA_PREFIX: &str = "asya_actor_";

/// The namespace the `asya_actor_*` families are rendered under, when not Asya's
/// default (`ASYA_METRICS_NAMESPACE`); set once, at start.
static NAMESPACE: OnceLock<String> = OnceLock::new();

/// Why a metrics namespace cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a metric namespace: it must match [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus' metric names)"
)]
pub struct BadNamespace(pub String);

/// Renders the `asya_actor_*` families as `{namespace}_*`, as Asya's sidecar does with
/// `ASYA_METRICS_NAMESPACE` (default `asya_actor`). The registry keeps its constant
/// names; the families are renamed as they are written, so nothing that records a
/// metric needs to know. A second call keeps the first namespace.
pub fn set_namespace(namespace: &str) -> Result<(), BadNamespace> {
    check_namespace(namespace)?;
    if format!("{namespace}_") != ASYA_PREFIX {
        let _ = NAMESPACE.set(namespace.to_owned());
    }
    Ok(())
}

/// Checks that `namespace` makes valid metric names.
pub fn check_namespace(namespace: &str) -> Result<(), BadNamespace> {
    let mut chars = namespace.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if valid {
        Ok(())
    } else {
        Err(BadNamespace(namespace.to_owned()))
    }
}

/// The metrics in Prometheus' text format.
pub fn render() -> String {
    let mut families = metrics().registry.gather();
    if let Some(namespace) = NAMESPACE.get() {
        for family in &mut families {
            if let Some(rest) = family.name().strip_prefix(ASYA_PREFIX) {
                let renamed = format!("{namespace}_{rest}");
                family.set_name(renamed);
            }
        }
    }
    let mut buffer = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&families, &mut buffer) {
        tracing::warn!(%error, "could not encode the metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}
