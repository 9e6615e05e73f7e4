//! Sending one guest request: the grant, the actor's limits, metrics and trace context.
//!
//! `wasi:http/outgoing-handler.handle` hands every request to [`OutboundHooks`], one
//! per store. The grant is checked there and then, inside the guest's call: a refused
//! request fails at once with `HTTP-request-denied`, and the refused `scheme://host:port`
//! is remembered so that the envelope's error-end details can name it. An allowed
//! request becomes a future on the node's shared client; the guest waits on it through
//! `wasi:io` pollables, which under wasmtime's async support park the guest's task,
//! not a thread, so ten thousand waiting guests cost memory only.
//!
//! The request runs under the tightest of: the actor's outbound timeout, the call's
//! own deadline, and the timeouts the guest set in its request options. Its response
//! body is bounded by the actor's body limit ([`super::body`]), and the actor's
//! outbound concurrency is a semaphore whose permit the body holds until it is read.

use super::OutboundLimits;
use super::body::{LimitedBody, WasiBody};
use super::client::OutboundClient;
use super::grant::Target;
use crate::envelope::Headers;
use crate::metrics::metrics;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

/// The trace-context headers carried from an envelope to its outbound requests.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// One actor's way out: its limits, its permits and the node's client.
pub struct Gate {
    actor: Arc<str>,
    limits: OutboundLimits,
    client: OutboundClient,
    permits: Arc<Semaphore>,
}

impl Gate {
    /// A gate for `actor`'s outbound requests, with its `limits`, on the node's `client`.
    pub fn new(actor: Arc<str>, limits: OutboundLimits, client: OutboundClient) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            actor,
            limits,
            client,
        }
    }

    /// Sends an allowed request and bounds its response.
    async fn send(
        self: Arc<Self>,
        request: Request<WasiBody>,
        target: Target,
        options: Option<RequestOptions>,
        call_deadline: Instant,
    ) -> Result<Response<WasiBody>, Error> {
        let started = Instant::now();
        let deadline = call_deadline.min(started + self.limits.timeout);
        // The host is the guest's choice (within its grant): bounded per actor.
        let host = crate::metrics::bounded("outbound_host", &self.actor, &target.to_string());
        let labels = [&*self.actor, host.as_str()];
        let m = metrics();
        let count = |result: &str| {
            m.outbound_requests
                .with_label_values(&[&*self.actor, host.as_str(), result])
                .inc();
        };
        let permit = match tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Error::InternalError(Some("the node is stopping".into()))),
            Err(_) => {
                count("timeout");
                return Err(Error::HttpResponseTimeout);
            }
        };
        let in_flight = InFlight::new(&self.actor);
        let client = match self.client.get().await {
            Ok(client) => client,
            Err(error) => {
                count("error");
                return Err(Error::InternalError(Some(error.to_string())));
            }
        };
        let first_byte = options
            .and_then(|options| options.first_byte_timeout)
            .map_or(deadline, |timeout| deadline.min(started + timeout));
        let response = match tokio::time::timeout_at(first_byte, client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                let (error, result) = classify(&error);
                count(result);
                tracing::debug!(actor = &*self.actor, host, %error, "an outbound request failed");
                return Err(error);
            }
            Err(_) => {
                count("timeout");
                return Err(Error::HttpResponseTimeout);
            }
        };
        m.outbound_duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
        count(status_class(response.status()));
        let limit = self.limits.body_limit as u64;
        let announced = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        let limit_hits = m
            .outbound_body_limit_hits
            .with_label_values(&[&*self.actor]);
        if let Some(length) = announced.filter(|length| *length > limit) {
            limit_hits.inc();
            return Err(Error::HttpResponseBodySize(Some(length)));
        }
        let between = options.and_then(|options| options.between_bytes_timeout);
        Ok(response.map(|body| {
            LimitedBody::new(
                body,
                limit,
                deadline,
                between,
                Box::new(move || limit_hits.inc()),
                (permit, in_flight),
            )
            .boxed_unsync()
        }))
    }
}

/// Counts a request in `wasya_outbound_in_flight` for as long as it lives.
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn new(actor: &str) -> Self {
        let gauge = metrics().outbound_in_flight.with_label_values(&[actor]);
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `wasi:http` hooks of one store: its actor's gate and the call running now.
pub struct OutboundHooks {
    gate: Arc<Gate>,
    deadline: Instant,
    trace: Vec<(HeaderName, HeaderValue)>,
    refused: Vec<String>,
}

impl OutboundHooks {
    /// The hooks of one store, sending through `gate`.
    pub fn new(gate: Arc<Gate>) -> Self {
        OutboundHooks {
            gate,
            deadline: Instant::now(),
            trace: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// Starts a call: its deadline and the envelope's trace context.
    pub fn begin(&mut self, deadline: std::time::Instant, headers: &Headers) {
        self.deadline = Instant::from_std(deadline);
        self.trace.clear();
        self.refused.clear();
        for name in TRACE_HEADERS {
            if let Some(value) = headers.get(name)
                && let Ok(value) = HeaderValue::from_str(value)
            {
                self.trace.push((HeaderName::from_static(name), value));
            }
        }
    }

    /// The `scheme://host:port` of every request the grant refused in this call.
    pub fn take_refused(&mut self) -> Vec<String> {
        std::mem::take(&mut self.refused)
    }
}

type Sent = Result<
    (
        Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutboundHooks {
    /// The client sets `host` from the URI (or `:authority` on HTTP/2).
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        mut request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let Some(target) = Target::of(request.uri()) else {
            return Box::new(async { Err(Error::HttpRequestUriInvalid) });
        };
        if !self.gate.limits.grant.allows(&target) {
            let host = target.to_string();
            tracing::warn!(
                actor = &*self.gate.actor,
                host,
                "an outbound request was denied: the actor's allowed_outbound_hosts do not match"
            );
            let label = crate::metrics::bounded("outbound_host", &self.gate.actor, &host);
            metrics()
                .outbound_requests
                .with_label_values(&[&*self.gate.actor, label.as_str(), "denied"])
                .inc();
            if !self.refused.contains(&host)
                && self.refused.len() < crate::envelope::limits::REFUSED_HOSTS_CAP
            {
                self.refused.push(host);
            }
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        for (name, value) in &self.trace {
            if !request.headers().contains_key(name) {
                request.headers_mut().insert(name.clone(), value.clone());
            }
        }
        let sent = self
            .gate
            .clone()
            .send(request, target, options, self.deadline);
        Box::new(async move {
            let response = sent.await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// `2xx`, `4xx`, …: the result label of a request that got an answer.
fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// What the guest is told, and the result label, for a request that got no answer.
fn classify(error: &hyper_util::client::legacy::Error) -> (Error, &'static str) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return (tls_error(tls), "tls");
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if let Some(tls) = tls_inside(io) {
                return (tls_error(tls), "tls");
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return (Error::ConnectionRefused, "connect");
                }
                std::io::ErrorKind::TimedOut => return (Error::ConnectionTimeout, "connect"),
                _ => {}
            }
        }
        source = current.source();
    }
    let text = crate::error_chain::chain(error).to_string();
    if error.is_connect() && text.contains("dns error") {
        return (
            Error::DnsError {
                rcode: None,
                info_code: None,
            },
            "dns",
        );
    }
    let result = if error.is_connect() {
        "connect"
    } else {
        "error"
    };
    (Error::InternalError(Some(text)), result)
}

/// The rustls error an I/O error wraps, however deep: TLS connectors wrap it in an
/// `io::Error`, which a connector may wrap in another.
fn tls_inside(mut io: &std::io::Error) -> Option<&rustls::Error> {
    loop {
        let inner = io.get_ref()?;
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        io = inner.downcast_ref::<std::io::Error>()?;
    }
}

fn tls_error(error: &rustls::Error) -> Error {
    match error {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            Error::TlsCertificateError
        }
        rustls::Error::AlertReceived(alert) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::TlsProtocolError,
    }
}
