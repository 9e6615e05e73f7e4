//! The checks a configuration passes before anything starts.
//!
//! Values are checked against each other (a public address needs a token, an end's
//! name only an external runtime may take) and against the machine (files and
//! directories exist), and each failure names the flag to change, in one line.

use super::{ConfigError, NodeConfig};
use crate::records::{ActorKind, NameError, validate_name};

impl NodeConfig {
    /// Checks the values against each other and the machine.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_api()?;
        self.validate_actors()?;
        self.validate_transport()?;
        self.validate_engine()?;
        if self.deployments.keep_versions == 0 || self.deployments.max_actors == 0 {
            return fail("--keep-versions and --max-actors must be at least 1");
        }
        Ok(())
    }

    fn validate_api(&self) -> Result<(), ConfigError> {
        let api = &self.api;
        if let Some(addr) = api.listen
            && !addr.ip().is_loopback()
            && api.token.is_none()
        {
            return fail(format!(
                "refusing to listen on {addr} without a token: set WASYA_TOKEN or --token-file (or listen on 127.0.0.1)"
            ));
        }
        if api
            .token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return fail("the token is empty");
        }
        if api.mcp_sessions == 0 {
            return fail("--mcp-sessions must be at least 1");
        }
        if api.header_read_timeout.is_zero() {
            return fail("--header-read-timeout must be longer than 0");
        }
        Ok(())
    }

    /// An end's name is the node's own, unless the node runs no end actors and an
    /// external runtime ends routes under that name (Asya's `ASYA_IS_END_ACTOR`).
    fn check_name(&self, name: &str) -> Result<(), NameError> {
        match validate_name(name) {
            Err(NameError::Reserved(_))
                if !self.routing.end_actors
                    && self.routing.terminal_actors.iter().any(|t| t == name) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    fn validate_actors(&self) -> Result<(), ConfigError> {
        for name in &self.routing.terminal_actors {
            if !self.serve.is_socket(name) {
                return fail(format!(
                    "{name} ends routes but is not a socket actor: only an external runtime can take an end's place"
                ));
            }
        }
        let actors = &self.actors;
        let mut checked = vec![(String::new(), actors.concurrency, actors.limits.clone())];
        for name in actors.per_actor.keys() {
            self.check_name(name)
                .map_err(|error| ConfigError(error.to_string()))?;
            checked.push((
                format!("{name}: "),
                actors.concurrency_for(name, ActorKind::Wasm),
                actors.limits_for(name),
            ));
        }
        for (actor, concurrency, limits) in checked {
            if concurrency == 0 {
                return fail(format!("{actor}--concurrency must be at least 1"));
            }
            if limits.timeout.is_zero() {
                return fail(format!("{actor}--timeout must be longer than 0"));
            }
            if limits.memory_bytes < 64 * 1024 {
                return fail(format!(
                    "{actor}--memory-limit {} is below one WebAssembly page (64KiB)",
                    limits.memory_bytes
                ));
            }
        }
        for (name, path) in &self.serve.sockets {
            self.check_name(name)
                .map_err(|error| ConfigError(format!("--socket-actor: {error}")))?;
            crate::runtime::socket::check_location(path)
                .map_err(|error| ConfigError(format!("--socket-actor {name}: {error}")))?;
        }
        if actors.frame_limit < 1024 {
            return fail("--frame-limit must be at least 1KiB");
        }
        for name in self.serve.only.iter().flatten() {
            self.check_name(name)
                .map_err(|error| ConfigError(format!("--serve: {error}")))?;
        }
        let outbound = &actors.limits.outbound;
        if outbound.concurrency == 0 {
            return fail("--outbound-concurrency must be at least 1");
        }
        if outbound.timeout.is_zero() {
            return fail("--outbound-timeout must be longer than 0");
        }
        if let Some(dir) = &self.serve.actors_dir
            && !dir.is_dir()
        {
            return fail(format!("--actors {} is not a directory", dir.display()));
        }
        Ok(())
    }

    fn validate_transport(&self) -> Result<(), ConfigError> {
        let transport = &self.transport;
        if transport.queue_capacity == 0 {
            return fail("--queue-capacity must be at least 1");
        }
        if let Some(amqp) = &transport.amqp
            && !(amqp.url.starts_with("amqp://") || amqp.url.starts_with("amqps://"))
        {
            return fail("--amqp must be an amqp:// or amqps:// URL");
        }
        let least = 2 * crate::envelope::limits::ERROR_ROOM;
        if transport.max_envelope_bytes < least {
            return fail(format!(
                "--max-envelope must be at least {} (an error-end wrapper keeps {} of it)",
                crate::units::format_bytes(least),
                crate::units::format_bytes(crate::envelope::limits::ERROR_ROOM)
            ));
        }
        Ok(())
    }

    fn validate_engine(&self) -> Result<(), ConfigError> {
        let Some(engine) = &self.engine else {
            if let Some(dir) = &self.serve.actors_dir {
                return fail(format!(
                    "--actors {} needs the wasm engine, which this node runs without",
                    dir.display()
                ));
            }
            return Ok(());
        };
        if engine.max_instances == 0 {
            return fail("--max-instances must be at least 1");
        }
        if engine.pool_table_elements == 0 || engine.pool_instance_size == 0 {
            return fail("--pool-table-elements and --pool-instance-size must be more than 0");
        }
        if let Some(ca) = engine.outbound_ca.iter().find(|path| !path.is_file()) {
            return fail(format!("--outbound-ca {} is not a file", ca.display()));
        }
        Ok(())
    }
}

fn fail(message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError(message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(config: &NodeConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn rejects_zero_concurrency() {
        let mut config = NodeConfig::default();
        config.actors.concurrency = 0;
        assert!(error_of(&config).contains("--concurrency"));
    }

    #[test]
    fn a_public_address_needs_a_token() {
        let mut config = NodeConfig::default();
        config.api.listen = "0.0.0.0:8080".parse().ok();
        assert!(error_of(&config).contains("without a token"));
        config.api.token = Some("secret".into());
        config.validate().unwrap();
    }

    #[test]
    fn a_node_without_the_engine_loads_no_actors_directory() {
        let mut config = NodeConfig {
            engine: None,
            ..NodeConfig::default()
        };
        config.validate().unwrap();
        config.serve.actors_dir = Some(std::env::temp_dir());
        assert!(error_of(&config).contains("needs the wasm engine"));
    }
}
