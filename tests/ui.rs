//! The status page at `/ui` in a real browser (headless Chromium driven by Selenium,
//! see `support::browser`) against a real node with a token: what an operator sees
//! and does there, checked against what the API says. Each case leaves screenshots
//! of the states it reached under `target/ui-screenshots/`. The numbers the page draws
//! (calls in flight, queue depth) are checked on both transports without a browser.

use crate::support::browser::Browser;
use crate::support::{Kind, NodeProcess};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

on_both_transports!(an_actor_view_tells_its_calls_in_flight_and_its_queue_depth);

const TOKEN: &str = "ui-s3cret-token";

fn node() -> NodeProcess {
    NodeProcess::start_with(&[], &[("WASYA_TOKEN", TOKEN)])
}

/// Submits through the API, with the token; the id.
async fn submit(node: &NodeProcess, route: &[&str], payload: Value) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/envelopes", node.base))
        .bearer_auth(TOKEN)
        .json(&json!({"route": route, "payload": payload}))
        .send()
        .await
        .expect("the node answers");
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("JSON");
    answer["id"].as_str().expect("an id").to_owned()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// The `(actor, stage)` of each hop the page drew.
fn hops(step: &Value) -> Vec<(String, String)> {
    step["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|hop| {
            (
                hop["actor"].as_str().unwrap_or_default().to_owned(),
                hop["stage"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_page_lists_the_actors_and_follows_envelopes_to_their_end() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let node = node();
    let (status, html) = node.get_text("/").await;
    assert_eq!(status, 200, "/ leads to the page");
    assert!(html.contains("<title>wasya"), "{html}");
    // Traffic before the page opens: counts, failures and sparklines to show.
    let mut sent = Vec::new();
    for n in 0..24 {
        sent.push(submit(&node, &["echo", "upper"], json!({"text": format!("m{n}")})).await);
    }
    for reason in ["disk full", "bad input"] {
        sent.push(submit(&node, &["fail"], json!({"reason": reason})).await);
    }
    for id in &sent {
        node.outcome(id).await;
    }

    let mut page = browser.start("overview", &node.base, None, TOKEN);
    let listed = page.step("listed").await;
    let actors = strings(&listed["actors"]);
    for bundled in ["echo", "upper", "split", "fail", "spin"] {
        assert!(
            actors.contains(&bundled),
            "{bundled} is not listed: {actors:?}"
        );
    }
    assert_eq!(listed["ready"], "ready");

    let refused = page.step("refused").await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("this endpoint needs `Authorization: Bearer <token>`"),
        "the page does not show the API's words: {refused}"
    );

    let succeeded = page.step("succeeded").await;
    let id = succeeded["id"].as_str().expect("the followed id");
    let outcome = node.outcome(id).await;
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(outcome["results"], json!([{"text": "HELLO WASYA"}]));
    assert_eq!(
        outcome["ended"][0]["envelope"]["headers"]["trace"], "ui",
        "the form's headers went with the envelope"
    );
    assert_eq!(
        hops(&succeeded),
        [
            ("echo".to_owned(), "completed".to_owned()),
            ("upper".to_owned(), "completed".to_owned())
        ]
    );

    let fanned = page.step("fanned-out").await;
    let outcome = node.outcome(fanned["id"].as_str().expect("an id")).await;
    assert_eq!(outcome["results"].as_array().map(Vec::len), Some(3));
    let drawn = hops(&fanned);
    assert_eq!(drawn.len(), 4, "split and one echo per branch: {fanned}");
    assert!(
        drawn.iter().all(|(_, stage)| stage == "completed"),
        "{drawn:?}"
    );
    let branches = fanned["hops"].as_array().expect("hops");
    for branch in ["0/3", "1/3", "2/3"] {
        assert!(
            branches
                .iter()
                .any(|hop| hop["text"].as_str().unwrap_or_default().contains(branch)),
            "branch {branch} is not drawn: {fanned}"
        );
    }

    let overview = page.step("overview").await;
    let processed: u64 = overview["echo_processed"]
        .as_str()
        .unwrap_or_default()
        .replace(',', "")
        .parse()
        .expect("a count");
    assert!(processed >= 25, "echo processed {processed}");
    assert_eq!(overview["fail_failed"], "2");
    let (_, echo) = node.get("/v1/actors/echo").await;
    assert_eq!(
        overview["echo_saturation"],
        format!("0 / {}", echo["concurrency"]),
        "calls in flight against the limit, none once the traffic ended"
    );
    assert_eq!(
        overview["echo_queue"], "0",
        "the embedded queue tells its depth"
    );
    let digest = echo["digest"].as_str().expect("a digest");
    assert!(
        overview["echo_version"]
            .as_str()
            .unwrap_or_default()
            .contains(&digest[..12]),
        "{overview}"
    );
    page.passes().await;
}

#[tokio::test]
async fn a_failing_envelope_shows_its_details_in_the_failures_list() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let node = node();
    let mut page = browser.start("failure", &node.base, None, TOKEN);
    let failed = page.step("failed").await;
    let id = failed["id"].as_str().expect("an id");
    assert_eq!(failed["first_failure"], id, "newest first");
    assert_eq!(failed["type"], "ValueError");
    assert_eq!(failed["message"], "fail always fails: on purpose");
    assert_eq!(
        hops(&failed),
        [
            ("echo".to_owned(), "completed".to_owned()),
            ("fail".to_owned(), "failed".to_owned())
        ]
    );
    let (_, listed) = node.get("/v1/envelopes?status=failed").await;
    assert_eq!(listed[0]["id"], id, "the page shows what the API lists");
    page.passes().await;
}

/// A page of another site (here `http://localhost:PORT`, while the node is reached as
/// 127.0.0.1) sends what a browser sends cross-site without a preflight: a `text/plain`
/// POST of an envelope, a form. None of it reaches a queue, with no token set.
#[tokio::test]
async fn a_page_of_another_site_cannot_change_the_node() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let node = NodeProcess::start(&["--serve", "echo"]);
    let mut page = browser.start("cross_site", &node.base, None, "");
    let attacked = page.step("attacked").await;
    assert_eq!(
        attacked["results"].as_array().map(Vec::len),
        Some(4),
        "every request was tried: {attacked}"
    );
    page.passes().await;
    // Anything accepted would have run by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(node.get("/v1/envelopes/csrf-1").await.0, 404, "{attacked}");
    let (_, echo) = node.get("/v1/actors/echo").await;
    assert_eq!(echo["processed"], 0, "nothing reached echo: {echo}");
    let (_, failed) = node.get("/v1/envelopes?status=failed").await;
    assert_eq!(failed, json!([]));
}

#[tokio::test]
async fn an_uploaded_component_is_listed_then_removed() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let node = node();
    let component = PathBuf::from(env!("WASYA_GUESTS_DIR")).join("upper.wasm");
    let component = component.display().to_string();
    let mut page = browser.start("upload", &node.base, Some(&component), TOKEN);
    let deployed = page.step("deployed").await;
    assert_eq!(deployed["suggested"], "upper", "named after the file");
    assert_eq!(deployed["progress"], "100");
    // The same bytes as the bundled `upper`: the digest the page showed is its digest.
    let (_, upper) = node.get("/v1/actors/upper").await;
    let digest = upper["digest"].as_str().expect("a digest");
    let status = deployed["status"].as_str().unwrap_or_default();
    assert!(status.contains(&digest[..12]), "{status} vs {digest}");
    assert!(
        deployed["version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("v1"),
        "{deployed}"
    );

    let refused = page.step("refused").await;
    let answer = reqwest::Client::new()
        .put(format!("{}/v1/actors/Not-A-Name", node.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/wasm")
        .body(std::fs::read(&component).expect("the component"))
        .send()
        .await
        .expect("the node answers");
    assert_eq!(answer.status(), 400);
    let answer: Value = answer.json().await.expect("JSON");
    let shown = refused["status"].as_str().unwrap_or_default();
    assert_eq!(
        shown,
        format!(
            "{} ({})",
            answer["message"].as_str().unwrap_or_default(),
            answer["error"].as_str().unwrap_or_default()
        ),
        "the page shows the API's words"
    );

    let removed = page.step("removed").await;
    assert!(!strings(&removed["actors"]).contains(&"shout"));
    assert_eq!(node.get("/v1/actors/shout").await.0, 404);
    page.passes().await;
}

#[tokio::test]
async fn the_page_says_when_the_node_is_unreachable_and_reconnects() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let mut node = node();
    let address = node.address().to_owned();
    let mut page = browser.start("restart", &node.base, None, TOKEN);
    page.step("loaded").await;
    node.kill();
    let unreachable = page.step("unreachable").await;
    assert!(
        unreachable["banner"]
            .as_str()
            .unwrap_or_default()
            .contains("node unreachable, retrying"),
        "{unreachable}"
    );
    assert_eq!(unreachable["readiness"], "unreachable");
    let _restarted = NodeProcess::start_at(&address, &[], &[("WASYA_TOKEN", TOKEN)]);
    let reconnected = page.step("reconnected").await;
    assert!(strings(&reconnected["actors"]).contains(&"echo"));
    page.passes().await;
}

#[tokio::test]
async fn the_page_fits_a_phone() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let node = node();
    let mut page = browser.start("phone", &node.base, None, TOKEN);
    let phone = page.step("phone").await;
    let (scroll, window) = (
        phone["scroll_width"].as_u64().expect("a width"),
        phone["window_width"].as_u64().expect("a width"),
    );
    assert!(
        scroll <= window,
        "the page is {scroll} px wide in a {window} px window"
    );
    page.passes().await;
}

/// One actor busy with one long call while more wait: the view says so, on either
/// transport (on RabbitMQ the node holds up to four times its calls, so more wait).
async fn an_actor_view_tells_its_calls_in_flight_and_its_queue_depth(kind: Kind) {
    let node = NodeProcess::start_on(kind, &[]);
    let (status, spin) = node
        .put_json("spin", json!({"concurrency": 1, "timeout": "60s"}))
        .await;
    assert_eq!(status, 200, "{spin}");
    for _ in 0..8 {
        node.submit(&["spin"], json!({"for_ms": 30000})).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, spin) = node.get("/v1/actors/spin").await;
        let depth = spin["queue_depth"].as_u64().unwrap_or(0);
        if spin["in_flight"] == 1 && depth >= 3 {
            break;
        }
        assert!(spin["in_flight"].as_u64() <= Some(1), "{spin}");
        assert!(
            Instant::now() < deadline,
            "no call in flight with messages waiting: {spin}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, idle) = node.get("/v1/actors/echo").await;
    assert_eq!(
        (idle["in_flight"].as_u64(), idle["queue_depth"].as_u64()),
        (Some(0), Some(0)),
        "{idle}"
    );
}
