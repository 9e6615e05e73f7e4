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

/// The store could not be read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        StoreError(error.to_string())
    }
}

/// Where deployments are recorded.
pub trait Store: Send + Sync + 'static {
    /// Records `record`, with the bytes of a component it names for the first time.
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
