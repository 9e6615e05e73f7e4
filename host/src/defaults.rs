//! One home for every default the node runs with.
//!
//! A default is written here once; flags, configuration, transports and docs refer to
//! these names. Where a flag shows its default in `--help` it needs it as text, so such
//! defaults come in pairs (`TIMEOUT` and `TIMEOUT_TEXT`), and a test holds each pair to
//! the same value.

use std::time::Duration;

/// Where the HTTP API listens.
pub const LISTEN_TEXT: &str = "127.0.0.1:8080";

/// Time one actor call may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// [`TIMEOUT`] as `--help` shows it.
pub const TIMEOUT_TEXT: &str = "30s";

/// Linear memory one wasm instance may grow to.
pub const MEMORY_LIMIT: usize = 256 << 20;
/// [`MEMORY_LIMIT`] as `--help` shows it.
pub const MEMORY_LIMIT_TEXT: &str = "256MiB";

/// How long a stop waits, at most, for work in flight.
pub const GRACE_PERIOD: Duration = Duration::from_secs(30);
/// [`GRACE_PERIOD`] as `--help` shows it.
pub const GRACE_PERIOD_TEXT: &str = "30s";

/// Calls one instance of an async actor (`wasya:actor@0.2.0`) takes at once: enough
/// that a step waiting on an API holds hundreds of calls in one interpreter; more
/// instances are made as these fill.
pub const INSTANCE_CONCURRENCY: usize = 256;

/// Messages of one async actor handled at once, where nothing sets it: calls of an
/// async actor mostly wait (about 50 KiB each), so an I/O-bound step is not capped
/// below the 10,000 waiting calls one process is meant to hold (40 instances' worth).
pub const ASYNC_CONCURRENCY: usize = 10_000;

/// WebAssembly instances alive at once, across all actors (the pooling allocator's size).
pub const MAX_INSTANCES: u32 = 256;

/// Elements one table of an instance may hold under the pooling allocator: enough for
/// CPython's and StarlingMonkey's function tables (wasmtime's own default).
pub const POOL_TABLE_ELEMENTS: usize = 20_000;

/// Bytes of runtime state (vmctx) one core instance may take under the pooling
/// allocator (wasmtime's own default).
pub const POOL_INSTANCE_SIZE: usize = 1 << 20;
/// [`POOL_INSTANCE_SIZE`] as `--help` shows it.
pub const POOL_INSTANCE_SIZE_TEXT: &str = "1MiB";

/// How often running guests are interrupted to yield and check their deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Prefix of queue names: actor `A` consumes `asya-A`, as in Asya.
pub const QUEUE_PREFIX: &str = "asya-";

/// The RabbitMQ topic exchange actors' queues are bound to, as in Asya.
pub const EXCHANGE: &str = "asya";

/// Redeliveries of one message before it goes to its queue's `-dlq`.
pub const MAX_REDELIVERIES: u32 = 5;

/// Messages one embedded queue holds, queued plus in flight.
pub const QUEUE_CAPACITY: usize = 10_000;

/// Versions of an actor kept recorded, the current one included (`--keep-versions`).
pub const KEEP_VERSIONS: usize = 5;
/// Actors a node keeps at most (`--max-actors`).
pub const MAX_ACTORS: usize = 1000;

/// MCP sessions a node keeps open at once (`--mcp-sessions`).
pub const MCP_SESSIONS: usize = 1024;
/// How long an MCP session may stay idle before the node closes it (a client then
/// initializes again, as the protocol has it).
pub const MCP_SESSION_IDLE: Duration = Duration::from_secs(120);

/// Submissions whose outcome a node remembers.
pub const OUTCOME_CAPACITY: usize = 100_000;

/// Bytes of ended envelopes a node keeps as outcomes.
pub const OUTCOME_MEMORY: usize = 256 << 20;
/// [`OUTCOME_MEMORY`] as `--help` shows it.
pub const OUTCOME_MEMORY_TEXT: &str = "256MiB";

/// How long a pool's shared store keeps outcomes.
pub const OUTCOME_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// [`OUTCOME_RETENTION`] as `--help` shows it.
pub const OUTCOME_RETENTION_TEXT: &str = "24h";
/// Connections each node keeps to the pool's store, at most.
pub const STORE_CONNECTIONS: u16 = 8;

/// Largest HTTP request body (a component upload, an envelope).
pub const MAX_BODY: usize = 64 << 20;
/// [`MAX_BODY`] as `--help` shows it.
pub const MAX_BODY_TEXT: &str = "64MiB";

/// Largest message the node puts on a queue (RabbitMQ 4's own default limit).
pub const MAX_ENVELOPE: usize = 16 << 20;
/// [`MAX_ENVELOPE`] as `--help` shows it.
pub const MAX_ENVELOPE_TEXT: &str = "16MiB";

/// Largest response frame read from an external runtime.
pub const FRAME_LIMIT: usize = 64 << 20;
/// [`FRAME_LIMIT`] as `--help` shows it.
pub const FRAME_LIMIT_TEXT: &str = "64MiB";

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// [`HEADER_READ_TIMEOUT`] as `--help` shows it.
pub const HEADER_READ_TIMEOUT_TEXT: &str = "10s";

/// The longest `?wait=` an outcome read may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// [`MAX_WAIT`] as `--help` shows it.
pub const MAX_WAIT_TEXT: &str = "5m";

/// How often an event stream with nothing new sends a keep-alive comment (Asya's
/// gateway sends one every 15 s too).
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The longest one outbound HTTP request of an actor may take (within its call's
/// own timeout).
pub const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(30);
/// [`OUTBOUND_TIMEOUT`] as `--help` shows it.
pub const OUTBOUND_TIMEOUT_TEXT: &str = "30s";

/// The largest response body an actor may read from one outbound request.
pub const OUTBOUND_BODY_LIMIT: usize = 16 << 20;
/// [`OUTBOUND_BODY_LIMIT`] as `--help` shows it.
pub const OUTBOUND_BODY_LIMIT_TEXT: &str = "16MiB";

/// Outbound requests one actor may have open at once: as many as an async actor's
/// calls, so its waits are not made to take turns.
pub const OUTBOUND_CONCURRENCY: usize = ASYNC_CONCURRENCY;

/// Calls open to one external runtime at once: Asya's runtime serves one at a time.
pub const SOCKET_CONNECTIONS: usize = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{parse_bytes, parse_duration};

    #[test]
    fn each_text_says_its_value() {
        for (text, value) in [
            (TIMEOUT_TEXT, TIMEOUT),
            (GRACE_PERIOD_TEXT, GRACE_PERIOD),
            (OUTCOME_RETENTION_TEXT, OUTCOME_RETENTION),
            (HEADER_READ_TIMEOUT_TEXT, HEADER_READ_TIMEOUT),
            (MAX_WAIT_TEXT, MAX_WAIT),
            (OUTBOUND_TIMEOUT_TEXT, OUTBOUND_TIMEOUT),
        ] {
            assert_eq!(parse_duration(text), Ok(value), "{text}");
        }
        for (text, value) in [
            (MEMORY_LIMIT_TEXT, MEMORY_LIMIT),
            (OUTCOME_MEMORY_TEXT, OUTCOME_MEMORY),
            (MAX_BODY_TEXT, MAX_BODY),
            (MAX_ENVELOPE_TEXT, MAX_ENVELOPE),
            (FRAME_LIMIT_TEXT, FRAME_LIMIT),
            (POOL_INSTANCE_SIZE_TEXT, POOL_INSTANCE_SIZE),
            (OUTBOUND_BODY_LIMIT_TEXT, OUTBOUND_BODY_LIMIT),
        ] {
            assert_eq!(parse_bytes(text), Ok(value), "{text}");
        }
        assert!(LISTEN_TEXT.parse::<std::net::SocketAddr>().is_ok());
    }
}
