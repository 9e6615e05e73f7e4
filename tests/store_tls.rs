//! The pool's store over TLS, against a PostgreSQL server of the test's own that
//! refuses plain connections: `sslmode` means what it means to libpq, the connections
//! really are encrypted, and each refusal says why.

use crate::support::{NodeProcess, TlsPostgres, guest, up_log_until};
use serde_json::json;

/// Starts a node on `url` and returns once it serves, after one envelope went through
/// an actor deployed into that store.
async fn node_works_on(url: &str) -> NodeProcess {
    let node = NodeProcess::start(&["--store", url, "--store-schema", "tls_pool"]);
    let (status, ready) = node.get_text("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let (status, answer) = node.upload("secure-echo", guest("echo")).await;
    // 201 for the first node; the later ones find the same version in the store.
    assert!(status == 201 || status == 200, "{status} {answer}");
    let id = node.submit(&["secure-echo"], json!("over TLS")).await;
    assert_eq!(node.outcome(&id).await["results"], json!(["over TLS"]));
    node
}

/// Starts a node on `url` that cannot use the store, and returns what it logged
/// about why: the retry line (a node keeps retrying an unreachable store for a
/// while at start; the test stops it), or its whole log when it gave up at once.
fn refusal_on(url: &str) -> String {
    let lines = up_log_until(&["--store", url], &[], &[], |line| {
        line.contains("the store is not reachable yet") || line.contains("HTTP API listening")
    });
    let last = lines.last().cloned().unwrap_or_default();
    assert!(
        !last.contains("HTTP API listening"),
        "the node started: {lines:?}"
    );
    if last.contains("the store is not reachable yet") {
        last
    } else {
        lines.join("\n")
    }
}

#[tokio::test]
async fn verify_full_require_and_verify_ca_reach_a_tls_only_store_and_the_link_is_encrypted() {
    let server = TlsPostgres::start();
    let ca = server.ca_file.display().to_string();
    // The certificate names `localhost`: verify-full through that name and the CA.
    let full = node_works_on(&server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    let encrypted = server.query(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE ssl AND application_name = 'wasya-tls_pool'",
    );
    assert_ne!(encrypted, "0", "no encrypted connection from the node");
    let plain = server.query(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE NOT ssl AND application_name = 'wasya-tls_pool'",
    );
    assert_eq!(plain, "0", "a plain connection from the node");
    drop(full);
    // verify-ca checks the chain, not the name: 127.0.0.1 is not in the certificate.
    drop(
        node_works_on(&server.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")))
            .await,
    );
    // require encrypts without checking who answers, as libpq does.
    drop(node_works_on(&server.url("127.0.0.1", "sslmode=require")).await);
}

#[tokio::test]
async fn a_wrong_name_an_untrusted_certificate_and_a_plain_connection_are_refused_with_the_reason()
{
    let server = TlsPostgres::start();
    let ca = server.ca_file.display().to_string();
    let wrong_name = refusal_on(&server.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    assert!(
        wrong_name.contains("certificate not valid for name \\\"127.0.0.1\\\""),
        "{wrong_name}"
    );
    let untrusted = refusal_on(&server.url("localhost", "sslmode=verify-full"));
    assert!(
        untrusted.contains("invalid peer certificate: UnknownIssuer"),
        "{untrusted}"
    );
    let plain = refusal_on(&server.url("127.0.0.1", "sslmode=disable"));
    assert!(plain.contains("no encryption"), "{plain}");
    let unknown = refusal_on(&server.url("127.0.0.1", "sslmode=allow"));
    assert!(unknown.contains("sslmode `allow`"), "{unknown}");
}
