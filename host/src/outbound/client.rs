//! The node's one HTTP client for actors' outbound requests.
//!
//! Every actor's requests share one pooled client: connections to an LLM API are kept
//! open and reused across messages and actors, HTTP/2 is negotiated by ALPN where the
//! server offers it, and TLS is rustls with both the platform's roots (honouring
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`, as the platform's own tools do) and the webpki
//! roots, plus any CA files the operator names (`--outbound-ca`).
//!
//! Loading the platform's roots reads files, so the client is built on the blocking
//! pool, once, on first use (or at start, where the node asks for it to fail fast on
//! a bad CA file).

use super::body::WasiBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The pooled client type requests go through.
pub type Pooled = Client<HttpsConnector<HttpConnector>, WasiBody>;

/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a TCP connect may take (a request's own deadline may be shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the client could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// An `--outbound-ca` file could not be read or holds no usable certificate.
    #[error("--outbound-ca {path}: {reason}")]
    CaFile {
        /// The file, as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS configuration could not be built; holds the reason.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The task building the client did not finish; holds the reason.
    #[error("the outbound client could not be built: {0}")]
    Task(String),
}

/// What the client trusts beyond the platform and webpki roots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientSettings {
    /// PEM files of extra certificate authorities.
    pub ca_files: Vec<PathBuf>,
}

/// The shared client, built on first use.
#[derive(Clone, Default)]
pub struct OutboundClient {
    settings: ClientSettings,
    client: Arc<OnceCell<Pooled>>,
}

impl OutboundClient {
    /// A client that trusts `settings`' extra authorities; it is built on first use.
    pub fn new(settings: ClientSettings) -> Self {
        OutboundClient {
            settings,
            client: Arc::default(),
        }
    }

    /// The client, built now on the blocking pool if this is its first use.
    pub async fn get(&self) -> Result<&Pooled, ClientError> {
        self.client
            .get_or_try_init(|| async {
                let settings = self.settings.clone();
                tokio::task::spawn_blocking(move || build(&settings))
                    .await
                    .map_err(|error| ClientError::Task(error.to_string()))?
            })
            .await
    }
}

fn build(settings: &ClientSettings) -> Result<Pooled, ClientError> {
    build_for(settings)
}

/// A pooled HTTP/1.1 and HTTP/2 client with the node's TLS (ring; webpki and platform
/// roots plus the CA files), for request bodies of type `B`. Reads files: call it on
/// the blocking pool.
pub fn build_for<B>(
    settings: &ClientSettings,
) -> Result<Client<HttpsConnector<HttpConnector>, B>, ClientError>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a platform certificate could not be read");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(platform_roots = added, "outbound TLS roots loaded");
    for path in &settings.ca_files {
        let fail = |reason: String| ClientError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|error| fail(error.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| fail(error.to_string()))?;
        if certs.is_empty() {
            return Err(fail("holds no PEM certificate".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|error| fail(format!("not a usable CA certificate: {error}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ClientError::Tls(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector))
}
