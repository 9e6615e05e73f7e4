//! A trace per envelope: one span per hop, continuing the envelope's W3C `traceparent`.
//!
//! Each hop (an actor's receive → call → publish, and an end actor's recording) is one
//! span: same trace id as the envelope's `traceparent`, a new span id, the parent being
//! the span of the hop before. Before the actor is called the envelope's `traceparent`
//! is set to the hop's own span, so a socket runtime, an actor's outbound HTTP request
//! and every output (a fan-out's children too) carry it on: a pipeline reads as one
//! tree in a trace viewer, with fan-outs as branches.
//!
//! Spans are exported over OTLP/HTTP when the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the other `OTEL_*`
//! variables as every OpenTelemetry SDK is; without it nothing is recorded and headers
//! pass unchanged. The hop's span is built whole when it ends ([`hop`]), with the ids
//! chosen at its start, rather than through a tracing layer: the id handed on must be
//! known before the call, and the routing path pays for one small struct per hop, not
//! for a span stack.

pub mod context;
pub mod export;
pub mod hop;
pub mod sampler;

pub use context::TraceParent;
pub use export::{ExportError, Exporter};
pub use hop::HopSpan;
pub use sampler::Sampler;

/// The envelope header that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";
