//! Outbound HTTP for wasm actors: `wasi:http/outgoing-handler`, granted per actor.
//!
//! Most steps of an AI pipeline wait on someone else's API. An actor reaches the
//! network only through `wasi:http`, only to the hosts it is granted
//! ([`grant`]), through the node's one pooled client ([`client`]), under its own
//! timeout, body limit and concurrency ([`send`], [`body`]).

pub mod body;
pub mod client;
pub mod grant;
pub mod send;

pub use client::{ClientError, ClientSettings, OutboundClient};
pub use grant::{Grant, HostPattern, PatternError, Target};
pub use send::{Gate, OutboundHooks};

use std::time::Duration;

/// What one actor may do on the network.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundLimits {
    /// Where it may send requests; empty denies all.
    pub grant: Grant,
    /// The longest one request may take, headers and body (never past the call's own
    /// deadline).
    pub timeout: Duration,
    /// The largest response body it may read.
    pub body_limit: usize,
    /// Requests of the actor open at once; more wait for a turn.
    pub concurrency: usize,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            grant: Grant::default(),
            timeout: crate::defaults::OUTBOUND_TIMEOUT,
            body_limit: crate::defaults::OUTBOUND_BODY_LIMIT,
            concurrency: crate::defaults::OUTBOUND_CONCURRENCY,
        }
    }
}
