//! Pipelines as tools: a real MCP client (the official Python SDK) against a node
//! started with `--tools FILE`, and Asya's `POST /tools/call`.

use crate::support::python::{self, run};
use crate::support::{Kind, NodeProcess};
use serde_json::{Value, json};
use std::path::PathBuf;

on_both_transports!(an_mcp_client_lists_and_calls_pipeline_tools);

const TOOLS: &str = r#"
defaults:
  timeout: 60
tools:
- name: shout
  description: Upper-cases a text through a two-actor pipeline
  parameters:
    text: {type: string, description: What to shout, required: true}
    suffix: {type: string, default: "!"}
  route: [echo, upper]
- name: broken
  description: Always fails
  parameters:
    reason: {type: string, default: on purpose}
  route: [fail]
- name: endless
  description: Runs longer than its timeout
  route: [spin]
  timeout: 1
  metadata: {category: slow}
"#;

fn tools_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, TOOLS).expect("the tools file");
    (dir, path)
}

async fn client(python: &PathBuf, node: &NodeProcess, args: &[&str], token: Option<&str>) -> Value {
    let url = format!("{}/mcp", node.base);
    let mut all = vec![url.as_str()];
    all.extend_from_slice(args);
    let env: Vec<(&str, &str)> = token
        .map(|token| ("MCP_TOKEN", token))
        .into_iter()
        .collect();
    let (ok, stdout, stderr) = run(python, "mcp_client.py", &all, &env).await;
    assert!(ok, "the MCP client failed: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

async fn an_mcp_client_lists_and_calls_pipeline_tools(kind: Kind) {
    let Some(python) = python::python() else {
        return;
    };
    let (_dir, tools) = tools_file();
    let tools = tools.display().to_string();
    let node = NodeProcess::start_on(kind, &["--tools", &tools, "--actor-timeout", "spin=5s"]);

    let listed = client(&python, &node, &["list"], None).await;
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert_eq!(names, vec!["broken", "endless", "shout"]);
    let shout = &listed["tools"][2];
    assert_eq!(
        shout["description"],
        "Upper-cases a text through a two-actor pipeline"
    );
    assert_eq!(shout["input_schema"]["required"], json!(["text"]));
    assert_eq!(
        shout["input_schema"]["properties"]["suffix"]["default"],
        "!"
    );

    let called = client(
        &python,
        &node,
        &["call", "shout", r#"{"text": "hi"}"#],
        None,
    )
    .await;
    assert_eq!(called["is_error"], false, "{called}");
    let result: Value =
        serde_json::from_str(called["text"][0].as_str().expect("text")).expect("JSON");
    assert_eq!(result, json!({"text": "HI", "suffix": "!"}));
    let progress: Vec<f64> = called["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .filter_map(|note| note["progress"].as_f64())
        .collect();
    assert!(progress.len() >= 2, "progress notifications: {called}");
    assert!(
        progress.windows(2).all(|pair| pair[0] <= pair[1]),
        "{progress:?}"
    );
    assert_eq!(called["progress"][0]["total"], 100.0);

    // A failing pipeline is an error result that says why, not a transport error.
    let failed = client(&python, &node, &["call", "broken", "{}"], None).await;
    assert_eq!(failed["is_error"], true, "{failed}");
    let text = failed["text"][0].as_str().unwrap_or_default();
    assert!(
        text.contains("fail always fails: on purpose") && text.contains("fail"),
        "{text}"
    );

    let refused = client(&python, &node, &["call", "shout", "{}"], None).await;
    assert_eq!(refused["is_error"], true);
    assert_eq!(refused["text"][0], "missing required parameter: text");

    // Past the tool's timeout the call fails, as Asya's gateway fails it, wherever
    // its envelope is.
    let timed_out = client(&python, &node, &["call", "endless", "{}"], None).await;
    assert_eq!(timed_out["is_error"], true, "{timed_out}");
    assert_eq!(
        timed_out["text"][0], "the pipeline failed: envelope timed out",
        "{timed_out}"
    );
}

#[tokio::test]
async fn mcp_asks_for_the_token_and_asya_tools_call_answers_at_once() {
    let Some(python) = python::python() else {
        return;
    };
    let (_dir, tools) = tools_file();
    let tools = tools.display().to_string();
    let node = NodeProcess::start_with(&["--tools", &tools], &[("WASYA_TOKEN", "s3cret")]);
    let url = format!("{}/mcp", node.base);
    let (ok, _, _) = run(&python, "mcp_client.py", &[&url, "list"], &[]).await;
    assert!(!ok, "listed tools without the token");
    let listed = client(&python, &node, &["list"], Some("s3cret")).await;
    assert_eq!(listed["tools"].as_array().map(Vec::len), Some(3));

    let http = reqwest::Client::new();
    let call = |body: Value| {
        http.post(format!("{}/tools/call", node.base))
            .bearer_auth("s3cret")
            .json(&body)
            .send()
    };
    let response = call(json!({"name": "shout", "arguments": {"text": "asya"}}))
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.expect("JSON");
    let text: Value =
        serde_json::from_str(result["content"][0]["text"].as_str().expect("text")).expect("JSON");
    let id = text["envelope_id"].as_str().expect("an id").to_owned();
    assert_eq!(text["message"], "Envelope created successfully");
    assert_eq!(text["stream_url"], format!("/envelopes/{id}/stream"));
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"text": "ASYA", "suffix": "!"}])
    );
    let refused: Value = call(json!({"name": "shout", "arguments": {}}))
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(refused["isError"], true);
    let unknown = call(json!({"name": "nope"})).await.expect("answers");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_tools_file_with_a_mistake_stops_the_start() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, "tools:\n- name: a\n  route: missing\n").expect("written");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["up", "--listen", "127.0.0.1:0", "--tools"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no route named `missing`"), "{stderr}");
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// 20,000 `initialize` requests, as a client that never closes a session sends them:
/// past `--mcp-sessions` they answer 503, the sessions open stay at the cap, and the
/// node's memory does not follow the requests.
#[tokio::test]
async fn mcp_sessions_are_capped() {
    use futures::StreamExt;
    const REQUESTS: usize = 20_000;
    const CAP: usize = 500;
    let (_dir, tools) = tools_file();
    let tools = tools.display().to_string();
    let node = NodeProcess::start(&["--tools", &tools, "--mcp-sessions", &CAP.to_string()]);
    let http = reqwest::Client::new();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "flood", "version": "1"}}
    });
    let send = || {
        let request = http
            .post(format!("{}/mcp", node.base))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            status
        }
    };
    // The first sessions open; the node settles at its size with them.
    let first: Vec<u16> = futures::stream::iter(0..CAP)
        .map(|_| send())
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(first.iter().all(|status| *status == 200), "{first:?}");
    let settled = rss_kib(node.pid());
    let rest: Vec<u16> = futures::stream::iter(CAP..REQUESTS)
        .map(|_| send())
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(rest.iter().all(|status| *status == 503), "past the cap");
    let after = rss_kib(node.pid());
    assert!(
        after < settled + 64 * 1024,
        "memory followed the requests: {settled} KiB with the cap's sessions, {after} KiB after {REQUESTS}"
    );
    let metrics = node.get_text("/metrics").await.1;
    assert!(
        metrics.contains(&format!("wasya_mcp_sessions {CAP}")),
        "{}",
        metrics
            .lines()
            .filter(|line| line.contains("mcp_sessions"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A badly typed argument of 9 MB is not echoed back whole: the error quotes a few
/// hundred bytes of it, over Asya's `/tools/call` and over MCP alike.
#[tokio::test]
async fn a_huge_wrong_argument_is_not_echoed_whole() {
    let (_dir, tools) = tools_file();
    let tools = tools.display().to_string();
    let node = NodeProcess::start(&["--tools", &tools]);
    let huge: Vec<u32> = (0..1_500_000).collect();
    let http = reqwest::Client::new();
    let call = json!({"name": "shout", "arguments": {"text": huge}});
    assert!(call.to_string().len() > 9_000_000);
    let answer = http
        .post(format!("{}/tools/call", node.base))
        .json(&call)
        .send()
        .await
        .unwrap();
    let text = answer.text().await.unwrap();
    assert!(text.len() < 4096, "{} bytes back", text.len());
    assert!(
        text.contains("must be of type"),
        "it says what is wrong: {text}"
    );
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "big", "version": "1"}}
    });
    let opened = http
        .post(format!("{}/mcp", node.base))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = opened.bytes().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let _ = http
        .post(format!("{}/mcp", node.base))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&initialized)
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    // rmcp takes a smaller body than the node's own endpoints: 1 MB of it.
    let large: Vec<u32> = (0..150_000).collect();
    let request = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                         "params": {"name": "shout", "arguments": {"text": large}}});
    let answer = http
        .post(format!("{}/mcp", node.base))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&request)
        .send()
        .await
        .unwrap();
    let text = answer.text().await.unwrap();
    assert!(text.len() < 4096, "{} bytes back over MCP", text.len());
    assert!(
        text.contains("must be of type"),
        "the tool's own error: {text}"
    );
}
