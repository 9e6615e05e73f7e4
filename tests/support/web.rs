//! Local HTTP servers for actors to call: real sockets, on 127.0.0.1, in the test.
//!
//! One server answers several paths, each a behaviour a network step meets:
//! - `/echo`: the request as JSON (method, HTTP version, target, headers, body);
//! - `/gzip`: a small JSON body, gzip-encoded (`content-encoding: gzip`);
//! - `/slow?ms=N`: answers after N milliseconds;
//! - `/never`: never answers;
//! - `/big?bytes=N`: N bytes, streamed without a length; `/big?bytes=N&announce=1`
//!   with `content-length`;
//! - `/v1/chat/completions`: an OpenAI-compatible stub that answers
//!   `echo: <last user message>` after the server's delay;
//! - `POST /envelopes…`: an Asya gateway's progress endpoints, recording each
//!   request's path and JSON body (in [`Seen::gateway`]) and answering as the gateway.
//!
//! It counts requests in flight and the most seen at once. With [`WebServer::tls`]
//! it serves HTTPS with a certificate for `localhost` signed by a CA made for the
//! test, whose PEM file the node can be told to trust.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Requests seen by a server.
#[derive(Default)]
pub struct Seen {
    pub total: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub most_in_flight: AtomicUsize,
    /// The `authorization` header of the last chat request.
    pub authorization: std::sync::Mutex<Option<String>>,
    /// The `model` of the last chat request.
    pub model: std::sync::Mutex<Option<String>>,
    /// Requests to the gateway paths, in order: path and JSON body.
    pub gateway: std::sync::Mutex<Vec<(String, Value)>>,
}

/// A running server; it stops when dropped.
pub struct WebServer {
    pub port: u16,
    pub seen: Arc<Seen>,
    /// With TLS: the PEM file of the CA that signed its certificate.
    pub ca_file: Option<PathBuf>,
    _ca_dir: Option<tempfile::TempDir>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebServer {
    /// A plain HTTP server; the chat stub answers after `delay`.
    pub async fn start(delay: Duration) -> WebServer {
        Self::serve(delay, None).await
    }

    /// An HTTPS server for `localhost`, its CA written to a file.
    pub async fn tls(delay: Duration) -> WebServer {
        let (acceptor, ca_file, dir) = localhost_tls(true);
        let mut server = Self::serve(delay, Some(acceptor)).await;
        server.ca_file = Some(ca_file);
        server._ca_dir = Some(dir);
        server
    }

    async fn serve(delay: Duration, tls: Option<tokio_rustls::TlsAcceptor>) -> WebServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let seen = Arc::new(Seen::default());
        let counted = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, tls) = (counted.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let seen = seen.clone();
                        async move { Ok::<_, Infallible>(answer(request, delay, &seen).await) }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        WebServer {
            port,
            seen,
            ca_file: None,
            _ca_dir: None,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}` (or `https://localhost:PORT{path}` with TLS).
    pub fn url(&self, path: &str) -> String {
        match self.ca_file {
            Some(_) => format!("https://localhost:{}{path}", self.port),
            None => format!("http://127.0.0.1:{}{path}", self.port),
        }
    }

    /// The `scheme://host:port` pattern that grants this server alone.
    pub fn pattern(&self) -> String {
        self.url("")
    }
}

/// Counts a request in flight while it lives.
struct InFlight(Arc<Seen>);

impl InFlight {
    fn new(seen: &Arc<Seen>) -> Self {
        seen.total.fetch_add(1, Ordering::SeqCst);
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(seen.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response
}

/// The whole request body (empty where it could not be read).
async fn read_body(request: Request<Incoming>) -> Bytes {
    request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default()
}

fn query(request: &Request<Incoming>, name: &str) -> Option<u64> {
    request.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.parse().ok())?
    })
}

/// `{"compressed": true}`, gzipped: what `/gzip` answers.
const GZIPPED_JSON: &[u8] = &[
    0x1f, 0x8b, 0x8, 0x0, 0x0, 0x0, 0x0, 0x0, 0x2, 0x3, 0xab, 0x56, 0x4a, 0xce, 0xcf, 0x2d, 0x28,
    0x4a, 0x2d, 0x2e, 0x4e, 0x4d, 0x51, 0xb2, 0x52, 0x28, 0x29, 0x2a, 0x4d, 0xad, 0x5, 0x0, 0xbd,
    0xa5, 0x2c, 0x2d, 0x14, 0x0, 0x0, 0x0,
];

async fn answer(request: Request<Incoming>, delay: Duration, seen: &Arc<Seen>) -> Response<Body> {
    let _counted = InFlight::new(seen);
    let path = request.uri().path().to_owned();
    match path.as_str() {
        "/echo" => {
            let method = request.method().to_string();
            let version = format!("{:?}", request.version());
            let target = request.uri().to_string();
            let headers: serde_json::Map<String, Value> = request
                .headers()
                .iter()
                .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap_or_default())))
                .collect();
            let body = read_body(request).await;
            let echo = json!({
                "method": method, "version": version, "target": target, "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            let mut response = full(200, echo.to_string());
            response.headers_mut().insert(
                "content-type",
                "application/json".parse().expect("a header"),
            );
            response
        }
        "/gzip" => {
            let mut response = full(200, GZIPPED_JSON);
            let headers = response.headers_mut();
            headers.insert(
                "content-type",
                "application/json".parse().expect("a header"),
            );
            headers.insert("content-encoding", "gzip".parse().expect("a header"));
            response
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(query(&request, "ms").unwrap_or(1000))).await;
            full(200, "slow answer")
        }
        "/never" => {
            std::future::pending::<()>().await;
            full(500, "")
        }
        "/big" => {
            let bytes = query(&request, "bytes").unwrap_or(1 << 20) as usize;
            if query(&request, "announce") == Some(1) {
                return full(200, vec![b'x'; bytes]);
            }
            let chunks = (0..bytes.div_ceil(8192)).map(move |i| {
                let len = 8192.min(bytes - i * 8192);
                Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; len])))
            });
            Response::new(StreamBody::new(futures::stream::iter(chunks)).boxed())
        }
        "/v1/chat/completions" => {
            let authorization = request
                .headers()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let body = read_body(request).await;
            let Ok(asked) = serde_json::from_slice::<Value>(&body) else {
                return full(400, json!({"error": {"message": "not JSON"}}).to_string());
            };
            *seen.authorization.lock().expect("a lock") = authorization.clone();
            *seen.model.lock().expect("a lock") = asked["model"].as_str().map(str::to_owned);
            tokio::time::sleep(delay).await;
            let prompt = asked["messages"]
                .as_array()
                .and_then(|messages| messages.last())
                .and_then(|message| message["content"].as_str())
                .unwrap_or_default();
            let answer = json!({
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": asked["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": format!("echo: {prompt}")}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                "authorization": authorization,
            });
            full(200, answer.to_string())
        }
        gateway if gateway.starts_with("/envelopes") => {
            let body = read_body(request).await;
            // A slow gateway answers after the server's delay.
            tokio::time::sleep(delay).await;
            let body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
            seen.gateway
                .lock()
                .expect("a lock")
                .push((gateway.to_owned(), body.clone()));
            if gateway == "/envelopes" {
                full(
                    201,
                    json!({"status": "created", "id": body["id"]}).to_string(),
                )
            } else {
                full(200, json!({"status": "ok"}).to_string())
            }
        }
        _ => full(404, "no such path"),
    }
}

/// A certificate for `localhost`, its key, and the PEM of the CA made here that
/// signed it: what every test server that speaks TLS presents.
pub struct LocalhostCert {
    pub ca_pem: String,
    pub cert: rcgen::Certificate,
    pub key: rcgen::KeyPair,
}

/// Makes a CA named `ca_name` and a `localhost` certificate it signs.
pub fn localhost_cert(ca_name: &str) -> LocalhostCert {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = ca_params.self_signed(&ca_key).expect("a CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("a server key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("a server certificate");
    LocalhostCert {
        ca_pem: ca.pem(),
        cert,
        key,
    }
}

/// A TLS acceptor for `localhost` with a certificate signed by a CA made here; the
/// CA's PEM file (in the directory returned with it).
pub fn localhost_tls(h2: bool) -> (tokio_rustls::TlsAcceptor, PathBuf, tempfile::TempDir) {
    let LocalhostCert { ca_pem, cert, key } = localhost_cert("wasya test CA");
    let dir = tempfile::tempdir().expect("a CA directory");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("the CA file");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("a server TLS config");
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_file,
        dir,
    )
}

/// A TLS-terminating proxy for `localhost` in front of a plain TCP address, as an
/// ingress in front of a node; it stops when dropped.
pub struct TlsProxy {
    pub port: u16,
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsProxy {
    /// Proxies to `target` (`127.0.0.1:PORT`).
    pub async fn to(target: String) -> TlsProxy {
        let (acceptor, ca_file, dir) = localhost_tls(false);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, target) = (acceptor.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        TlsProxy {
            port,
            ca_file,
            _dir: dir,
            task,
        }
    }

    /// `https://localhost:PORT`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}
