//! Per-actor options and socket actors set over `PUT /v1/actors/{name}` with JSON
//! (and changed one at a time with `PATCH`): applied at once, kept across a restart,
//! and refused with a reason when wrong.

use crate::support::{NodeProcess, Runtime, guest, single_error};
use serde_json::json;

fn start(data_dir: &str) -> NodeProcess {
    NodeProcess::start(&["--serve", "echo,env,spin,route", "--data-dir", data_dir])
}

#[tokio::test]
async fn options_apply_at_once_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let mut node = start(data_dir);

    let (status, spin) = node.put_json("spin", json!({"timeout": "300ms"})).await;
    assert_eq!(
        (status, spin["timeout_ms"].clone()),
        (200, json!(300)),
        "{spin}"
    );
    let id = node.submit(&["spin"], json!({"for_ms": 3000})).await;
    let view = node.outcome(&id).await;
    assert_eq!(single_error(&view)["details"]["type"], "timeout", "{view}");

    let (status, env) = node
        .put_json("env", json!({"env": {"MODEL": "small"}}))
        .await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["env"], json!(["MODEL"]), "names only: {env}");
    let id = node.submit(&["env"], json!({"name": "MODEL"})).await;
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"name": "MODEL", "value": "small"}])
    );

    let (status, _) = node
        .put_json("route", json!({"handler_mode": "payload"}))
        .await;
    assert_eq!(status, 200);
    let id = node.submit(&["route"], json!({"append": "echo"})).await;
    let view = node.outcome(&id).await;
    assert_eq!(
        single_error(&view)["details"]["type"],
        "handler_mode",
        "{view}"
    );

    let (status, echo) = node.put_json("echo", json!({"concurrency": 3})).await;
    assert_eq!(
        (status, echo["concurrency"].clone()),
        (200, json!(3)),
        "{echo}"
    );
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(node.submit(&["echo"], json!({"n": n})).await);
    }
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(node.outcome(id).await["results"], json!([{"n": n}]));
    }

    assert!(node.terminate().success());
    let node = start(data_dir);
    let (_, spin) = node.get("/v1/actors/spin").await;
    assert_eq!(spin["timeout_ms"], 300, "{spin}");
    let (_, route) = node.get("/v1/actors/route").await;
    assert_eq!(route["handler_mode"], "payload", "{route}");
    let (_, echo) = node.get("/v1/actors/echo").await;
    assert_eq!(echo["concurrency"], 3, "{echo}");
    let id = node.submit(&["env"], json!({"name": "MODEL"})).await;
    assert_eq!(
        node.outcome(&id).await["results"][0]["value"],
        "small",
        "the environment was not restored"
    );
}

#[tokio::test]
async fn wrong_options_are_refused_with_the_reason() {
    let node = NodeProcess::start(&["--serve", "echo"]);
    let cases = [
        ("echo", json!({"timeout": "soon"}), 400, "timeout"),
        ("echo", json!({"concurrency": 0}), 400, "concurrency"),
        ("echo", json!({"memory_limit": "lots"}), 400, "memory_limit"),
        ("echo", json!({"handler_mode": "sideways"}), 400, "sideways"),
        ("echo", json!({"bogus": 1}), 400, "bogus"),
        ("echo", json!({"socket": "/tmp/x.sock"}), 400, "socket"),
        (
            "nobody",
            json!({"timeout": "1s"}),
            404,
            "upload its component first",
        ),
        ("Bad_Name", json!({"timeout": "1s"}), 400, "invalid"),
        (
            "s",
            json!({"kind": "socket", "socket": "relative.sock"}),
            400,
            "absolute",
        ),
    ];
    for (name, body, expected, words) in cases {
        let (status, answer) = node.put_json(name, body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap_or("").contains(words),
            "{body}: {answer}"
        );
    }
    let id = node.submit(&["echo"], json!("still serving")).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

#[tokio::test]
async fn a_patch_changes_what_it_names_and_keeps_the_rest() {
    let node = NodeProcess::start(&["--serve", "echo"]);
    let (status, echo) = node
        .put_json(
            "echo",
            json!({"concurrency": 64, "timeout": "2s", "env": {"A": "1", "B": "2"},
                   "allowed_outbound_hosts": ["https://api.example.com"]}),
        )
        .await;
    assert_eq!(status, 200, "{echo}");
    let (status, echo) = node.patch_json("echo", json!({"concurrency": 1000})).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["concurrency"], 1000);
    assert_eq!(echo["timeout_ms"], 2000, "kept: {echo}");
    assert_eq!(echo["env"], json!(["A", "B"]), "kept: {echo}");
    assert_eq!(
        echo["allowed_outbound_hosts"],
        json!(["https://api.example.com"]),
        "kept: {echo}"
    );
    let (status, echo) = node
        .patch_json(
            "echo",
            json!({"allowed_outbound_hosts": ["http://127.0.0.1:*"], "env": {"B": null}, "timeout": null}),
        )
        .await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["concurrency"], 1000, "kept: {echo}");
    assert_eq!(
        echo["allowed_outbound_hosts"],
        json!(["http://127.0.0.1:*"])
    );
    assert_eq!(echo["env"], json!(["A"]), "B removed, A kept");
    assert_eq!(echo["timeout_ms"], 30_000, "null: the node's default");
    // A patch is checked as a whole, and a wrong one changes nothing.
    let (status, error) = node.patch_json("echo", json!({"concurrency": 0})).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(node.get("/v1/actors/echo").await.1["concurrency"], 1000);
    let (status, _) = node.patch_json("nobody", json!({"concurrency": 2})).await;
    assert_eq!(status, 404);
    // PUT still replaces.
    let (_, echo) = node.put_json("echo", json!({"timeout": "5s"})).await;
    assert_eq!(echo["timeout_ms"], 5000);
    assert_ne!(
        echo["concurrency"], 1000,
        "a PUT forgets what it does not give"
    );
}

#[tokio::test]
async fn a_socket_actor_registered_over_the_api_serves_and_survives_a_restart() {
    let runtime = Runtime::start("upper", "payload", &[]);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let socket = runtime.socket().display().to_string();
    let mut node = NodeProcess::start(&["--serve", "none", "--data-dir", data_dir]);
    let (status, actor) = node
        .put_json(
            "py-upper",
            json!({"kind": "socket", "socket": socket, "timeout": "5s"}),
        )
        .await;
    assert_eq!(status, 200, "{actor}");
    // Asya's runtime serves one call at a time: so does a socket actor by default,
    // whatever the node's --concurrency, and its listing says so.
    assert_eq!(
        (&actor["connections"], &actor["concurrency"]),
        (&json!(1), &json!(1)),
        "{actor}"
    );
    assert!(
        actor.get("handler_mode").is_none(),
        "its runtime decides: {actor}"
    );
    assert_eq!(
        (actor["kind"].clone(), actor["socket"].clone()),
        (json!("socket"), json!(socket))
    );
    let id = node.submit(&["py-upper"], json!({"text": "hi"})).await;
    assert_eq!(node.outcome(&id).await["results"], json!([{"text": "HI"}]));

    let (status, _) = node.upload("py-upper", guest("echo")).await;
    assert_eq!(status, 409, "a component over a socket actor");

    assert!(node.terminate().success());
    let mut node = NodeProcess::start(&["--serve", "none", "--data-dir", data_dir]);
    let (status, actor) = node.get("/v1/actors/py-upper").await;
    assert_eq!(
        (status, actor["kind"].clone()),
        (200, json!("socket")),
        "{actor}"
    );
    let id = node.submit(&["py-upper"], json!({"text": "again"})).await;
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"text": "AGAIN"}])
    );

    let removed = reqwest::Client::new()
        .delete(format!("{}/v1/actors/py-upper", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status().as_u16(), 204);
    assert!(node.terminate().success());
    let node = NodeProcess::start(&["--serve", "none", "--data-dir", data_dir]);
    assert_eq!(node.get("/v1/actors/py-upper").await.0, 404);
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let node = NodeProcess::start(&["--serve", "echo"]);
    let (status, doc) = node.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let put = &doc["paths"]["/v1/actors/{name}"]["put"];
    assert!(put["requestBody"]["content"]["application/wasm"].is_object());
    assert!(put["requestBody"]["content"]["application/json"].is_object());
    assert!(doc["paths"]["/v1/envelopes"]["post"].is_object());
    let spec = &doc["components"]["schemas"]["ActorSpec"]["properties"];
    for field in [
        "kind",
        "socket",
        "timeout",
        "memory_limit",
        "concurrency",
        "env",
        "handler_mode",
    ] {
        assert!(
            spec[field].is_object(),
            "ActorSpec.{field} is not documented"
        );
    }
}
