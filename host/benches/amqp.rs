//! Forwarding throughput on RabbitMQ: the node against the broker's own limit.
//!
//! Run with `cargo bench --bench amqp` (RabbitMQ on 127.0.0.1:5672, guest/guest; the
//! run uses a virtual host of its own, made and removed with `rabbitmqctl`).
//!
//! Both sides move the same messages the same way: persistent, publisher confirms,
//! ack after the confirm, the same prefetch per stage (the node's is four times its
//! calls at once, so it runs a quarter of the prefetch as calls), and a consumer at the
//! end of the line that acks what arrives.
//! - baseline: a raw lapin loop per stage: consume → publish-with-confirm → ack,
//!   routed through a durable topic exchange as the node's messages are;
//! - node: the wasya router with `echo` wasm actors (1 and 3 hops) and its end actor.
//!
//! Messages are queued before the clock starts; the figure is forwarded messages
//! (hops) per second until the last one reached the end. `WASYA_BENCH_MESSAGES`
//! (default 20000) and `WASYA_BENCH_PREFETCH` (default 32) size it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::broker::{Vhost, properties};

use bytes::Bytes;
use common::{env_usize, envelope};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use wasya::ActorLimits;
use wasya::ActorSlot;
use wasya::QueueNames;
use wasya::Router;
use wasya::Transport;
use wasya::outcomes::{Outcomes, Status};
use wasya::{AmqpOptions, AmqpTransport};
use wasya::{EngineOptions, WasmEngine};

/// The raw loop routes like the node: a durable topic exchange, routing key = queue.
const EXCHANGE: &str = "raw";

async fn declare(connection: &Connection, queue: &str) {
    let channel = connection.create_channel().await.expect("channel");
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .expect("declare");
    channel
        .queue_bind(
            queue.into(),
            EXCHANGE.into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
}

/// Consumes `from`; for each message publishes it to `to` (if any) with a confirm,
/// then acks; `done` counts acks.
async fn stage(
    connection: Arc<Connection>,
    from: String,
    to: Option<String>,
    prefetch: u16,
    done: Arc<AtomicUsize>,
    notify: Arc<Notify>,
) {
    let consume = connection.create_channel().await.expect("channel");
    consume
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .expect("qos");
    let publish = connection.create_channel().await.expect("channel");
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let mut consumer = consume
        .basic_consume(
            from.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    while let Some(Ok(delivery)) = consumer.next().await {
        let (publish, to, done, notify) =
            (publish.clone(), to.clone(), done.clone(), notify.clone());
        tokio::spawn(async move {
            if let Some(to) = to {
                let mandatory = BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                };
                let published = publish
                    .basic_publish(
                        EXCHANGE.into(),
                        to.as_str().into(),
                        mandatory,
                        &delivery.data,
                        properties(),
                    )
                    .await;
                // The connection closes under the last stragglers at the end of a run.
                let Ok(confirm) = published else { return };
                if confirm.await.is_err() {
                    return;
                }
            }
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            done.fetch_add(1, Ordering::SeqCst);
            notify.notify_one();
        });
    }
}

async fn wait_for(count: &AtomicUsize, target: usize, notify: &Notify) {
    while count.load(Ordering::SeqCst) < target {
        let _ = tokio::time::timeout(Duration::from_millis(50), notify.notified()).await;
    }
}

/// The raw lapin loop over `hops` stages plus a sink; returns hops per second.
async fn raw(url: &str, hops: usize, messages: usize, prefetch: u16) -> f64 {
    let connection = Arc::new(
        Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("connect"),
    );
    let queues: Vec<String> = (0..=hops).map(|i| format!("raw-{hops}-{i}")).collect();
    for queue in &queues {
        declare(&connection, queue).await;
    }
    let filler = connection.create_channel().await.expect("channel");
    filler
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let actors: Vec<String> = (0..hops).map(|hop| format!("echo-{hop}")).collect();
    for n in 0..messages {
        let body = envelope(n, &actors).to_bytes();
        filler
            .basic_publish(
                "".into(),
                queues[0].as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties(),
            )
            .await
            .expect("publish");
    }
    filler.wait_for_confirms().await.expect("confirms");
    let arrived = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(Notify::new());
    let started = Instant::now();
    for hop in 0..=hops {
        let to = queues.get(hop + 1).cloned();
        let counter = if to.is_none() {
            arrived.clone()
        } else {
            Arc::new(AtomicUsize::new(0))
        };
        tokio::spawn(stage(
            connection.clone(),
            queues[hop].clone(),
            to,
            prefetch,
            counter,
            notify.clone(),
        ));
    }
    wait_for(&arrived, messages, &notify).await;
    let elapsed = started.elapsed();
    let _ = connection.close(200, "done".into()).await;
    (messages * hops) as f64 / elapsed.as_secs_f64()
}

/// The node's router with `hops` echo actors; returns hops per second.
async fn node(
    url: &str,
    hops: usize,
    messages: usize,
    prefetch: usize,
    engine: &WasmEngine,
) -> f64 {
    // The same messages unacked per stage as the raw loop: the node's prefetch is
    // its hand-off window, four times the calls.
    let calls = (prefetch / 4).max(1);
    let names = QueueNames::new(format!("node-{hops}-"));
    let options = AmqpOptions {
        exchange: format!("bench-{hops}"),
        names,
        ..AmqpOptions::new(url)
    };
    let transport = Arc::new(AmqpTransport::connect(options).await.expect("connect"));
    let outcomes = Arc::new(Outcomes::new(messages + 16));
    let router = Router::new(transport.clone(), outcomes.clone());
    let actors: Vec<String> = (0..hops).map(|hop| format!("echo-{hop}")).collect();
    let bytes = wasya::bundled::BUNDLED_ACTORS
        .iter()
        .find(|(name, _)| *name == "echo")
        .expect("echo")
        .1;
    for name in &actors {
        transport.declare(name).await.expect("declare");
    }
    for end in ["happy-end", "error-end"] {
        transport.declare(end).await.expect("declare");
    }
    let mut ids = Vec::with_capacity(messages);
    let sends = (0..messages).map(|n| {
        let envelope = envelope(n, &actors);
        ids.push(envelope.id.clone());
        let transport = transport.clone();
        let first = actors[0].clone();
        async move {
            transport
                .send(&first, Bytes::from(envelope.to_bytes()).into())
                .await
        }
    });
    let sends: Vec<_> = sends.collect();
    futures::stream::iter(sends)
        .buffer_unordered(256)
        .for_each(|sent| async { sent.expect("prefill") })
        .await;
    for id in &ids {
        outcomes.submitted(id).await;
    }
    let started = Instant::now();
    router.serve_end_actors().await.expect("end actors");
    for name in &actors {
        let (actor, _) = engine
            .load(name, Arc::from(bytes), ActorLimits::default())
            .await
            .expect("load");
        router
            .serve(Arc::new(ActorSlot::new(
                name.clone(),
                Arc::new(actor),
                calls,
            )))
            .await
            .expect("serve");
    }
    for id in &ids {
        let view = outcomes.wait(id, Duration::from_secs(600)).await;
        assert_eq!(view.view().map(|view| view.status), Some(Status::Succeeded));
    }
    let elapsed = started.elapsed();
    router.shutdown(Duration::from_secs(10)).await;
    (messages * hops) as f64 / elapsed.as_secs_f64()
}

async fn run() {
    let messages = env_usize("WASYA_BENCH_MESSAGES", 20_000);
    let prefetch = env_usize("WASYA_BENCH_PREFETCH", 32);
    let vhost = Vhost::new("forwarding");
    let url = vhost.url();
    let engine = WasmEngine::new(&EngineOptions::default()).expect("engine");
    println!(
        "## RabbitMQ forwarding, persistent + confirms ({messages} messages, prefetch {prefetch} per stage)\n"
    );
    println!(
        "| pipeline | raw lapin loop (hops/s) | wasya node, wasm echo (hops/s) | node / raw |"
    );
    println!("|---|---|---|---|");
    for hops in [1, 3] {
        let baseline = raw(
            &url,
            hops,
            messages,
            u16::try_from(prefetch).unwrap_or(u16::MAX),
        )
        .await;
        let wasya = node(&url, hops, messages, prefetch, &engine).await;
        println!(
            "| {hops}-hop echo | {baseline:.0} | {wasya:.0} | {:.2} |",
            wasya / baseline
        );
    }
    drop(vhost);
}

fn main() {
    let runtime = wasya::tokio_runtime().expect("tokio runtime");
    runtime.block_on(run());
}
