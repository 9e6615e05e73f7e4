//! RabbitMQ for the broker benchmarks: a virtual host of the run's own (made and
//! removed with `rabbitmqctl`) and the properties every message is published with.

use lapin::BasicProperties;
use std::process::Command;

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .status()
        .expect("rabbitmqctl runs");
    assert!(
        status.success(),
        "rabbitmqctl {args:?} failed: is RabbitMQ running?"
    );
}

/// A virtual host on the local broker, removed when dropped.
pub struct Vhost {
    name: String,
}

impl Vhost {
    /// `wasya-bench-{purpose}-{pid}`, guest allowed everything.
    pub fn new(purpose: &str) -> Vhost {
        let name = format!("wasya-bench-{purpose}-{}", std::process::id());
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        Vhost { name }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.name])
            .status();
    }
}

/// Persistent JSON, as the node publishes envelopes.
pub fn properties() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}
