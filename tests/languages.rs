//! Actors in Python and JavaScript: the handlers of `examples/python` and
//! `examples/js`, written as Asya's runtime takes them, built with `wasya build` (the
//! real componentize-py and componentize-js), deployed, and run through the routing
//! matrix; and projects made by `wasya new` in each language, which pass their own
//! tests, build and run.
//!
//! The toolchains come from `WASYA_COMPONENTIZE_PY` / `WASYA_COMPONENTIZE_JS` or
//! `PATH`. Where one is missing the test says so and passes, unless
//! `WASYA_REQUIRE_TOOLCHAINS` is set, as `.ci/run` does: there it fails.

use crate::support::web::WebServer;
use crate::support::{Kind, NodeProcess, single_error};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

on_both_transports!(
    python_handlers_run_as_asya_runs_them,
    js_handlers_run_as_asya_runs_them
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Js,
}

impl Lang {
    fn prefix(self) -> &'static str {
        match self {
            Lang::Python => "py",
            Lang::Js => "js",
        }
    }

    fn tool(self) -> (&'static str, &'static str) {
        match self {
            Lang::Python => ("WASYA_COMPONENTIZE_PY", "componentize-py"),
            Lang::Js => ("WASYA_COMPONENTIZE_JS", "componentize-js"),
        }
    }

    /// Whether the toolchain is there; a missing one fails the test under CI.
    fn available(self) -> bool {
        let (env, command) = self.tool();
        let found = std::env::var_os(env).is_some()
            || std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|dir| dir.join(command).is_file())
            });
        if !found {
            assert!(
                std::env::var_os("WASYA_REQUIRE_TOOLCHAINS").is_none(),
                "{command} is not installed, and this run requires it (set {env} or put it on PATH)"
            );
            eprintln!("skipped: {command} is not installed (set {env} or put it on PATH)");
        }
        found
    }
}

/// The example actors: `(name, language, handler, mode)`.
const EXAMPLES: &[(&str, Lang, &str, &str)] = &[
    ("py-shout", Lang::Python, "handlers.shout", "payload"),
    ("py-words", Lang::Python, "handlers.words", "payload"),
    ("py-refuse", Lang::Python, "handlers.refuse", "payload"),
    (
        "py-greet",
        Lang::Python,
        "handlers.Greeter.greet",
        "payload",
    ),
    ("py-add-hop", Lang::Python, "handlers.add_hop", "envelope"),
    ("py-fetch", Lang::Python, "handlers.fetch_status", "payload"),
    (
        "py-fetch-both",
        Lang::Python,
        "handlers.fetch_both",
        "payload",
    ),
    ("py-wait-on", Lang::Python, "handlers.wait_on", "payload"),
    ("py-call-out", Lang::Python, "clients.call_out", "payload"),
    ("py-llm", Lang::Python, "llm.chat", "payload"),
    (
        "py-call-out-async",
        Lang::Python,
        "clients.call_out_async",
        "payload",
    ),
    ("js-shout", Lang::Js, "shout", "payload"),
    ("js-words", Lang::Js, "words", "payload"),
    ("js-refuse", Lang::Js, "refuse", "payload"),
    ("js-greet", Lang::Js, "greet", "payload"),
    ("js-add-hop", Lang::Js, "addHop", "envelope"),
    ("js-fetch", Lang::Js, "fetchStatus", "payload"),
];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn wasya(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("wasya runs")
}

/// Builds the examples of `lang` once per test run, two at a time; their components.
fn examples(lang: Lang) -> &'static BTreeMap<&'static str, Vec<u8>> {
    static BUILT: [OnceLock<BTreeMap<&'static str, Vec<u8>>>; 2] =
        [OnceLock::new(), OnceLock::new()];
    BUILT[lang as usize].get_or_init(|| {
        let out = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("an output directory");
        let out = out.path();
        let builds: Vec<_> = EXAMPLES
            .iter()
            .filter(|(_, of, _, _)| *of == lang)
            .collect();
        let mut built = BTreeMap::new();
        for pair in builds.chunks(2) {
            let running: Vec<_> = pair
                .iter()
                .map(|&&(name, lang, handler, mode)| {
                    let file = out.join(format!("{name}.wasm"));
                    let file_arg = file.display().to_string();
                    let source = match lang {
                        Lang::Python => repository().join("examples/python"),
                        Lang::Js => repository().join("examples/js"),
                    };
                    let handler = handler.to_owned();
                    let mode = mode.to_owned();
                    let thread = std::thread::spawn(move || {
                        let args: Vec<&str> = match lang {
                            Lang::Python => vec![
                                "build", "--python", &handler, "--path", ".", "--mode", &mode,
                                "-o", &file_arg,
                            ],
                            Lang::Js => vec![
                                "build",
                                "--js",
                                "handlers.js",
                                "--export",
                                &handler,
                                "--mode",
                                &mode,
                                "-o",
                                &file_arg,
                            ],
                        };
                        wasya(&args, &source)
                    });
                    (name, file, thread)
                })
                .collect();
            for (name, file, thread) in running {
                let output = thread.join().expect("the build thread");
                assert!(
                    output.status.success(),
                    "wasya build {name}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                built.insert(name, std::fs::read(&file).expect("the component"));
            }
        }
        built
    })
}

/// A node with the examples of `lang` deployed.
async fn node_with(kind: Kind, lang: Lang) -> NodeProcess {
    node_with_only(kind, lang, &[]).await
}

/// A node with the examples of `lang` named in `actors` deployed (all when empty): a
/// Python component takes seconds to compile, and a test waits only for its own.
async fn node_with_only(kind: Kind, lang: Lang, actors: &[&str]) -> NodeProcess {
    let components = tokio::task::spawn_blocking(move || examples(lang))
        .await
        .expect("the examples build");
    let node = NodeProcess::start_on(kind, &[]);
    let wanted = |name: &str| actors.is_empty() || actors.contains(&name);
    for (name, bytes) in components.iter().filter(|(name, _)| wanted(name)) {
        let (status, answer) = node.upload(name, bytes.clone()).await;
        assert_eq!(status, 201, "{name}: {answer}");
    }
    node
}

async fn python_handlers_run_as_asya_runs_them(kind: Kind) {
    if Lang::Python.available() {
        the_handler_matrix(kind, Lang::Python, "ValueError", "in refuse").await;
    }
}

async fn js_handlers_run_as_asya_runs_them(kind: Kind) {
    if Lang::Js.available() {
        the_handler_matrix(kind, Lang::Js, "RangeError", "refuse@").await;
    }
}

/// The routing matrix for the examples of one language: transform (and its printed
/// line), fan-out, failure with type, message and traceback, state made once, envelope
/// mode, and a route through actors of several languages.
async fn the_handler_matrix(kind: Kind, lang: Lang, error_type: &str, trace_words: &str) {
    let node = node_with(kind, lang).await;
    let p = lang.prefix();
    let (shout, words, refuse, greet, add_hop) = (
        format!("{p}-shout"),
        format!("{p}-words"),
        format!("{p}-refuse"),
        format!("{p}-greet"),
        format!("{p}-add-hop"),
    );
    // The listing says the mode each handler was built in.
    for (name, mode) in [(&shout, "payload"), (&add_hop, "envelope")] {
        let (status, actor) = node.get(&format!("/v1/actors/{name}")).await;
        assert_eq!(status, 200, "{actor}");
        assert_eq!(actor["handler_mode"], mode, "{name}: {actor}");
    }

    let id = node
        .submit(&[shout.as_str()], json!({"text": "hello wasm world"}))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(
        view["results"],
        json!([{"text": "HELLO WASM WORLD", "words": 3}]),
        "{view}"
    );
    let printed = node
        .wait_for_log(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|event| {
                event["message"] == "shouting 16 characters"
                    && event["envelope_id"] == id.as_str()
                    && event["actor"] == shout.as_str()
                    && event["stream"] == "stdout"
            })
        })
        .await;
    assert!(printed, "the handler's printed line is in the node's log");

    let id = node
        .submit(&[words.as_str()], json!({"text": "one two three"}))
        .await;
    let fanned: Vec<Value> = node.outcome(&id).await["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| result["word"].clone())
        .collect();
    assert_eq!(fanned, vec![json!("one"), json!("two"), json!("three")]);

    let id = node
        .submit(&[refuse.as_str()], json!({"reason": "because"}))
        .await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], error_type, "{error}");
    assert_eq!(error["details"]["message"], "refused: because", "{error}");
    let traceback = error["details"]["traceback"].as_str().unwrap_or("");
    assert!(traceback.contains(trace_words), "{error}");
    assert_eq!(error["original_payload"], json!({"reason": "because"}));

    let (status, answer) = node
        .patch_json(&greet, json!({"reuse_instances": false}))
        .await;
    assert_eq!(status, 200, "{answer}");
    for _ in 0..3 {
        let id = node.submit(&[greet.as_str()], json!({"name": "Ada"})).await;
        assert_eq!(
            node.outcome(&id).await["results"],
            json!([{"greeting": "Hello, Ada", "greeted": 1, "greeters_made": 1}]),
            "a fresh instance per message starts from the state built once"
        );
    }

    let id = node
        .submit(&[add_hop.as_str()], json!({"then": "upper", "text": "hop"}))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(
        view["results"],
        json!([{"then": "upper", "text": "HOP"}]),
        "{view}"
    );
    assert_eq!(
        view["ended"][0]["envelope"]["route"]["actors"],
        json!([add_hop, "upper"])
    );

    let id = node
        .submit(
            &[shout.as_str(), "split"],
            json!({"text": "mixed languages"}),
        )
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["results"].as_array().map(Vec::len), Some(2), "{view}");
}

/// A JavaScript handler built with componentize-js's default features: `await
/// fetch()` reaches a host the actor is granted, and no other.
#[tokio::test]
async fn a_js_handler_fetches_from_a_granted_host_only() {
    if Lang::Js.available() {
        a_handler_fetches_from_a_granted_host_only(Lang::Js).await;
    }
}

/// A Python handler calling out with `wasya_http` (over componentize-py's `wasi:http`).
#[tokio::test]
async fn a_python_handler_fetches_from_a_granted_host_only() {
    if Lang::Python.available() {
        a_handler_fetches_from_a_granted_host_only(Lang::Python).await;
    }
}

async fn a_handler_fetches_from_a_granted_host_only(lang: Lang) {
    let server = WebServer::start(std::time::Duration::ZERO).await;
    let actor = format!("{}-fetch", lang.prefix());
    let node = node_with_only(Kind::Embedded, lang, &[&actor]).await;
    let id = node
        .submit(&[actor.as_str()], json!({"url": server.url("/echo")}))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(
        single_error(&view)["details"]["refused_hosts"],
        json!([server.pattern()]),
        "{view}"
    );
    let (status, answer) = node
        .put_json(
            &actor,
            json!({"allowed_outbound_hosts": [server.pattern()]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = node
        .submit(&[actor.as_str()], json!({"url": server.url("/echo")}))
        .await;
    let view = node.outcome(&id).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let result = &view["results"][0];
    assert_eq!(result["status"], 200, "{view}");
    assert_eq!(result["type"], "application/json", "{view}");
    assert!(result["length"].as_u64().unwrap_or(0) > 10, "{view}");
}

/// A Python component keeps warm instances with no options set, as Asya's runtime keeps
/// its interpreter: state a call leaves lives on to the next message.
#[tokio::test]
async fn a_reused_instance_keeps_its_state_between_messages() {
    if !Lang::Python.available() {
        return;
    }
    let node = node_with_only(Kind::Embedded, Lang::Python, &["py-greet"]).await;
    let (_, view) = node.get("/v1/actors/py-greet").await;
    assert_eq!(view["reuse_instances"], true, "the default: {view}");
    let (_, view) = node.get("/v1/actors/upper").await;
    assert_eq!(
        view["reuse_instances"], false,
        "a Rust guest keeps a fresh instance per message: {view}"
    );
    let (status, answer) = node.patch_json("py-greet", json!({"concurrency": 1})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["reuse_instances"], true, "{answer}");
    for greeted in 1..=3 {
        let id = node.submit(&["py-greet"], json!({"name": "Ada"})).await;
        assert_eq!(
            node.outcome(&id).await["results"],
            json!([{"greeting": "Hello, Ada", "greeted": greeted, "greeters_made": 1}])
        );
    }
    // A failure does not discard a warm instance; a trap would.
    let id = node.submit(&["py-greet"], json!({})).await;
    assert_eq!(
        single_error(&node.outcome(&id).await)["details"]["type"],
        "KeyError"
    );
    let id = node.submit(&["py-greet"], json!({"name": "Ada"})).await;
    assert_eq!(node.outcome(&id).await["results"][0]["greeted"], 5);
}

/// `wasya new` in `lang` (with `extra` flags), its own test, `wasya build`, a deploy
/// and a message; the world the deployed actor targets.
async fn a_new_project(
    lang: &str,
    extra: &[&str],
    own_test: &[&str],
    env: &[(&str, String)],
) -> Value {
    let root = tempfile::tempdir().expect("a directory");
    let mut args = vec!["new", "hello", "--lang", lang];
    args.extend_from_slice(extra);
    let created = wasya(&args, root.path());
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let project = root.path().join("hello");
    let tested = Command::new(own_test[0])
        .args(&own_test[1..])
        .current_dir(&project)
        .envs(env.iter().map(|(key, value)| (*key, value)))
        .output()
        .expect("the project's test runs");
    assert!(
        tested.status.success(),
        "the new {lang} project's own test: {}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    let built = Command::new(env!("CARGO_BIN_EXE_wasya"))
        .args(["build", "hello"])
        .current_dir(root.path())
        .envs(env.iter().map(|(key, value)| (*key, value)))
        .output()
        .expect("wasya build runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let component = std::fs::read(project.join("target/hello.wasm")).expect("the component");
    let node = NodeProcess::start(&["--serve", "echo"]);
    assert_eq!(node.upload("hello", component).await.0, 201);
    let id = node.submit(&["hello"], json!({"text": "hi"})).await;
    assert_eq!(
        node.outcome(&id).await["results"],
        json!([{"text": "HI", "length": 2}])
    );
    node.get("/v1/actors/hello").await.1["world"].clone()
}

#[tokio::test]
async fn a_new_python_project_passes_its_test_builds_and_runs() {
    if Lang::Python.available() {
        let world = a_new_project("python", &[], &["python3", "-m", "unittest"], &[]).await;
        assert_eq!(world, "wasya:actor@0.1.0");
    }
}

#[tokio::test]
async fn a_new_async_python_project_passes_its_test_builds_and_runs_async() {
    if Lang::Python.available() {
        let world =
            a_new_project("python", &["--async"], &["python3", "-m", "unittest"], &[]).await;
        assert_eq!(world, "wasya:actor@0.2.0");
    }
}

#[tokio::test]
async fn a_new_js_project_passes_its_test_builds_and_runs() {
    if Lang::Js.available() {
        a_new_project("js", &[], &["node", "--test"], &[]).await;
    }
}

#[tokio::test]
async fn a_new_rust_project_passes_its_test_builds_and_runs() {
    // Its dependencies build once per test run, in a target directory of the run's own.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("new-rust-project");
    let env = [("CARGO_TARGET_DIR", target.display().to_string())];
    a_new_project("rust", &[], &["cargo", "test", "--quiet"], &env).await;
}

/// A local server, and a node with the Python examples whose async `actor` may call it.
async fn python_node_granting(actor: &str) -> (WebServer, NodeProcess) {
    let server = WebServer::start(std::time::Duration::ZERO).await;
    let node = node_with_only(Kind::Embedded, Lang::Python, &[actor]).await;
    let (status, answer) = node
        .patch_json(actor, json!({"allowed_outbound_hosts": [server.pattern()]}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["world"], "wasya:actor@0.2.0", "{answer}");
    (server, node)
}

/// An `async def` handler builds for the async world; 50 calls interleave in one
/// instance, and each keeps its own: requests at once with `asyncio.gather`, its
/// envelope's trace context on each request, its printed line under its envelope id.
#[tokio::test]
async fn an_async_python_handler_interleaves_calls_and_each_keeps_its_own() {
    if !Lang::Python.available() {
        return;
    }
    let (server, node) = python_node_granting("py-fetch-both").await;
    let trace_id = |tag: usize| format!("{:032x}", tag + 1);
    let ids = futures::future::join_all((0..50).map(|tag| {
        node.submit_body(json!({
            "route": ["py-fetch-both"],
            "payload": {"url": server.url("/echo"), "tag": tag},
            "headers": {"traceparent": format!("00-{}-{:016x}-01", trace_id(tag), tag + 1)},
        }))
    }))
    .await;
    for (tag, id) in ids.iter().enumerate() {
        let view = node.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
        let result = &view["results"][0];
        assert_eq!(result["tag"], tag, "{view}");
        assert_eq!(result["status"], 200, "{view}");
        assert!(
            result["traceparent"]
                .as_str()
                .is_some_and(|parent| parent.contains(&trace_id(tag))),
            "the request carried its own envelope's trace: {view}"
        );
        assert_eq!(result["echoed"], format!("{{\"tag\": {tag}}}"), "{view}");
    }
    let (_, view) = node.get("/v1/actors/py-fetch-both").await;
    assert_eq!(view["instances"], 1, "50 calls in one instance: {view}");
    let log = node.log();
    for (tag, id) in ids.iter().enumerate() {
        let line = format!("fetching for {tag}");
        assert!(
            log.iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .any(|event| event["message"] == line.as_str()
                    && event["envelope_id"] == id.as_str()),
            "`{line}` under envelope {id}"
        );
    }
}

/// 1,000 calls of an async Python handler waiting on a slow server at once: they wait
/// together, in a handful of instances.
#[tokio::test]
async fn a_thousand_async_python_calls_wait_in_a_handful_of_instances() {
    if !Lang::Python.available() {
        return;
    }
    let (server, node) = python_node_granting("py-wait-on").await;
    let url = server.url("/slow?ms=1500");
    let ids = futures::future::join_all(
        (0..1000).map(|_| node.submit(&["py-wait-on"], json!({"url": url}))),
    )
    .await;
    for id in &ids {
        let view = node.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(view["results"][0]["status"], 200, "{view}");
    }
    let most = server
        .seen
        .most_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        most >= 500,
        "the calls waited together: at most {most} requests were open at once"
    );
    let (_, view) = node.get("/v1/actors/py-wait-on").await;
    let instances = view["instances"].as_u64().unwrap_or(0);
    assert!(
        (1..=4).contains(&instances),
        "{instances} instances for 1000 calls: {view}"
    );
}

/// A node with the Python examples whose `actors` may call a local server.
async fn python_node_granting_all(actors: &[&str]) -> (WebServer, NodeProcess) {
    let server = WebServer::start(std::time::Duration::ZERO).await;
    let node = node_with_only(Kind::Embedded, Lang::Python, actors).await;
    for actor in actors {
        let (status, answer) = node
            .patch_json(actor, json!({"allowed_outbound_hosts": [server.pattern()]}))
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    (server, node)
}

/// The libraries handlers already use, unchanged: plain `httpx.post`, an
/// `httpx.AsyncClient` in an `async def`, and a `requests.Session` reach a granted
/// server through the node's `wasi:http`, sending what they send under Asya's runtime
/// (their own JSON, their own user agent), and a gzip answer reads as its JSON.
#[tokio::test]
async fn httpx_and_requests_reach_a_granted_host_from_a_python_actor() {
    if !Lang::Python.available() {
        return;
    }
    let (server, node) = python_node_granting_all(&["py-call-out", "py-call-out-async"]).await;
    for (actor, with, agent) in [
        ("py-call-out", "httpx", "python-httpx/"),
        ("py-call-out", "requests", "python-requests/"),
        ("py-call-out-async", "httpx", "python-httpx/"),
    ] {
        let case = format!("{with} from {actor}");
        let id = node
            .submit(
                &[actor],
                json!({"url": server.url("/echo"), "with": with, "tag": 7}),
            )
            .await;
        let view = node.outcome(&id).await;
        assert_eq!(view["status"], "succeeded", "{case}: {view}");
        let answer = &view["results"][0];
        assert_eq!(answer["status"], 200, "{case}: {view}");
        let echoed: Value = serde_json::from_str(answer["json"]["body"].as_str().unwrap_or(""))
            .unwrap_or_else(|error| panic!("{case}: the body sent is JSON ({error}): {view}"));
        assert_eq!(echoed, json!({"tag": 7}), "{case}: {view}");
        assert!(
            answer["json"]["headers"]["user-agent"]
                .as_str()
                .is_some_and(|sent| sent.starts_with(agent)),
            "{case}: the library's own user agent: {view}"
        );
        let id = node
            .submit(&[actor], json!({"url": server.url("/gzip"), "with": with}))
            .await;
        let view = node.outcome(&id).await;
        assert_eq!(view["status"], "succeeded", "{case}, gzip: {view}");
        assert_eq!(
            view["results"][0]["json"],
            json!({"compressed": true}),
            "{case}, gzip: {view}"
        );
    }
    let (status, answer) = node
        .patch_json("py-call-out", json!({"allowed_outbound_hosts": []}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = node
        .submit(
            &["py-call-out"],
            json!({"url": server.url("/echo"), "with": "httpx"}),
        )
        .await;
    let view = node.outcome(&id).await;
    let error = single_error(&view);
    assert_eq!(error["details"]["type"], "ConnectError", "{view}");
    assert!(
        error["details"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("allowed_outbound_hosts")),
        "a refused host says which grant is missing: {view}"
    );
}

/// What needs a socket (requests with urllib3's own adapter mounted by hand, a socket
/// opened by hand) fails as a Python exception that names the cause and the way out,
/// not as a trap; the actor serves on.
#[tokio::test]
async fn a_socket_in_a_python_actor_fails_as_a_readable_python_exception() {
    if !Lang::Python.available() {
        return;
    }
    let (server, node) = python_node_granting_all(&["py-call-out"]).await;
    let port = server.port;
    for (payload, error_type) in [
        (
            json!({"url": server.url("/echo"), "with": "urllib3"}),
            "ConnectionError",
        ),
        (
            json!({"host": "127.0.0.1", "port": port, "with": "socket"}),
            "NoSocketsError",
        ),
    ] {
        let id = node.submit(&["py-call-out"], payload.clone()).await;
        let view = node.outcome(&id).await;
        let error = single_error(&view);
        assert_eq!(error["details"]["type"], error_type, "{payload}: {view}");
        let message = error["details"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("has no sockets") && message.contains("httpx, requests or wasya_http"),
            "{payload}: the cause and the way out: {view}"
        );
        assert!(
            error["details"]["traceback"]
                .as_str()
                .is_some_and(|trace| trace.contains("clients.py")),
            "{payload}: a Python traceback through the handler: {view}"
        );
    }
    let id = node
        .submit(
            &["py-call-out"],
            json!({"url": server.url("/echo"), "with": "requests"}),
        )
        .await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
}

/// A handler importing a package with a native extension (pydantic, whose core is a
/// compiled `.so`) fails at `wasya build`, naming the package and why.
#[tokio::test]
async fn a_native_extension_package_fails_at_build_naming_it() {
    if !Lang::Python.available() {
        return;
    }
    let tool = std::env::var_os("WASYA_COMPONENTIZE_PY").map(PathBuf::from);
    let venv = tool
        .as_deref()
        .and_then(|tool| tool.parent()?.parent().map(Path::to_owned));
    let has_pydantic = venv.as_deref().is_some_and(|venv| {
        std::fs::read_dir(venv.join("lib")).is_ok_and(|dirs| {
            dirs.flatten()
                .any(|dir| dir.path().join("site-packages/pydantic_core").is_dir())
        })
    });
    if !has_pydantic {
        assert!(
            std::env::var_os("WASYA_REQUIRE_TOOLCHAINS").is_none(),
            "pydantic is not installed beside WASYA_COMPONENTIZE_PY, and this run requires it"
        );
        eprintln!("skipped: pydantic is not installed beside WASYA_COMPONENTIZE_PY");
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a project directory");
    std::fs::write(
        dir.path().join("models.py"),
        "import pydantic\n\n\nclass Item(pydantic.BaseModel):\n    name: str\n\n\ndef check(payload):\n    return Item(**payload).model_dump()\n",
    )
    .expect("the handler");
    let output = wasya(
        &[
            "build",
            "--python",
            "models.check",
            "--path",
            ".",
            "-o",
            "models.wasm",
        ],
        dir.path(),
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the build fails: {said}");
    assert!(
        said.contains("package `pydantic_core` cannot load in a wasm component")
            && said.contains("native extension"),
        "the build names the package and why: {said}"
    );
}

/// The example LLM step (`examples/python/llm.py`, httpx in an `async def`): 200
/// prompts at once to an OpenAI-compatible server that holds each a while, each
/// answered with its own completion, together in one instance.
#[tokio::test]
async fn the_python_llm_example_answers_many_prompts_in_one_instance() {
    if !Lang::Python.available() {
        return;
    }
    let server = WebServer::start(std::time::Duration::from_millis(300)).await;
    let node = node_with_only(Kind::Embedded, Lang::Python, &["py-llm"]).await;
    let (status, answer) = node
        .patch_json(
            "py-llm",
            json!({"allowed_outbound_hosts": [server.pattern()]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["world"], "wasya:actor@0.2.0", "{answer}");
    let ids = futures::future::join_all((0..200).map(|n| {
        node.submit(
            &["py-llm"],
            json!({"url": server.url("/v1"), "prompt": format!("prompt {n}"), "model": "local"}),
        )
    }))
    .await;
    for (n, id) in ids.iter().enumerate() {
        let view = node.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(
            view["results"][0]["answer"],
            format!("echo: prompt {n}"),
            "{view}"
        );
        assert_eq!(view["results"][0]["model"], "local", "{view}");
    }
    let (_, view) = node.get("/v1/actors/py-llm").await;
    assert_eq!(
        view["instances"], 1,
        "200 waiting calls in one instance: {view}"
    );
}
