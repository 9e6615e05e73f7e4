//! Deploying components over HTTP: upload, hot swap under traffic, restart, removal,
//! and uploads that must be refused.

use crate::support::{NodeProcess, guest, single_error, tally_swap};
use serde_json::{Value, json};
use std::path::PathBuf;

#[tokio::test]
async fn an_uploaded_component_serves_and_the_same_bytes_make_no_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&[
        "--serve",
        "none",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    for example in [
        "echo", "upper", "split", "drop", "fail", "leak", "grep", "env", "trap", "spin", "hog",
        "route",
    ] {
        let name = format!("my-{example}");
        let (status, body) = node.upload(&name, guest(example)).await;
        assert_eq!(status, 201, "{example}: {body}");
        assert_eq!(body["version"], 1);
        assert_eq!(body["digest"].as_str().unwrap().len(), 64);
    }
    let id = node
        .submit(
            &["my-upper", "my-split", "my-echo"],
            json!({"text": "up loaded"}),
        )
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(
        view["results"],
        json!([{"word": "UP", "index": 0}, {"word": "LOADED", "index": 1}])
    );
    let id = node
        .submit(
            &["my-grep"],
            json!({"pattern": r"^\d+ (ok|done)$", "text": "1 ok\n2 failed\n3 done"}),
        )
        .await;
    assert_eq!(
        node.outcome(&id).await["results"][0]["lines"],
        json!(["1 ok", "3 done"])
    );
    let id = node.submit(&["my-env"], json!({"name": "HOME"})).await;
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"name": "HOME", "value": null}]),
        "the host's environment leaked into the guest"
    );
    let id = node.submit(&["my-fail"], json!({})).await;
    assert_eq!(node.outcome(&id).await["status"], "failed");
    let id = node.submit(&["my-drop"], json!({"x": 1})).await;
    assert_eq!(node.outcome(&id).await["results"], json!([{"x": 1}]));
    for _ in 0..2 {
        let id = node.submit(&["my-leak"], json!({})).await;
        assert_eq!(
            node.outcome(&id).await["results"],
            json!([{"calls": 1}]),
            "state leaked between messages"
        );
    }
    let id = node.submit(&["my-spin"], json!({"for_ms": 5})).await;
    assert_eq!(node.outcome(&id).await["results"], json!([{"for_ms": 5}]));
    let id = node
        .submit(&["my-route"], json!({"append": "my-echo"}))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(
        view["ended"][0]["envelope"]["route"]["actors"],
        json!(["my-route", "my-echo"]),
        "{view}"
    );
    let id = node.submit(&["my-trap"], json!({})).await;
    assert_eq!(
        single_error(&node.outcome(&id).await)["details"]["type"],
        "trap"
    );
    let limited = reqwest::Client::new()
        .put(format!("{}/v1/actors/my-hog", node.base))
        .json(&json!({"memory_limit": "16MiB"}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status().as_u16(), 200);
    let id = node.submit(&["my-hog"], json!({})).await;
    assert_eq!(
        single_error(&node.outcome(&id).await)["details"]["type"],
        "resource_limit"
    );
    let (status, body) = node.upload("my-upper", guest("upper")).await;
    assert_eq!(
        (status, body["version"].clone()),
        (200, json!(1)),
        "same bytes: {body}"
    );
    let (_, actor) = node.get("/v1/actors/my-upper").await;
    assert_eq!(actor["versions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_hot_swap_under_traffic_loses_nothing_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let mut node = NodeProcess::start(&["--serve", "none", "--data-dir", data_dir]);
    assert_eq!(node.upload("swap", guest("echo")).await.0, 201);
    let total = 2000;
    let mut ids = Vec::with_capacity(total);
    for n in 0..total {
        if n == total / 2 {
            let (status, body) = node.upload("swap", guest("upper")).await;
            assert_eq!((status, body["version"].clone()), (201, json!(2)), "{body}");
        }
        ids.push(
            node.submit(&["swap"], json!({"text": format!("m{n}")}))
                .await,
        );
    }
    let (v1, v2) = tally_swap(&node, &ids).await;
    assert_eq!(v1 + v2, total);
    assert!(v1 >= total / 2 && v2 > 0, "v1 {v1}, v2 {v2}");

    assert!(node.terminate().success());
    let node = NodeProcess::start(&["--serve", "none", "--data-dir", data_dir]);
    let loads = |result: &'static str| [("result", result)];
    assert!(
        node.metric("wasya_compile_cache_total", &loads("hit"))
            .await
            >= 1.0,
        "not restored from the compile cache"
    );
    assert_eq!(
        node.metric("wasya_compile_cache_total", &loads("miss"))
            .await,
        0.0,
        "a recorded version was compiled again"
    );
    let (_, actor) = node.get("/v1/actors/swap").await;
    assert_eq!(actor["versions"].as_array().unwrap().len(), 2, "{actor}");
    let id = node.submit(&["swap"], json!({"text": "again"})).await;
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"text": "AGAIN"}])
    );
}

#[tokio::test]
async fn bad_uploads_are_refused_and_the_node_serves_on() {
    let node = NodeProcess::start(&["--max-body", "1MiB"]);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty", vec![], 400, "empty"),
        (
            "random",
            b"these are not the bytes you are looking for".to_vec(),
            400,
            "not WebAssembly",
        ),
        (
            "core",
            b"\0asm\x01\0\0\0".to_vec(),
            400,
            "core WebAssembly module",
        ),
        // A valid component that exports nothing: not the wasya:actor world.
        (
            "other-world",
            b"\0asm\x0d\0\x01\0".to_vec(),
            400,
            "wasya:actor world",
        ),
        ("huge", vec![0u8; 2 << 20], 413, ""),
        ("Bad_Name", guest("echo"), 400, "invalid"),
    ];
    for (name, bytes, status, words) in cases {
        let (answered, body) = node.upload(name, bytes).await;
        assert_eq!(answered, status, "{name}: {body}");
        assert!(body.to_string().contains(words), "{name}: {body}");
    }
    let response = reqwest::Client::new()
        .put(format!("{}/v1/actors/plain", node.base))
        .body(guest("echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let id = node.submit(&["echo"], json!("still serving")).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

#[tokio::test]
async fn a_removed_actor_stops_consuming_and_keeps_its_queue_for_a_redeploy() {
    let node = NodeProcess::start(&["--actor-concurrency", "spin=1"]);
    // One spinner in flight, two queued behind it when the actor goes.
    let ids = [
        node.submit(&["spin"], json!({"for_ms": 300})).await,
        node.submit(&["spin"], json!({"for_ms": 1})).await,
        node.submit(&["spin"], json!({"for_ms": 1})).await,
    ];
    assert!(
        node.wait_for_log(|line| line.contains("spin handling message"))
            .await
    );
    assert_eq!(node.delete("/v1/actors/spin").await, 204);
    assert_eq!(node.get("/v1/actors/spin").await.0, 404);
    let (status, _) = node
        .post_json("/v1/envelopes", &json!({"route": ["spin"], "payload": {}}))
        .await;
    assert_eq!(status, 404, "a removed actor takes no new envelopes");
    assert_eq!(
        node.outcome(&ids[0]).await["status"],
        "succeeded",
        "the call in flight finished"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for id in &ids[1..] {
        assert_eq!(
            node.get(&format!("/v1/envelopes/{id}")).await.1["status"],
            "pending",
            "the queued messages stay"
        );
    }
    let (status, _) = node.upload("spin", guest("spin")).await;
    assert_eq!(status, 201);
    for id in &ids[1..] {
        assert_eq!(node.outcome(id).await["status"], "succeeded");
    }
}

fn wasya(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(args)
        .output()
        .expect("wasya runs")
}

#[tokio::test]
async fn the_cli_deploys_lists_shows_and_removes() {
    let node = NodeProcess::start(&["--serve", "none"]);
    let base = node.base.clone();
    let file = PathBuf::from(env!("WASYA_GUESTS_DIR")).join("upper.wasm");
    let file = file.to_str().unwrap().to_owned();
    let outputs = tokio::task::spawn_blocking(move || {
        [
            wasya(&["deploy", "--node", &base, "cli-upper", &file]),
            wasya(&[
                "configure",
                "--node",
                &base,
                "cli-upper",
                "--timeout",
                "1500ms",
                "--concurrency",
                "2",
                "--env",
                "MODEL=small",
            ]),
            wasya(&["actors", "--node", &base]),
            wasya(&["actor", "--node", &base, "cli-upper"]),
            wasya(&["actors", "--node", &base, "-o", "json"]),
            wasya(&["rm", "--node", &base, "cli-upper"]),
            wasya(&["actor", "--node", &base, "cli-upper"]),
            wasya(&["deploy", "--node", &base, "cli-bad", "/nonexistent.wasm"]),
        ]
    })
    .await
    .unwrap();
    let stdout = |i: usize| String::from_utf8_lossy(&outputs[i].stdout).into_owned();
    let stderr = |i: usize| String::from_utf8_lossy(&outputs[i].stderr).into_owned();
    assert!(outputs[0].status.success(), "{}", stderr(0));
    assert!(stdout(0).starts_with("cli-upper v1 "), "{}", stdout(0));
    assert!(outputs[1].status.success(), "{}", stderr(1));
    let configured: Value = serde_json::from_str(&stdout(1)).unwrap();
    assert_eq!(
        (
            &configured["timeout_ms"],
            &configured["concurrency"],
            &configured["env"]
        ),
        (&json!(1500), &json!(2), &json!(["MODEL"])),
        "{configured}"
    );
    let table = stdout(2);
    let row = table
        .lines()
        .find(|line| line.starts_with("cli-upper"))
        .unwrap_or_else(|| panic!("no row for cli-upper: {table}"));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&columns[1..5], ["wasm", "1", "2", "1.5s"], "{table}");
    let shown: Value = serde_json::from_str(&stdout(3)).unwrap();
    assert_eq!(shown["versions"][0]["version"], 1);
    let listed: Value = serde_json::from_str(&stdout(4)).unwrap();
    assert_eq!(listed[0]["name"], "cli-upper", "{listed}");
    assert_eq!(listed[0]["concurrency"], 2, "{listed}");
    assert!(outputs[5].status.success(), "{}", stderr(5));
    assert!(!outputs[6].status.success());
    assert_eq!(stderr(6).lines().count(), 1, "{}", stderr(6));
    assert!(stderr(6).contains("404"), "{}", stderr(6));
    assert!(!outputs[7].status.success());
    assert!(
        stderr(7).contains("cannot read /nonexistent.wasm"),
        "{}",
        stderr(7)
    );
}

#[tokio::test]
async fn the_cli_configure_keeps_what_it_does_not_name() {
    let node = NodeProcess::start(&["--serve", "echo"]);
    let base = node.base.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        let configure = |more: &[&str]| {
            let mut args = vec!["configure", "--node", base.as_str(), "echo"];
            args.extend_from_slice(more);
            wasya(&args)
        };
        [
            configure(&["--allow-outbound", "http://127.0.0.1:*", "--timeout", "3s"]),
            configure(&["--concurrency", "1000"]),
            configure(&["--allow-outbound", "https://api.example.com"]),
            configure(&["--unset", "timeout"]),
            configure(&["--reset", "--timeout", "4s"]),
        ]
    })
    .await
    .unwrap();
    let shown: Vec<Value> = outputs
        .iter()
        .map(|output| {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect();
    let fields = |actor: &Value| {
        (
            actor["allowed_outbound_hosts"].clone(),
            actor["timeout_ms"].clone(),
            actor["concurrency"].clone(),
        )
    };
    let default_concurrency = shown[4]["concurrency"].clone();
    assert_ne!(default_concurrency, json!(1000));
    assert_eq!(
        fields(&shown[1]),
        (json!(["http://127.0.0.1:*"]), json!(3000), json!(1000)),
        "--concurrency kept the grant and the timeout"
    );
    assert_eq!(
        fields(&shown[2]),
        (json!(["https://api.example.com"]), json!(3000), json!(1000)),
        "--allow-outbound replaced the grant and kept the concurrency"
    );
    assert_eq!(
        fields(&shown[3]),
        (
            json!(["https://api.example.com"]),
            json!(30_000),
            json!(1000)
        ),
        "--unset timeout: the node's default"
    );
    assert_eq!(
        fields(&shown[4]),
        (Value::Null, json!(4000), default_concurrency),
        "--reset forgets what it does not give"
    );
}

#[tokio::test]
async fn mutating_endpoints_need_the_token() {
    let node = NodeProcess::start_with(&[], &[("WASYA_TOKEN", "s3cret-token")]);
    let put = |token: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .put(format!("{}/v1/actors/guarded", node.base))
            .header("content-type", "application/wasm")
            .body(guest("echo"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(put(None).await.unwrap().status(), 401);
    assert_eq!(put(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(put(Some("s3cret-token")).await.unwrap().status(), 201);
    let (status, _) = node
        .post_json("/v1/envelopes", &json!({"route": ["guarded"]}))
        .await;
    assert_eq!(status, 401, "submitting needs the token too");
    assert_eq!(
        node.get("/v1/actors/guarded").await.0,
        200,
        "reading does not"
    );
    let base = node.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
            .args([
                "send",
                "--node",
                &base,
                "--route",
                "guarded",
                "--payload",
                "1",
                "--wait",
            ])
            .env("WASYA_TOKEN", "s3cret-token")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_public_address_without_a_token_is_refused() {
    let output = wasya(&["up", "--listen", "0.0.0.0:0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{stderr}"
    );
}

#[tokio::test]
async fn send_exit_codes_tell_how_it_ended() {
    let node = NodeProcess::start(&["--actor-timeout", "spin=10m"]);
    let base = node.base.clone();
    let payload = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(payload.path(), r#"{"text": "from a file"}"#).unwrap();
    let file = format!("@{}", payload.path().display());
    let codes = tokio::task::spawn_blocking(move || {
        let send = |route: &str, payload: &str, node: &str| {
            let output = wasya(&[
                "send",
                "--node",
                node,
                "--route",
                route,
                "--payload",
                payload,
                "--wait",
                "--timeout",
                "2s",
            ]);
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            )
        };
        [
            send("upper", &file, &base),
            send("fail", "{}", &base),
            send("spin", "{}", &base),
            send("echo", "{}", "http://127.0.0.1:9"),
        ]
    })
    .await
    .unwrap();
    assert_eq!(codes[0].0, Some(0), "succeeded");
    assert!(
        codes[0].1.contains("FROM A FILE"),
        "the payload came from the file: {}",
        codes[0].1
    );
    assert_eq!(codes[1].0, Some(3), "failed");
    assert_eq!(codes[2].0, Some(4), "still pending");
    assert_eq!(codes[3].0, Some(5), "unreachable");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = wasya(&["completions", shell]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(
            script.contains("wasya") && script.contains("sidecar") && script.contains("payload"),
            "{shell}: {script}"
        );
    }
}

#[tokio::test]
async fn the_cli_reaches_a_node_behind_tls() {
    let node = NodeProcess::start(&[]);
    let target = node.base.trim_start_matches("http://").to_owned();
    let proxy = crate::support::web::TlsProxy::to(target).await;
    let (url, ca) = (proxy.url(), proxy.ca_file.clone());
    let outputs = tokio::task::spawn_blocking(move || {
        let ca = ca.to_str().unwrap().to_owned();
        let run = |args: &[&str], env: &[(&str, &str)]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
                .args(args)
                .env_remove("SSL_CERT_FILE")
                .envs(env.iter().copied())
                .output()
                .expect("wasya runs")
        };
        [
            run(&["actors", "--node", &url], &[]),
            run(&["actors", "--node", &url, "--ca-file", &ca], &[]),
            run(
                &["actors", "--node", &url],
                &[("SSL_CERT_FILE", ca.as_str())],
            ),
            run(
                &[
                    "send",
                    "--node",
                    &url,
                    "--ca-file",
                    &ca,
                    "--route",
                    "upper",
                    "--payload",
                    r#"{"text": "tls"}"#,
                    "--wait",
                ],
                &[],
            ),
        ]
    })
    .await
    .unwrap();
    let stderr = |i: usize| String::from_utf8_lossy(&outputs[i].stderr).into_owned();
    let stdout = |i: usize| String::from_utf8_lossy(&outputs[i].stdout).into_owned();
    assert_eq!(
        outputs[0].status.code(),
        Some(5),
        "an unknown CA is refused: {}",
        stderr(0)
    );
    // It says why (rustls' reason), and how to trust the node.
    assert!(
        stderr(0).contains("invalid peer certificate: ") && stderr(0).contains("--ca-file"),
        "{}",
        stderr(0)
    );
    assert_eq!(
        stderr(0).matches("invalid peer certificate").count(),
        1,
        "the cause once: {}",
        stderr(0)
    );
    assert!(outputs[1].status.success(), "--ca-file: {}", stderr(1));
    assert!(stdout(1).contains("echo"), "{}", stdout(1));
    assert!(outputs[2].status.success(), "SSL_CERT_FILE: {}", stderr(2));
    assert!(outputs[3].status.success(), "send over TLS: {}", stderr(3));
    assert!(stdout(3).contains("TLS"), "{}", stdout(3));
}

/// Runs `wasya up` with `filter` in `RUST_LOG` (and no `WASYA_LOG`) until it listens;
/// the JSON log lines it wrote by then.
fn log_lines_under_rust_log(filter: &str) -> Vec<Value> {
    crate::support::up_log_until(
        &["--ephemeral"],
        &[("RUST_LOG", filter)],
        &["WASYA_LOG"],
        |line| line.contains("\"HTTP API listening\""),
    )
    .iter()
    .map(|line| {
        serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not one JSON object per line ({error}): {line}"))
    })
    .collect()
}

#[test]
fn rust_log_filters_and_json_lines_are_flat() {
    // The node module and its submodules (`wasya::node::assemble`, ...).
    let in_node = |event: &Value| {
        event["target"]
            .as_str()
            .is_some_and(|target| target == "wasya::node" || target.starts_with("wasya::node::"))
    };
    // Everything at info: the bundled actors' loading is logged, flat.
    let all = log_lines_under_rust_log("info");
    let loaded = all
        .iter()
        .find(|event| event["message"] == "actor loaded")
        .unwrap_or_else(|| panic!("no actor loaded at info: {all:?}"));
    assert_eq!(loaded["level"], "INFO", "{loaded}");
    assert!(
        loaded["actor"].is_string() && loaded["timestamp"].is_string(),
        "fields at the top: {loaded}"
    );
    assert!(loaded.get("fields").is_none(), "nested fields: {loaded}");
    assert!(
        all.iter()
            .any(|event| event["level"] == "INFO" && !in_node(event)),
        "nothing at info outside wasya::node for the filter to remove: {all:?}"
    );
    // Warnings only, but the node module's listening line kept by a directive.
    let filtered = log_lines_under_rust_log("warn,wasya::node=info");
    assert!(
        filtered
            .iter()
            .any(|event| event["message"] == "HTTP API listening"),
        "{filtered:?}"
    );
    let leaked: Vec<&Value> = filtered
        .iter()
        .filter(|event| event["level"] == "INFO" && !in_node(event))
        .collect();
    assert!(
        leaked.is_empty(),
        "info lines RUST_LOG filtered out: {leaked:?}"
    );
}

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["up", "--ephemeral", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("WASYA_LOG_FORMAT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let done = line.contains("HTTP API listening");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|line| line.contains("HTTP API listening")),
        "{lines:?}"
    );
    let coloured: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains('\u{1b}'))
        .collect();
    assert!(coloured.is_empty(), "escape codes in a pipe: {coloured:?}");
}

#[test]
fn build_and_new_refuse_a_name_that_is_no_actor_name_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("My_Actor.wasm");
    // No toolchain is looked for: the name is checked first.
    let built = std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["build", "--python", "handlers.shout", "-o"])
        .arg(&out)
        .env("WASYA_COMPONENTIZE_PY", "/nonexistent/componentize-py")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert_eq!(built.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("actor name `My_Actor` is invalid: use 1-63 of [a-z0-9-]"),
        "{stderr}"
    );
    assert!(!out.exists());
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["new", "Bad_Name", "--lang", "python"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&made.stderr);
    assert_eq!(made.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`Bad_Name` is invalid"), "{stderr}");
    assert!(!dir.path().join("Bad_Name").exists());
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["build", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("WASYA_COMPONENTIZE_PY") && help.contains("WASYA_COMPONENTIZE_JS"),
        "{help}"
    );
}

/// `bytes` with a custom section of `n` appended: the same actor, another digest.
fn variant(bytes: &[u8], n: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    // id 0, size, name "variant" (7 bytes), then one byte of data.
    out.extend_from_slice(&[0, 9, 7]);
    out.extend_from_slice(b"variant");
    out.push(n);
    out
}

fn components_in(data: &std::path::Path) -> usize {
    std::fs::read_dir(data.join("deployments/components"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn only_the_last_versions_are_kept_and_a_removal_deletes_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().display().to_string();
    let node = NodeProcess::start(&[
        "--serve",
        "none",
        "--data-dir",
        &data_arg,
        "--keep-versions",
        "3",
    ]);
    let echo = guest("echo");
    for n in 1..=10u8 {
        let (status, deployed) = node.upload("swapped", variant(&echo, n)).await;
        assert_eq!(status, 201, "{deployed}");
        assert_eq!(deployed["version"], n);
    }
    let (_, actor) = node.get("/v1/actors/swapped").await;
    let versions: Vec<u64> = actor["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [8, 9, 10], "{actor}");
    assert_eq!(
        components_in(data.path()),
        3,
        "the components of versions let go are gone"
    );
    let id = node.submit(&["swapped"], json!({"still": "served"})).await;
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"still": "served"}])
    );
    // A component another actor names stays when one of them goes.
    assert_eq!(node.upload("twin", variant(&echo, 10)).await.0, 201);
    assert_eq!(node.delete("/v1/actors/swapped").await, 204);
    assert_eq!(components_in(data.path()), 1, "twin's component stays");
    assert_eq!(node.delete("/v1/actors/twin").await, 204);
    assert_eq!(components_in(data.path()), 0);
}

#[tokio::test]
async fn a_node_keeps_at_most_its_max_actors() {
    let node = NodeProcess::start(&["--serve", "echo", "--max-actors", "3"]);
    assert_eq!(node.upload("second", guest("upper")).await.0, 201);
    assert_eq!(node.upload("third", guest("upper")).await.0, 201);
    let (status, answer) = node.upload("fourth", guest("upper")).await;
    assert_eq!(
        (status, answer["error"].clone()),
        (409, json!("too_many_actors")),
        "{answer}"
    );
    assert!(
        answer["message"].as_str().unwrap().contains("--max-actors"),
        "{answer}"
    );
    // A new version of one it has is no new actor.
    assert_eq!(node.upload("third", guest("echo")).await.0, 201);
    assert_eq!(node.delete("/v1/actors/second").await, 204);
    assert_eq!(node.upload("fourth", guest("upper")).await.0, 201);
}

/// A truncated record and a record whose component is gone do not stop the start:
/// the other actors are served, the broken ones reported, their files left as they are.
#[tokio::test]
async fn a_broken_record_is_reported_and_the_others_served() {
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().display().to_string();
    let flags = ["--serve", "none", "--data-dir", data_arg.as_str()];
    let mut node = NodeProcess::start(&flags);
    for name in ["kept", "cut-short", "lost-bytes"] {
        let bytes = variant(&guest("echo"), name.len() as u8);
        assert_eq!(node.upload(name, bytes).await.0, 201, "{name}");
    }
    let (_, lost) = node.get("/v1/actors/lost-bytes").await;
    assert!(node.terminate().success());
    let deployments = data.path().join("deployments");
    let cut = deployments.join("actors/cut-short.json");
    let text = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let truncated = std::fs::read(&cut).unwrap();
    let digest = lost["digest"].as_str().unwrap();
    std::fs::remove_file(deployments.join(format!("components/{digest}.wasm"))).unwrap();

    let node = NodeProcess::start(&flags);
    let id = node.submit(&["kept"], json!({"still": "here"})).await;
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"still": "here"}])
    );
    let (status, ready) = node.get_text("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert!(
        ready.contains("broken deployment records")
            && ready.contains("cut-short.json")
            && ready.contains("lost-bytes"),
        "{ready}"
    );
    assert!(
        node.wait_for_log(|line| line.contains("cut-short.json") && line.contains("WARN"))
            .await
    );
    assert_eq!(std::fs::read(&cut).unwrap(), truncated, "left as it was");
    assert_eq!(node.get("/v1/actors/lost-bytes").await.0, 404);
}
