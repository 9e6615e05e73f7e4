//! A RabbitMQ virtual host of its own for each test, so tests run in parallel on one
//! broker without sharing queues, and a broker fault in one test touches no other.
//! The virtual host is deleted when the handle drops; ones left by killed runs are
//! deleted by the next run. RabbitMQ must be running: without it the tests fail.

use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

const PREFIX: &str = "wasya-test-";

fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("rabbitmqctl cannot run ({error}): is RabbitMQ installed?"));
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed (is RabbitMQ running?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Deletes virtual hosts of test runs whose process is gone.
fn delete_stale_vhosts() {
    for vhost in rabbitmqctl(&["list_vhosts"]).lines().map(str::trim) {
        let Some(rest) = vhost.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("rabbitmqctl")
                .args(["-q", "delete_vhost", vhost])
                .output();
        }
    }
}

/// A virtual host on the local broker.
pub struct Broker {
    pub vhost: String,
}

impl Broker {
    pub fn new() -> Broker {
        static CLEANUP: Once = Once::new();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        CLEANUP.call_once(delete_stale_vhosts);
        let vhost = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        rabbitmqctl(&["add_vhost", &vhost]);
        rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
        Broker { vhost }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.vhost)
    }

    /// Publishes `body` to the mesh's exchange with routing key `actor`, as a producer
    /// of Asya's would, with `headers`; returns once the broker took it.
    pub async fn publish(&self, actor: &str, body: &[u8], headers: lapin::types::FieldTable) {
        let connection =
            lapin::Connection::connect(&self.url(), lapin::ConnectionProperties::default())
                .await
                .expect("the test connects to RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        channel
            .basic_publish(
                "asya".into(),
                actor.into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                lapin::BasicProperties::default().with_headers(headers),
            )
            .await
            .expect("a publish")
            .await
            .expect("a confirm");
        let _ = connection.close(200, "published".into()).await;
    }

    /// Declares `asya-{actor}` and binds it to the mesh's exchange, as an outside
    /// consumer of Asya's would, so what the node sends `actor` can be read with
    /// [`Broker::take`].
    pub async fn bind_queue(&self, actor: &str) {
        let connection =
            lapin::Connection::connect(&self.url(), lapin::ConnectionProperties::default())
                .await
                .expect("the test connects to RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .exchange_declare(
                "asya".into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("the mesh's exchange");
        let queue = format!("asya-{actor}");
        channel
            .queue_declare(
                queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("a queue");
        channel
            .queue_bind(
                queue.as_str().into(),
                "asya".into(),
                actor.into(),
                lapin::options::QueueBindOptions::default(),
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("a binding");
        let _ = connection.close(200, "bound".into()).await;
    }

    /// Takes up to `count` messages from `queue` (waiting up to 20 s for them): each
    /// body and its AMQP properties.
    pub async fn take(&self, queue: &str, count: usize) -> Vec<(Vec<u8>, lapin::BasicProperties)> {
        let connection =
            lapin::Connection::connect(&self.url(), lapin::ConnectionProperties::default())
                .await
                .expect("the test connects to RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut taken = Vec::new();
        while taken.len() < count && std::time::Instant::now() < deadline {
            let got = channel
                .basic_get(
                    queue.into(),
                    lapin::options::BasicGetOptions { no_ack: true },
                )
                .await
                .expect("a get");
            match got {
                Some(message) => {
                    let delivery = message.delivery;
                    taken.push((delivery.data, delivery.properties));
                }
                None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        let _ = connection.close(200, "taken".into()).await;
        taken
    }

    /// Closes every client connection of this virtual host from the broker's side.
    pub fn close_connections(&self) {
        rabbitmqctl(&[
            "close_all_connections",
            "--vhost",
            &self.vhost,
            "broker fault injected by a test",
        ]);
    }

    /// Every queue of the virtual host with its messages (ready and unacknowledged).
    pub fn queue_lengths(&self) -> Vec<(String, u64)> {
        rabbitmqctl(&["list_queues", "-p", &self.vhost, "name", "messages"])
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let name = fields.next()?.to_owned();
                Some((name, fields.next()?.parse().ok()?))
            })
            .collect()
    }

    /// Messages ready in `queue`.
    pub fn queue_length(&self, queue: &str) -> Option<u64> {
        rabbitmqctl(&["list_queues", "-p", &self.vhost, "name", "messages"])
            .lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some(queue)).then(|| fields.next()?.parse().ok())?
            })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.vhost])
            .output();
    }
}
