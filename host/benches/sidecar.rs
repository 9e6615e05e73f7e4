//! The sidecar's job at Asya's defaults, measured: `cargo bench --bench sidecar`
//! (RabbitMQ on 127.0.0.1:5672, guest/guest, and python3; the run uses a virtual host
//! of its own).
//!
//! One hop in front of the same Python runtime (the repository's reference runtime,
//! serving one call at a time, as Asya's does; `WASYA_BENCH_RUNTIME` names another
//! Asya-protocol runtime script) with the `echo` handler, prefetch 1:
//!
//! - baseline, Asya-style: a raw lapin loop doing what Asya's Go sidecar does: take
//!   one delivery (prefetch 1), call the runtime over its socket, build the next
//!   envelope, publish it *without* publisher confirms, ack; then the next; its end
//!   of the line is a consumer that acks each envelope, as Asya's `happy-end` does;
//! - wasya: the router `wasya sidecar` runs (RabbitMQ transport, socket actor, one
//!   call at a time), which keeps its confirms: an input is acked only once the broker
//!   confirmed its output, and its end actor records the outcome.
//!
//! Messages are queued before the clock starts; the figure is envelopes per second
//! until the last one reached the end of the line. `WASYA_BENCH_MESSAGES` (default
//! 5000) sizes it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::broker::{Vhost, properties};

use bytes::Bytes;
use common::env_usize;
use common::runtime::{RuntimeProcess, repository};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;
use wasya::ActorSlot;
use wasya::QueueNames;
use wasya::Router;
use wasya::Transport;
use wasya::outcomes::{Outcomes, Status};
use wasya::runtime::socket::frame::{read_frame, write_frame};
use wasya::{AmqpOptions, AmqpTransport};
use wasya::{SocketActor, SocketOptions};

fn envelope(n: usize) -> Value {
    json!({
        "id": format!("bench-{n}-{}", uuid::Uuid::new_v4()),
        "route": {"actors": ["echo"], "current": 0},
        "payload": {"n": n, "text": "a small payload of a few dozen bytes"},
    })
}

/// Calls the runtime once, as a sidecar does: connect, one frame each way.
async fn call_runtime(socket: &Path, request: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(socket).await.expect("connect");
    write_frame(&mut stream, request).await.expect("write");
    read_frame(&mut stream, 64 << 20).await.expect("read")
}

/// The Asya-style loop: prefetch 1, call, publish without confirms, ack.
async fn asya_style(url: &str, socket: &Path, messages: usize) -> f64 {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    for queue in ["asya-style-echo", "asya-style-happy-end"] {
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await
            .expect("declare");
    }
    let filler = connection.create_channel().await.expect("channel");
    filler
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    for n in 0..messages {
        let body = serde_json::to_vec(&envelope(n)).expect("json");
        filler
            .basic_publish(
                "".into(),
                "asya-style-echo".into(),
                BasicPublishOptions::default(),
                &body,
                properties(),
            )
            .await
            .expect("publish");
    }
    filler.wait_for_confirms().await.expect("confirms");

    let consume = connection.create_channel().await.expect("channel");
    consume
        .basic_qos(1, BasicQosOptions::default())
        .await
        .expect("qos");
    let publish = connection.create_channel().await.expect("channel");
    let sink = connection.create_channel().await.expect("channel");
    let mut input = consume
        .basic_consume(
            "asya-style-echo".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut ended = sink
        .basic_consume(
            "asya-style-happy-end".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let started = Instant::now();
    let sidecar = async {
        for _ in 0..messages {
            let delivery = input.next().await.expect("a delivery").expect("ok");
            let response = call_runtime(socket, &delivery.data).await;
            let mut next: Value = serde_json::from_slice(&delivery.data).expect("envelope");
            let answered: Value = serde_json::from_slice(&response).unwrap_or(Value::Null);
            next["payload"] = answered;
            next["route"]["current"] = json!(1);
            let body = serde_json::to_vec(&next).expect("json");
            publish
                .basic_publish(
                    "".into(),
                    "asya-style-happy-end".into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties(),
                )
                .await
                .expect("publish");
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
        }
    };
    let end = async {
        for _ in 0..messages {
            let end = ended.next().await.expect("an end").expect("ok");
            end.acker
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
        }
    };
    futures::join!(sidecar, end);
    let elapsed = started.elapsed();
    let _ = connection.close(200, "done".into()).await;
    messages as f64 / elapsed.as_secs_f64()
}

/// The router `wasya sidecar` runs, one call at a time, confirms kept.
async fn wasya_sidecar(url: &str, socket: &Path, messages: usize) -> f64 {
    let options = AmqpOptions {
        exchange: "bench-sidecar".into(),
        names: QueueNames::new("sidecar-"),
        ..AmqpOptions::new(url)
    };
    let transport = Arc::new(AmqpTransport::connect(options).await.expect("connect"));
    let outcomes = Arc::new(Outcomes::new(messages + 16));
    let router = Router::new(transport.clone(), outcomes.clone());
    for queue in ["echo", "happy-end", "error-end"] {
        transport.declare(queue).await.expect("declare");
    }
    let mut ids = Vec::with_capacity(messages);
    for n in 0..messages {
        let envelope = envelope(n);
        ids.push(envelope["id"].as_str().unwrap_or_default().to_owned());
        let body = Bytes::from(serde_json::to_vec(&envelope).expect("json"));
        transport.send("echo", body.into()).await.expect("prefill");
    }
    for id in &ids {
        outcomes.submitted(id).await;
    }
    let actor = SocketActor::new(
        "echo",
        SocketOptions {
            path: socket.to_owned(),
            timeout: Duration::from_secs(30),
            frame_limit: wasya::defaults::FRAME_LIMIT,
            connections: 1,
        },
        tokio_util::sync::CancellationToken::new(),
    );
    let started = Instant::now();
    router.serve_end_actors().await.expect("end actors");
    router
        .serve(Arc::new(ActorSlot::new("echo", Arc::new(actor), 1)))
        .await
        .expect("serve");
    for id in &ids {
        let view = outcomes.wait(id, Duration::from_secs(600)).await;
        assert_eq!(view.view().map(|view| view.status), Some(Status::Succeeded));
    }
    let elapsed = started.elapsed();
    router.shutdown(Duration::from_secs(10)).await;
    messages as f64 / elapsed.as_secs_f64()
}

async fn run() {
    let messages = env_usize("WASYA_BENCH_MESSAGES", 5_000);
    let vhost = Vhost::new("sidecar");
    let url = vhost.url();
    let runtime =
        RuntimeProcess::serving("handlers.echo", &repository().join("tests/runtimes"), false);
    println!(
        "## One hop at prefetch 1 in front of a Python runtime serving one call at a time ({messages} messages)\n"
    );
    println!(
        "| run | Asya-style loop, no confirms (envelopes/s) | wasya sidecar, confirms (envelopes/s) | wasya / Asya-style |"
    );
    println!("|---|---|---|---|");
    for run in 1..=2 {
        let baseline = asya_style(&url, &runtime.socket(), messages).await;
        let wasya = wasya_sidecar(&url, &runtime.socket(), messages).await;
        println!(
            "| {run} | {baseline:.0} | {wasya:.0} | {:.2} |",
            wasya / baseline
        );
    }
    drop(vhost);
}

fn main() {
    let runtime = wasya::tokio_runtime().expect("tokio runtime");
    runtime.block_on(run());
}
