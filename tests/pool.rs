//! A pool of real nodes sharing a control plane in the real PostgreSQL, on RabbitMQ:
//! an upload to one node is served by all, a node started later serves everything
//! without compiling, outcomes read from any node, a store outage costs no envelope.

use crate::support::{Broker, NodeProcess, Postgres, guest, tally_swap};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A pool node; `fresh` gives it an empty data directory of its own (no compile
/// cache shared with the other test nodes).
fn pool_node(
    broker: &Arc<Broker>,
    store: &Postgres,
    fresh: Option<&tempfile::TempDir>,
) -> NodeProcess {
    pool_node_with(broker, store, fresh, &[])
}

fn pool_node_with(
    broker: &Arc<Broker>,
    store: &Postgres,
    fresh: Option<&tempfile::TempDir>,
    extra: &[&str],
) -> NodeProcess {
    let mut flags: Vec<String> = store.flags();
    flags.extend(["--serve".into(), "none".into()]);
    flags.extend(extra.iter().map(|flag| flag.to_string()));
    if let Some(dir) = fresh {
        flags.extend(["--data-dir".into(), dir.path().display().to_string()]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    NodeProcess::start_on_broker(broker, &flags)
}

/// A pool node that hosts only the deployed actors matching `hosts`.
fn hosting(broker: &Arc<Broker>, store: &Postgres, hosts: &str) -> NodeProcess {
    pool_node_with(broker, store, None, &["--hosts", hosts])
}

/// Polls `node` until actor `name` is served with `digest`; the time it took.
async fn served_within(node: &NodeProcess, name: &str, digest: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, actor) = node.get(&format!("/v1/actors/{name}")).await;
        if status == 200 && actor["digest"] == digest {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{name} not served with {digest} after {limit:?}: {actor}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_upload_to_one_node_is_served_everywhere_and_outcomes_read_from_any() {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    let a = pool_node(&broker, &store, None);
    let b = pool_node(&broker, &store, None);

    let (status, deployed) = a.upload("p-upper", guest("upper")).await;
    assert_eq!(status, 201, "{deployed}");
    let digest = deployed["digest"].as_str().unwrap().to_owned();
    let took = served_within(&b, "p-upper", &digest, Duration::from_secs(2)).await;
    eprintln!("served on the second node {took:?} after the upload answered");

    // Submitted through B, read from A: the outcome lives in the shared store.
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            b.submit(&["p-upper"], json!({"text": format!("m{n}")}))
                .await,
        );
    }
    for (n, id) in ids.iter().enumerate() {
        let (status, view) = a.get(&format!("/v1/envelopes/{id}?wait=20s")).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(
            view["results"],
            json!([{"text": format!("M{n}")}]),
            "{view}"
        );
    }

    // Failures too: one submitted through B is listed by A.
    let (status, failing) = a.upload("p-fail", guest("fail")).await;
    assert_eq!(status, 201);
    served_within(
        &b,
        "p-fail",
        failing["digest"].as_str().unwrap(),
        Duration::from_secs(2),
    )
    .await;
    let failed = b.submit(&["p-fail"], json!({"reason": "listed"})).await;
    assert_eq!(b.outcome(&failed).await["status"], "failed");
    let (_, listed) = a.get("/v1/envelopes?status=failed").await;
    assert_eq!(listed[0]["id"], failed.as_str(), "{listed}");
    assert_eq!(listed[0]["status"], "failed", "{listed}");

    // A node started afterwards serves every actor without compiling anything.
    let fresh = tempfile::tempdir().unwrap();
    let c = pool_node(&broker, &store, Some(&fresh));
    served_within(&c, "p-upper", &digest, Duration::from_secs(5)).await;
    let sources: Vec<String> = c
        .log()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["actor"] == "p-upper")
        .filter_map(|event| event["source"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(sources, ["Shared"], "the late node compiled: {sources:?}");
    assert!(
        c.log()
            .iter()
            .any(|line| line.contains("p-fail") && line.contains("\"source\":\"Shared\"")),
        "the late node did not load p-fail from the store"
    );
    let (_, metrics) = c.get_text("/metrics").await;
    assert!(
        metrics.contains("wasya_compile_cache_total{result=\"shared\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains("result=\"miss\""), "{metrics}");
}

#[tokio::test]
async fn a_hot_swap_on_one_node_loses_nothing_while_another_carries_the_stream() {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    let a = pool_node(&broker, &store, None);
    let b = pool_node(&broker, &store, None);
    let (_, v1) = a.upload("p-swap", guest("echo")).await;
    served_within(
        &b,
        "p-swap",
        v1["digest"].as_str().unwrap(),
        Duration::from_secs(2),
    )
    .await;

    let total = 1000;
    let mut ids = Vec::with_capacity(total);
    for n in 0..total {
        if n == total / 2 {
            let (status, v2) = a.upload("p-swap", guest("upper")).await;
            assert_eq!((status, v2["version"].clone()), (201, json!(2)), "{v2}");
        }
        ids.push(
            b.submit(&["p-swap"], json!({"text": format!("m{n}")}))
                .await,
        );
    }
    let (v1, v2) = tally_swap(&b, &ids).await;
    assert_eq!(v1 + v2, total);
    assert!(
        v2 > 0,
        "the swap never reached the stream: v1 {v1}, v2 {v2}"
    );
    let (_, actor) = b.get("/v1/actors/p-swap").await;
    assert_eq!(actor["version"], 2, "{actor}");
}

#[tokio::test]
async fn five_nodes_starting_at_once_on_an_empty_schema_all_come_up() {
    let broker = Arc::new(Broker::new());
    let store = Arc::new(Postgres::new());
    let starts: Vec<_> = (0..5)
        .map(|_| {
            let (broker, store) = (broker.clone(), store.clone());
            std::thread::spawn(move || pool_node(&broker, &store, None))
        })
        .collect();
    let nodes: Vec<NodeProcess> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    for node in &nodes {
        let (status, _) = node.get_text("/readyz").await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        store.query("SELECT string_agg(version::text, ',' ORDER BY version) FROM wasya_migrations"),
        "1,2",
        "every migration applied, once"
    );
    let (status, _) = nodes[0].upload("p-echo", guest("echo")).await;
    assert_eq!(status, 201);
    let id = nodes[4].submit(&["p-echo"], json!("all up")).await;
    assert_eq!(nodes[2].outcome(&id).await["results"], json!(["all up"]));
}

#[tokio::test]
async fn a_store_outage_keeps_routing_loses_nothing_and_fails_deploys_cleanly() {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    // One redelivery allowed: an outage many times longer than the pause between
    // tries must not push end messages towards their dead-letter queue.
    let strict = ["--max-redeliveries", "1"];
    let a = pool_node_with(&broker, &store, None, &strict);
    let b = pool_node_with(&broker, &store, None, &strict);
    let (_, v1) = a.upload("p-up", guest("upper")).await;
    served_within(
        &b,
        "p-up",
        v1["digest"].as_str().unwrap(),
        Duration::from_secs(2),
    )
    .await;

    let mut ids = Vec::new();
    for n in 0..100 {
        ids.push(
            a.submit(&["p-up"], json!({"text": format!("before {n}")}))
                .await,
        );
    }
    store.cut();
    // Routing goes on: envelopes submitted now are processed by both nodes.
    for n in 0..100 {
        ids.push(
            b.submit(&["p-up"], json!({"text": format!("during {n}")}))
                .await,
        );
    }
    let (status, answer) = a.upload("p-up", guest("echo")).await;
    assert_eq!(status, 503, "a deploy during the outage: {answer}");
    assert_eq!(answer["error"], "store_error", "{answer}");
    let (_, actor) = a.get("/v1/actors/p-up").await;
    assert_eq!(actor["version"], 1, "half-applied: {actor}");
    let (status, ready) = a.get_text("/readyz").await;
    assert_eq!(status, 503);
    assert!(ready.contains("control plane"), "{ready}");
    let processed: u64 = {
        let started = Instant::now();
        loop {
            let (_, actor) = b.get("/v1/actors/p-up").await;
            let (_, other) = a.get("/v1/actors/p-up").await;
            let done = actor["processed"].as_u64().unwrap() + other["processed"].as_u64().unwrap();
            if done >= 200 || started.elapsed() > Duration::from_secs(30) {
                break done;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert!(
        processed >= 200,
        "routing stalled during the outage: {processed} processed"
    );
    // Hold the outage: end messages wait through several one-second pauses.
    tokio::time::sleep(Duration::from_secs(4)).await;

    store.restore();
    let started = Instant::now();
    while a.get_text("/readyz").await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // End messages that met the outage went back to their queue; they land now.
    let started = Instant::now();
    while store.query("SELECT count(*) FROM ended") != "200" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "outcomes still missing from the store: {} of 200",
            store.query("SELECT count(*) FROM ended")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The node that took a submission during the outage could not note it in the
    // store, so it alone answers `pending` for it until its end is written; every
    // other node knows it once it ended.
    for id in &ids {
        let view = b.outcome(id).await;
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    for id in &ids {
        let (status, view) = a.get(&format!("/v1/envelopes/{id}")).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    assert_eq!(
        store.query("SELECT count(*) FROM ended"),
        "200",
        "every outcome reached the store once"
    );
    let dead: Vec<(String, u64)> = broker
        .queue_lengths()
        .into_iter()
        .filter(|(queue, count)| queue.ends_with("-dlq") && *count > 0)
        .collect();
    assert!(dead.is_empty(), "dead-lettered during the outage: {dead:?}");
    let (status, _) = a.upload("p-up", guest("echo")).await;
    assert_eq!(status, 201, "deploys work again");
}

#[tokio::test]
async fn each_node_hosts_only_the_actors_it_is_told_to() {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    let start = |hosts: &str| hosting(&broker, &store, hosts);
    let gpu = start("gpu-*");
    let cpu = start("cpu-*");
    let (status, deployed) = gpu.upload("cpu-upper", guest("upper")).await;
    assert_eq!(
        status, 201,
        "a node records what it does not host: {deployed}"
    );
    served_within(
        &cpu,
        "cpu-upper",
        deployed["digest"].as_str().unwrap(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        gpu.get("/v1/actors/cpu-upper").await.0,
        404,
        "hosted where it should not be"
    );
    let id = gpu.submit(&["cpu-upper"], json!({"text": "pooled"})).await;
    assert_eq!(
        gpu.outcome(&id).await["results"],
        json!([{"text": "POOLED"}])
    );
    let (_, actor) = cpu.get("/v1/actors/cpu-upper").await;
    assert_eq!(actor["processed"], 1, "{actor}");
}

#[tokio::test]
async fn outcomes_expire_from_the_store_after_the_retention() {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    let node = pool_node_with(&broker, &store, None, &["--outcome-retention", "2s"]);
    let (status, _) = node.upload("p-echo", guest("echo")).await;
    assert_eq!(status, 201);
    let id = node.submit(&["p-echo"], json!("short-lived")).await;
    assert_eq!(node.outcome(&id).await["status"], "succeeded");
    assert_eq!(
        store.query(&format!("SELECT count(*) FROM ended WHERE root = '{id}'")),
        "1"
    );
    let started = Instant::now();
    loop {
        let left =
            store.query("SELECT (SELECT count(*) FROM ended) + (SELECT count(*) FROM submissions)");
        if left == "0" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{left} outcome rows outlived a 2 s retention"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn concurrent_uploads_on_two_nodes_never_share_a_version() {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    // The whole history is kept, to be read back.
    let a = pool_node_with(&broker, &store, None, &["--keep-versions", "100"]);
    let b = pool_node_with(&broker, &store, None, &["--keep-versions", "100"]);
    let mut versions = Vec::new();
    for round in 0..5 {
        let (first, second) = if round % 2 == 0 {
            (guest("echo"), guest("upper"))
        } else {
            (guest("upper"), guest("echo"))
        };
        let (on_a, on_b) = tokio::join!(a.upload("p-race", first), b.upload("p-race", second));
        for (status, answer) in [on_a, on_b] {
            match status {
                201 => versions.push(answer["version"].as_u64().unwrap()),
                200 => {} // the same bytes as the version the other node just made
                409 => assert_eq!(answer["error"], "conflict", "{answer}"),
                other => panic!("{other}: {answer}"),
            }
        }
        // Let both nodes see the latest version before the next round.
        let digest = store.query(
            "SELECT record->'versions'->(jsonb_array_length(record->'versions') - 1)->>'digest' FROM actors WHERE name = 'p-race'",
        );
        served_within(&a, "p-race", &digest, Duration::from_secs(2)).await;
        served_within(&b, "p-race", &digest, Duration::from_secs(2)).await;
    }
    let mut unique = versions.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        versions.len(),
        "a version was made twice: {versions:?}"
    );
    let stored = store.query(
        "SELECT string_agg(v->>'version', ',') FROM actors, jsonb_array_elements(record->'versions') v WHERE name = 'p-race'",
    );
    let expected: Vec<String> = (1..=versions.len()).map(|v| v.to_string()).collect();
    assert_eq!(
        stored,
        expected.join(","),
        "the history has gaps or repeats"
    );
}

#[tokio::test]
async fn any_node_streams_the_progress_of_hops_that_ran_elsewhere() {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    let start = |hosts: &str| hosting(&broker, &store, hosts);
    let gpu = start("gpu-*");
    let cpu = start("cpu-*");
    let (_, upper) = gpu.upload("cpu-upper", guest("upper")).await;
    let (_, echo) = gpu.upload("gpu-echo", guest("echo")).await;
    served_within(
        &cpu,
        "cpu-upper",
        upper["digest"].as_str().unwrap(),
        Duration::from_secs(2),
    )
    .await;
    served_within(
        &gpu,
        "gpu-echo",
        echo["digest"].as_str().unwrap(),
        Duration::from_secs(2),
    )
    .await;
    let id = gpu
        .submit(&["cpu-upper", "gpu-echo"], json!({"text": "across"}))
        .await;
    let follow = |node: &NodeProcess| {
        let url = format!("{}/v1/envelopes/{id}/events", node.base);
        async move {
            let response = reqwest::get(url).await.expect("the node answers");
            assert_eq!(response.status(), 200);
            crate::support::sse::read_all(response, Duration::from_secs(30))
                .await
                .events
        }
    };
    for node in [&gpu, &cpu] {
        let events = follow(node).await;
        let hops = crate::support::sse::actor_stages(&events);
        for actor in ["cpu-upper", "gpu-echo"] {
            for stage in ["received", "processing", "completed"] {
                assert!(
                    hops.contains(&(actor.to_owned(), stage.to_owned())),
                    "{actor} {stage} not streamed by {}: {hops:?}",
                    node.base
                );
            }
        }
        let last = events.last().expect("events").json();
        assert_eq!(last["status"], "succeeded");
        assert_eq!(last["results"], json!([{"text": "ACROSS"}]));
    }
    let (_, envelope) = cpu.get(&format!("/envelopes/{id}")).await;
    assert_eq!(envelope["actors_completed"], 2, "{envelope}");
}

#[tokio::test]
async fn a_component_transfer_held_up_in_the_store_neither_blocks_routing_nor_readiness() {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    let node = pool_node(&broker, &store, None);
    let (status, answer) = node.upload("p-echo", guest("echo")).await;
    assert_eq!(status, 201, "{answer}");
    // Components cannot be written for longer than a control-plane query may take
    // (5 s), as when a large one crawls over a slow link.
    let mut lock = store
        .start_query("BEGIN; LOCK TABLE components IN SHARE MODE; SELECT pg_sleep(8); COMMIT;");
    let started = Instant::now();
    while store.query(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 'components' AND l.mode = 'ShareLock' AND l.granted",
    ) != "1"
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the lock was not taken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let uploading = {
        let base = node.base.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .put(format!("{base}/v1/actors/p-up"))
                .header("content-type", "application/wasm")
                .body(guest("upper"))
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        })
    };
    // While the upload waits on its connection, envelopes end (their outcomes are
    // written to the store on other connections) and the node stays ready.
    let mut checked = 0;
    while !uploading.is_finished() {
        let (status, ready) = node.get_text("/readyz").await;
        assert_eq!(
            status, 200,
            "readiness lost while a component was held up: {ready}"
        );
        let id = node.submit(&["p-echo"], json!(checked)).await;
        assert_eq!(node.outcome(&id).await["results"], json!([checked]));
        checked += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        started.elapsed() > Duration::from_secs(6) && checked > 10,
        "the upload was not held up ({checked} checks in {:?}): {:?}",
        started.elapsed(),
        uploading.await
    );
    assert_eq!(
        uploading.await.unwrap(),
        201,
        "the held-up upload went through"
    );
    let _ = lock.wait();
}

/// `bytes` with a custom section of `n` appended: the same actor, another digest.
fn variant(bytes: &[u8], n: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out.extend_from_slice(&[0, 9, 7]);
    out.extend_from_slice(b"variant");
    out.push(n);
    out
}

/// Uploads alternate between `upper` and `echo` under one name, 60 times, two at a
/// time back to back; after every second `201`, the node that answered it shows that version and
/// runs only it, and never answers a conflict with itself. The others of the pool
/// follow within a moment and never go back to an older version.
async fn hot_swaps_never_roll_back(nodes: usize) {
    let broker = Arc::new(Broker::new());
    let store = Postgres::new();
    let pool: Vec<NodeProcess> = (0..nodes)
        .map(|_| pool_node(&broker, &store, None))
        .collect();
    let uploader = &pool[0];
    let (upper, echo) = (guest("upper"), guest("echo"));
    let mut seen_versions = vec![0u64; nodes];
    for round in 1..=30u8 {
        // Two uploads back to back: the first one's announcement reaches every node
        // (the uploader too) while the second is being installed.
        let upper_now = round % 2 == 1;
        let before = variant(if upper_now { &echo } else { &upper }, 2 * round - 1);
        let (status, deployed) = uploader.upload("p-swap", before).await;
        assert_eq!(status, 201, "round {round}: {deployed}");
        let bytes = variant(if upper_now { &upper } else { &echo }, 2 * round);
        let (status, deployed) = uploader.upload("p-swap", bytes).await;
        assert_eq!(status, 201, "round {round}: {deployed}");
        let version = deployed["version"].as_u64().unwrap();
        assert_eq!(version, u64::from(2 * round));
        let (_, shown) = uploader.get("/v1/actors/p-swap").await;
        assert_eq!(shown["version"], version, "round {round}: {shown}");
        if nodes == 1 {
            let started = Instant::now();
            let mut ids = Vec::new();
            while started.elapsed() < Duration::from_millis(300) {
                ids.push(uploader.submit(&["p-swap"], json!({"text": "swap"})).await);
            }
            let expected = if upper_now { "SWAP" } else { "swap" };
            for id in ids {
                let view = uploader.outcome(&id).await;
                assert_eq!(
                    view["results"],
                    json!([{"text": expected}]),
                    "round {round}: an envelope ran an older version"
                );
            }
        }
        for (index, node) in pool.iter().enumerate() {
            let digest = deployed["digest"].as_str().unwrap();
            served_within(node, "p-swap", digest, Duration::from_secs(5)).await;
            let (_, shown) = node.get("/v1/actors/p-swap").await;
            let now = shown["version"].as_u64().unwrap();
            assert!(
                now >= seen_versions[index],
                "node {index} went back to {now}"
            );
            seen_versions[index] = now;
        }
    }
}

#[tokio::test]
async fn hot_swaps_on_one_node_never_roll_back() {
    hot_swaps_never_roll_back(1).await;
}

#[tokio::test]
async fn hot_swaps_in_a_pool_of_three_never_roll_back() {
    hot_swaps_never_roll_back(3).await;
}
