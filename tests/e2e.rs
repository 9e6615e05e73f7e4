//! End-to-end tests: the real `wasya` binary, real example actors, over HTTP.
//! (`bundled_wit` checks the WASI WIT the node bundles against its wasmtime's.)
//!
//! `routing` is the routing matrix of the envelope rules; `limits` the sandbox and its
//! limits; `lifecycle` start, stop and configuration; `faults` hostile inputs and
//! faults, each a defect once found. Every case starts its own node.
//! `deploy_manifests` checks the Kubernetes manifests under `deploy/`, and `scaling`
//! plays KEDA against real nodes to prove the scaling loop they configure.
//! `partials` follows what actors emit while they run.
//! `sidecar` runs `wasya sidecar` from Asya's environment alone, each `ASYA_*` variable
//! doing what the README's table says. `progress` follows envelopes (SSE, Asya's gateway paths, a sidecar reporting to a
//! gateway); `asya_gateway` the rest of Asya's gateway (envelope views of tool calls,
//! tool deadlines, the reporting paths, results in S3), `mcp` calls pipelines with the official Python MCP client, and `traces`
//! checks exported spans at a real OTLP receiver; `store_tls` the pool's store over
//! TLS against a PostgreSQL server of the test's own. `durability` kills and restarts
//! nodes on the embedded queue's store, and fills its disk. `ui` drives the status
//! page in a real browser (headless Chromium through Selenium), and a page of another
//! site trying to change the node; `web_guard` the Host and Origin rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

mod asya_gateway;
mod async_actors;
mod bundled_wit;
mod cluster;
mod deploy;
mod deploy_manifests;
mod durability;
mod faults;
mod languages;
mod lifecycle;
mod limits;
mod mcp;
mod metrics;
mod options;
mod outbound;
mod partials;
mod pool;
mod progress;
mod routing;
mod scaling;
mod sidecar;
mod socket;
mod store_tls;
mod traces;
mod ui;
mod web_guard;
