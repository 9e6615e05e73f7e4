//! The node's durable record of deployed actors.
//!
//! A record names an actor, its kind, its component versions and its options; the
//! components themselves are kept once per sha256 digest. [`Deployments`] writes the
//! record before it serves a change, so what a node serves after a restart is what
//! it answered before. The store is a trait so that one node can keep its record in
//! its data directory ([`files::FileStore`]) while a pool of nodes shares one.
//!
//! [`Deployments`]: crate::deployments::Deployments

pub mod files;
pub mod postgres;

use crate::deployments::options::{ActorKind, ActorOptions};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One version of a deployed wasm actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Version {
    pub version: u32,
    pub digest: String,
}

/// What the store keeps of one actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorRecord {
    pub name: String,
    #[serde(default)]
    pub kind: ActorKind,
    /// Uploaded versions, oldest first; empty for a bundled actor given options only,
    /// or a socket actor.
    #[serde(default)]
    pub versions: Vec<Version>,
    #[serde(default)]
    pub options: ActorOptions,
}

impl ActorRecord {
    pub fn current(&self) -> Option<&Version> {
        self.versions.last()
    }
}

/// Why the store did not read or write.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// It could not be reached, or failed.
    #[error("{0}")]
    Failed(String),
    /// Another node changed the same actor first; the change was not made.
    #[error("{0}")]
    Conflict(String),
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        StoreError::Failed(error.to_string())
    }
}

/// Whether `next` may replace `stored`: the same versions (a change of options), or
/// those versions and one more (an upload). Anything else means another node changed
/// the actor since this one read it.
pub fn follows(stored: &[Version], next: &[Version]) -> bool {
    next == stored || (next.len() == stored.len() + 1 && next.starts_with(stored))
}

/// Where deployments are recorded.
pub trait Store: Send + Sync + 'static {
    /// Records `record`, with the bytes of a component it names for the first time.
    /// A store several nodes write fails with [`StoreError::Conflict`] when the stored
    /// versions are not the ones `record` extends (see [`follows`]); a node's own
    /// store has one writer, serialised by [`Deployments`], and needs no check.
    fn save(
        &self,
        record: ActorRecord,
        component: Option<(String, Arc<[u8]>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Forgets an actor (its components stay: another actor may use them).
    fn delete(&self, name: String) -> BoxFuture<'_, Result<(), StoreError>>;

    /// One actor's record, if any.
    fn record(&self, name: String) -> BoxFuture<'_, Result<Option<ActorRecord>, StoreError>>;

    /// Every recorded actor, by name.
    fn records(&self) -> BoxFuture<'_, Result<Vec<ActorRecord>, StoreError>>;

    /// The bytes of the component with `digest`.
    fn component(&self, digest: String) -> BoxFuture<'_, Result<Arc<[u8]>, StoreError>>;
}
