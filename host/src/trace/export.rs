//! Exporting hop spans over OTLP/HTTP (protobuf), configured by the `OTEL_*`
//! environment as every OpenTelemetry SDK is.
//!
//! The SDK's batch processor keeps a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048 by
//! default; past it spans are dropped and counted by the SDK) and exports from its own
//! thread, so a slow or absent collector never slows a hop. That thread blocks on the
//! export, so the HTTP request itself is run on the node's tokio runtime through the
//! node's own client (rustls with ring, the same roots as actors' outbound HTTPS).

use super::hop::{HopEnd, HopSpan};
use super::sampler::Sampler;
use crate::outbound::client::{ClientError, ClientSettings, build_for};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SpanData, SpanEvents, SpanExporter as _, SpanLinks, SpanProcessor,
};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The longest one export request may take, and the largest answer read.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
const ANSWER_LIMIT: usize = 1 << 20;

/// Why spans cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The OTLP exporter could not be built.
    #[error("the OTLP exporter")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// The HTTP client the exporter sends through could not be built.
    #[error("the OTLP exporter's HTTP client")]
    Client(#[source] ClientError),
    /// The OTLP protocol asked for is not `http/protobuf`; holds the protocol named.
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0}: this node exports over HTTP (http/protobuf)")]
    Protocol(String),
    /// The task building the exporter did not finish; holds the reason.
    #[error("the exporter could not be built: {0}")]
    Task(String),
}

/// The node's HTTP client, run on its runtime, for the exporter's thread.
#[derive(Debug, Clone)]
struct RuntimeClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let send = async move {
            let response = client.request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, ANSWER_LIMIT).collect().await?.to_bytes();
            Ok::<_, HttpError>(http::Response::from_parts(parts, body))
        };
        let timed = async move {
            tokio::time::timeout(EXPORT_TIMEOUT, send)
                .await
                .map_err(|_| HttpError::from("the OTLP export timed out"))?
        };
        self.runtime.spawn(timed).await?
    }
}

/// Where hop spans go.
#[derive(Clone)]
pub struct Exporter {
    processor: Arc<BatchSpanProcessor>,
    scope: InstrumentationScope,
    sampler: Sampler,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Exporter")
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

impl Exporter {
    /// The exporter the environment asks for: `None` unless an OTLP endpoint is set
    /// (and `OTEL_SDK_DISABLED` is not `true`, nor `OTEL_TRACES_EXPORTER` `none`).
    /// Call it on the node's runtime, on a thread that may block (it reads CA files).
    pub fn from_env(runtime: tokio::runtime::Handle) -> Result<Option<Exporter>, ExportError> {
        let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let disabled = var("OTEL_SDK_DISABLED")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|value| value.eq_ignore_ascii_case("none"));
        let Some(endpoint) = endpoint.filter(|_| !disabled) else {
            return Ok(None);
        };
        let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(protocol) = protocol.filter(|protocol| protocol != "http/protobuf") {
            return Err(ExportError::Protocol(protocol));
        }
        let settings = ClientSettings {
            ca_files: var("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")
                .or_else(|| var("OTEL_EXPORTER_OTLP_CERTIFICATE"))
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        tracing::info!(endpoint, "hop spans are exported over OTLP/HTTP");
        // The SDK reads the endpoint, headers and timeout from the environment itself.
        Self::build(None, &settings, runtime).map(Some)
    }

    /// An exporter to the OTLP/HTTP traces URL `url` (`http://host:4318/v1/traces`),
    /// whatever the environment says of the endpoint. Call it as [`Self::from_env`].
    pub fn to_url(url: &str, runtime: tokio::runtime::Handle) -> Result<Exporter, ExportError> {
        Self::build(Some(url), &ClientSettings::default(), runtime)
    }

    fn build(
        url: Option<&str>,
        settings: &ClientSettings,
        runtime: tokio::runtime::Handle,
    ) -> Result<Exporter, ExportError> {
        let client = RuntimeClient {
            client: build_for(settings).map_err(ExportError::Client)?,
            runtime,
        };
        let mut builder = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(client);
        if let Some(url) = url {
            builder = builder.with_endpoint(url);
        }
        let mut exporter = builder.build().map_err(ExportError::Exporter)?;
        let resource = Resource::builder()
            .with_service_name(var("OTEL_SERVICE_NAME").unwrap_or_else(|| "wasya".into()))
            .build();
        exporter.set_resource(&resource);
        let processor = BatchSpanProcessor::builder(exporter).build();
        let name = var("OTEL_TRACES_SAMPLER");
        let sampler = Sampler::from_names(name.as_deref(), var("OTEL_TRACES_SAMPLER_ARG").as_deref())
            .unwrap_or_else(|| {
                tracing::warn!(sampler = name.as_deref().unwrap_or_default(), "OTEL_TRACES_SAMPLER names a sampler this node does not know; every trace is recorded (parentbased_always_on)");
                Sampler::default()
            });
        Ok(Exporter {
            processor: Arc::new(processor),
            scope: InstrumentationScope::builder("wasya")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            sampler,
        })
    }

    /// Fresh ids for a hop: a trace id (used when the envelope starts a trace) and a
    /// span id.
    pub fn new_ids() -> ([u8; 16], [u8; 8]) {
        let mut span: [u8; 8] = rand::random();
        if span == [0; 8] {
            span[7] = 1;
        }
        let mut trace: [u8; 16] = rand::random();
        if trace == [0; 16] {
            trace[15] = 1;
        }
        (trace, span)
    }

    /// Decides whether `span` is recorded, as the sampler says, setting its flags (and
    /// so those of the `traceparent` it hands on).
    pub fn sample(&self, span: &mut HopSpan) {
        let parent_flags = span.parent.map(|_| span.context.flags);
        span.context.flags = self.sampler.flags(&span.context.trace_id, parent_flags);
    }

    /// Ends a hop's span and queues it for export (unsampled traces are not kept).
    pub fn end(&self, span: HopSpan, end: HopEnd) {
        if !span.context.sampled() {
            return;
        }
        self.processor
            .on_end(span_data(span, end, SystemTime::now(), &self.scope));
    }

    /// Sends what is queued and stops the exporter's thread (it blocks: called on the
    /// blocking pool).
    pub async fn shutdown(&self) {
        let processor = self.processor.clone();
        let flushed = tokio::task::spawn_blocking(move || processor.shutdown()).await;
        if let Ok(Err(error)) = flushed {
            tracing::warn!(%error, "spans still queued may not have been exported");
        }
    }
}

/// The span of a hop, as OpenTelemetry exports it.
fn span_data(
    span: HopSpan,
    end: HopEnd,
    now: SystemTime,
    scope: &InstrumentationScope,
) -> SpanData {
    let facts = span.facts;
    let mut attributes = vec![
        KeyValue::new("messaging.system", "wasya"),
        KeyValue::new("messaging.operation.type", "process"),
        KeyValue::new("messaging.destination.name", facts.queue),
        KeyValue::new("messaging.message.id", facts.envelope_id),
        KeyValue::new("wasya.actor", facts.actor),
        KeyValue::new("wasya.route.index", facts.route_index as i64),
        KeyValue::new("wasya.transport", facts.transport),
    ];
    let (outcome, status) = match end {
        HopEnd::Completed { next } => {
            attributes.push(KeyValue::new("wasya.next", next.join(",")));
            ("completed", Status::Ok)
        }
        HopEnd::Failed { message } => ("failed", Status::error(message)),
        HopEnd::Requeued => ("requeued", Status::error("the actor could not be called")),
        HopEnd::Recorded => ("recorded", Status::Ok),
    };
    attributes.push(KeyValue::new("wasya.outcome", outcome));
    let flags = TraceFlags::new(span.context.flags);
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(span.context.trace_id),
            SpanId::from_bytes(span.context.span_id),
            flags,
            false,
            TraceState::default(),
        ),
        parent_span_id: span.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: span.parent.is_some(),
        span_kind: SpanKind::Consumer,
        name: Cow::Owned(facts.name),
        start_time: span.start,
        end_time: now.max(span.start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::hop::HopFacts;

    #[test]
    fn a_hop_span_keeps_its_ids_parent_and_outcome() {
        let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let facts = HopFacts {
            name: "process upper".into(),
            actor: "upper".into(),
            queue: "asya-upper".into(),
            envelope_id: "e".into(),
            route_index: 1,
            transport: "embedded",
        };
        let span = HopSpan::begin(Some(incoming), facts, [1; 16], [2; 8], SystemTime::now());
        let data = span_data(
            span,
            HopEnd::Failed {
                message: "boom".into(),
            },
            SystemTime::now(),
            &InstrumentationScope::builder("wasya").build(),
        );
        assert_eq!(
            data.span_context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(data.span_context.span_id().to_string(), "0202020202020202");
        assert_eq!(data.parent_span_id.to_string(), "b7ad6b7169203331");
        assert_eq!(data.status, Status::error("boom"));
        assert!(
            data.attributes
                .contains(&KeyValue::new("wasya.outcome", "failed"))
        );
        assert!(
            data.attributes
                .contains(&KeyValue::new("wasya.route.index", 1i64))
        );
    }
}
