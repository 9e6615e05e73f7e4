//! The HTTP client the command line talks to a node with: `https://` nodes are
//! trusted through the platform's roots (honouring `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`, as the platform's own tools do) and, with `--ca-file`, a CA of the
//! operator's own.

use anyhow::Context;
use std::path::Path;
use std::time::Duration;

/// A client trusting the platform's roots and `ca_file`, if given.
pub fn client(
    ca_file: Option<&Path>,
    timeout: Option<Duration>,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(file) = ca_file {
        let pem = std::fs::read(file)
            .with_context(|| format!("cannot read the CA file {}", file.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} holds no PEM certificate", file.display()))?;
        anyhow::ensure!(
            !certificates.is_empty(),
            "{} holds no PEM certificate",
            file.display()
        );
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().context("cannot set up the HTTP client")
}
