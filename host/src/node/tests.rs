//! The builder's parts and the stop's order, on a node with no wasm engine, no API
//! and an embedded queue handed in by the test.

use super::*;
use crate::transport::Transport;
use crate::transport::embedded::EmbeddedTransport;
use std::sync::Arc;

fn socket_only() -> NodeConfig {
    let mut config = NodeConfig {
        data_dir: None,
        engine: None,
        ..NodeConfig::default()
    };
    config.api.listen = None;
    config
}

#[tokio::test]
async fn a_node_runs_on_a_given_transport_and_stops_in_order() {
    let transport: Arc<dyn Transport> = Arc::new(EmbeddedTransport::new(16));
    let node = NodeBuilder::new(socket_only())
        .transport(transport.clone())
        .exporter(None)
        .start()
        .await
        .unwrap();
    assert!(node.actor_names().is_empty(), "{:?}", node.actor_names());
    assert_eq!(node.local_addr(), None);
    // The end actors consume the given transport's queues.
    assert_eq!(transport.depth("happy-end"), Some(0));
    let steps = node.stop_steps();
    let at = |name: &str| {
        steps
            .iter()
            .position(|step| *step == name)
            .unwrap_or_else(|| panic!("no step {name} in {steps:?}"))
    };
    assert!(at("readiness") < at("routing"), "{steps:?}");
    assert!(at("routing") < at("progress to the store"), "{steps:?}");
    assert!(at("progress to the store") < at("transport"), "{steps:?}");
    assert!(!steps.contains(&"http api"), "no API was bound: {steps:?}");
    let report = node.stop().await;
    assert_eq!(report.calls_cut_off, 0);
    assert!(
        !report.kept,
        "an embedded queue without a journal keeps nothing"
    );
    assert_eq!(report.messages_left, Some(0));
}

#[tokio::test]
async fn a_node_without_the_engine_refuses_to_serve_a_wasm_actor() {
    let mut config = socket_only();
    config.serve.only = Some(vec!["upper".into()]);
    let error = NodeBuilder::new(config)
        .exporter(None)
        .start()
        .await
        .err()
        .expect("no engine to run `upper` on");
    assert!(
        matches!(&error, NodeError::NoEngine(name) if name == "upper"),
        "{error}"
    );
}
