//! The node's durable record of deployed actors.
//!
//! A record names an actor, its kind, its component versions and its options; the
//! components themselves are kept once per sha256 digest. [`Deployments`] writes the
//! record before it serves a change, so what a node serves after a restart is what
//! it answered before. The store is a trait so that one node can keep its record in
//! its data directory ([`crate::data_dir::deployments::FileStore`]) while a pool of nodes shares one.
//!
//! [`Deployments`]: crate::deployments::Deployments

pub mod postgres;

use crate::error_chain::{Cause, cause};
use crate::records::ActorRecord;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Why the store did not read or write.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// It could not be reached, or failed; `context` says what was being done.
    #[error("{context}")]
    Failed {
        context: String,
        #[source]
        source: Option<Cause>,
    },
    /// Another node changed the same actor first; the change was not made.
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// A failure of `context`, caused by `error`.
    pub fn failed(
        context: impl Into<String>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Failed {
            context: context.into(),
            source: Some(cause(error)),
        }
    }

    /// A failure with nothing underneath to tell.
    pub fn message(context: impl Into<String>) -> Self {
        StoreError::Failed {
            context: context.into(),
            source: None,
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        StoreError::failed("the data directory", error)
    }
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

    /// Every recorded actor that can be read, by name. A record that cannot be read is
    /// left out, and said by [`Store::unreadable`]: one broken record does not keep the
    /// others from being served.
    fn records(&self) -> BoxFuture<'_, Result<Vec<ActorRecord>, StoreError>>;

    /// The records the last [`Store::records`] could not read, and why.
    fn unreadable(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The bytes of the component with `digest`.
    fn component(&self, digest: String) -> BoxFuture<'_, Result<Arc<[u8]>, StoreError>>;

    /// Deletes the components of `digests` (and their compiled forms) that no recorded
    /// actor names any more; how many went.
    fn prune(&self, digests: Vec<String>) -> BoxFuture<'_, Result<usize, StoreError>>;
}
