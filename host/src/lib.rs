//! wasya: a node for actor pipelines.
//!
//! The node takes envelopes from queues, runs the actor each one is addressed to, and
//! routes the results on, as the Asya actor mesh does. The crate is split so that each
//! concern can be tested alone:
//!
//! - [`envelope`] and [`routing`] are plain data and pure functions: what an envelope is
//!   and where its results go; no I/O.
//! - [`transport`] moves bytes between queues (embedded in memory, or a broker).
//! - [`runtime`] runs one actor call (a WebAssembly component in-process).
//! - [`router`] is the loop that ties them together: receive, run, route, ack.
//! - [`outcomes`] records what reached `happy-end` / `error-end`; [`api`] serves it.

pub mod actors;
pub mod api;
pub mod branch;
pub mod cli;
pub mod config;
pub mod envelope;
pub mod lag;
pub mod node;
pub mod outcomes;
pub mod queues;
pub mod router;
pub mod routing;
pub mod runtime;
pub mod transport;

/// The example actors built from `guests/` and embedded in the binary, as
/// `(name, component bytes)`.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_actors.rs"));
}
