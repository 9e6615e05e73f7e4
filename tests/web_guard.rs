//! What a web page may not do to a node: the `Host` and `Origin` rules, against the
//! real binary (the cross-site requests of a real page are in `ui`).

use crate::support::NodeProcess;
use serde_json::json;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn a_foreign_host_is_refused_everywhere() {
    let node = NodeProcess::start(&["--serve", "echo"]);
    let port = node.address().rsplit(':').next().unwrap().to_owned();
    let rebound = format!("attacker.example:{port}");
    let get = client()
        .get(format!("{}/v1/actors", node.base))
        .header("host", &rebound)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 403);
    let answer: serde_json::Value = get.json().await.unwrap();
    assert_eq!(answer["error"], "forbidden_host", "{answer}");
    // Registering a socket actor, widening a grant: refused, and nothing changed.
    for (name, body) in [
        ("evil", json!({"kind": "socket", "socket": "/run/x.sock"})),
        ("echo", json!({"allowed_outbound_hosts": ["*://*:*"]})),
    ] {
        let put = client()
            .put(format!("{}/v1/actors/{name}", node.base))
            .header("host", &rebound)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 403, "{name}");
    }
    assert_eq!(node.get("/v1/actors/evil").await.0, 404);
    let (_, echo) = node.get("/v1/actors/echo").await;
    assert!(echo.get("allowed_outbound_hosts").is_none(), "{echo}");
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let ok = client()
            .get(format!("{}/v1/actors", node.base))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn a_public_host_is_answered() {
    let node = NodeProcess::start(&["--serve", "echo", "--public-host", "wasya.example.com"]);
    let answered = |host: &'static str| {
        let request = client()
            .get(format!("{}/readyz", node.base))
            .header("host", host);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(answered("wasya.example.com").await, 200);
    assert_eq!(answered("wasya.example.com:443").await, 200);
    assert_eq!(answered("other.example.com").await, 403);
}

#[tokio::test]
async fn changes_are_json_and_from_this_origin_or_an_allowed_one() {
    let node = NodeProcess::start(&[
        "--serve",
        "echo",
        "--allow-origin",
        "https://ops.example.com",
    ]);
    let envelope = r#"{"id":"plain-1","route":{"actors":["echo"],"current":0},"payload":{}}"#;
    let publish = |content_type: &'static str, origin: Option<String>| {
        let mut request = client()
            .post(format!("{}/v1/queues/echo/messages", node.base))
            .header("content-type", content_type)
            .body(envelope);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // What a page sends with no preflight is refused, token or not.
    for simple in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        assert_eq!(publish(simple, None).await, 415, "{simple}");
    }
    assert_eq!(node.get("/v1/envelopes/plain-1").await.0, 404);
    // JSON from another site is refused; from this origin or an allowed one it passes.
    let origin = |text: &str| Some(text.to_owned());
    assert_eq!(
        publish("application/json", origin("http://localhost:18400")).await,
        403
    );
    assert_eq!(publish("application/json", origin("null")).await, 403);
    let own = format!("http://{}", node.address());
    assert_eq!(publish("application/json", Some(own)).await, 202);
    assert_eq!(
        publish("application/json", origin("https://ops.example.com")).await,
        202
    );
    assert_eq!(
        publish("application/json", None).await,
        202,
        "the CLI's way"
    );
    // Removing from another site: refused too.
    let removed = client()
        .delete(format!("{}/v1/actors/echo", node.base))
        .header("origin", "http://localhost:18400")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 403);
    assert_eq!(node.get("/v1/actors/echo").await.0, 200);
}
