//! TLS to the store, with `sslmode` meaning what it means to libpq.
//!
//! Managed PostgreSQL services document URLs such as
//! `postgres://…/db?sslmode=verify-full&sslrootcert=/etc/ssl/pg-ca.pem`. The driver
//! (tokio-postgres) knows only `disable`, `prefer` and `require` and refuses the
//! `sslrootcert` parameter, so the two are read off the URL here before the driver
//! parses the rest. Every mode connects through one rustls connector on ring, the
//! crypto stack of the rest of the node; the modes differ in what is checked:
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | – |
//! | `prefer` (default) | when the server offers it | no |
//! | `require` | always | no; with `sslrootcert`, the chain (as libpq does) |
//! | `verify-ca` | always | the chain |
//! | `verify-full` | always | the chain and the host name |
//!
//! The chain is checked against `sslrootcert` where given, else the platform's roots
//! (which honour `SSL_CERT_FILE`).

use crate::store::StoreError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How a connection is protected, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, the certificate not checked.
    Prefer,
    /// TLS always, the certificate not checked (unless a root certificate is given).
    Require,
    /// TLS always, the certificate chain checked.
    VerifyCa,
    /// TLS always, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, StoreError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::message(format!(
                    "sslmode `{other}` in the store URL is not supported: use disable, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }
}

/// A store URL taken apart: the driver's configuration and how to protect it.
#[derive(Debug)]
pub struct StoreUrl {
    /// What the driver understands of the URL, with the TLS mode set.
    pub config: tokio_postgres::Config,
    /// The `sslmode` asked for.
    pub mode: SslMode,
    /// The `sslrootcert` file, when given.
    pub root_cert: Option<PathBuf>,
}

impl StoreUrl {
    /// Reads `url` (a `postgres://` URL or `key=value` pairs).
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let mut mode = SslMode::Prefer;
        let mut root_cert = None;
        let mut take = |key: &str, value: &str| -> Result<bool, StoreError> {
            match key {
                "sslmode" => mode = SslMode::parse(value)?,
                "sslrootcert" => root_cert = Some(PathBuf::from(value)),
                _ => return Ok(false),
            }
            Ok(true)
        };
        let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (base, query) = url.split_once('?').unwrap_or((url, ""));
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !take(key, &percent_decode(value))? {
                    kept.push(pair);
                }
            }
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        } else {
            let mut kept = Vec::new();
            for word in url.split_whitespace() {
                let taken = match word.split_once('=') {
                    Some((key, value)) => take(key.trim(), value.trim_matches('\''))?,
                    None => false,
                };
                if !taken {
                    kept.push(word);
                }
            }
            kept.join(" ")
        };
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|error| StoreError::failed("the store URL is invalid", error))?;
        config.ssl_mode(match mode {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        });
        Ok(StoreUrl {
            config,
            mode,
            root_cert,
        })
    }

    /// The TLS connector for this URL's mode.
    pub fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| StoreError::failed("cannot set up TLS for the store", error))?;
        let checks_chain = match self.mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            SslMode::Require => self.root_cert.is_some(),
            SslMode::Disable | SslMode::Prefer => false,
        };
        let chain = if checks_chain {
            let roots = Arc::new(self.roots()?);
            Some(
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|error| {
                        StoreError::failed("cannot set up TLS for the store", error)
                    })?,
            )
        } else {
            None
        };
        let config = match chain {
            Some(chain) if self.mode == SslMode::VerifyFull => {
                builder.with_webpki_verifier(chain).with_no_client_auth()
            }
            chain => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NameUnchecked { chain, provider }))
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn roots(&self) -> Result<RootCertStore, StoreError> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) => {
                let certificates = CertificateDer::pem_file_iter(path)
                    .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                    .map_err(|error| {
                        StoreError::failed(
                            format!("cannot read sslrootcert {}", path.display()),
                            error,
                        )
                    })?;
                let (added, _) = roots.add_parsable_certificates(certificates);
                if added == 0 {
                    return Err(StoreError::message(format!(
                        "sslrootcert {} holds no usable certificate",
                        path.display()
                    )));
                }
            }
            None => {
                let platform = rustls_native_certs::load_native_certs();
                for error in &platform.errors {
                    tracing::debug!(%error, "a platform root certificate could not be read");
                }
                roots.add_parsable_certificates(platform.certs);
            }
        }
        Ok(roots)
    }
}

/// `%XX` escapes in a URL parameter's value (a root certificate's path).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Every mode but `verify-full`: the host name is not compared. The chain is checked
/// where there is one to check against (`verify-ca`, `require` with `sslrootcert`);
/// otherwise, for `prefer` and `require`, nothing is: encryption without identity, as
/// libpq does. The handshake's signatures are checked against the certificate
/// presented either way.
#[derive(Debug)]
struct NameUnchecked {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl NameUnchecked {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

impl ServerCertVerifier for NameUnchecked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_are_read_off_a_url_and_the_rest_reaches_the_driver() {
        let url = StoreUrl::parse(
            "postgres://app@db.example:6432/pool?sslmode=verify-full&sslrootcert=%2Fetc%2Fpg%20ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(url.mode, SslMode::VerifyFull);
        assert_eq!(url.root_cert, Some(PathBuf::from("/etc/pg ca.pem")));
        assert_eq!(url.config.get_ssl_mode(), DriverSslMode::Require);
        assert_eq!(url.config.get_user(), Some("app"));
        assert_eq!(url.config.get_ports(), &[6432]);
        assert_eq!(url.config.get_application_name(), Some("x"));
    }

    #[test]
    fn key_value_strings_work_too_and_prefer_is_the_default() {
        let url = StoreUrl::parse("host=127.0.0.1 user=app sslmode=verify-ca").unwrap();
        assert_eq!(url.mode, SslMode::VerifyCa);
        assert_eq!(url.config.get_user(), Some("app"));
        let plain = StoreUrl::parse("postgres://app@127.0.0.1/test").unwrap();
        assert_eq!(plain.mode, SslMode::Prefer);
        assert_eq!(plain.config.get_ssl_mode(), DriverSslMode::Prefer);
    }

    #[test]
    fn an_unknown_mode_and_an_unreadable_root_are_named() {
        let error = StoreUrl::parse("postgres://h/db?sslmode=allow").unwrap_err();
        assert!(error.to_string().contains("sslmode `allow`"), "{error}");
        let url =
            StoreUrl::parse("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
                .unwrap();
        let error = url
            .connector()
            .err()
            .map(|error| crate::error_chain::chain(&error).to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|error| error.contains("/nonexistent/ca.pem")),
            "{error:?}"
        );
    }
}
