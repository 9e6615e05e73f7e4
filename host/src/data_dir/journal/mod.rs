//! The data directory's store: what the embedded queue accepted, and the outcomes
//! and progress of submissions, kept across a crash.
//!
//! One [redb] file (`queue.redb`) holds it all; redb is an embedded, crash-safe
//! key-value store with checksummed pages, so a record is either whole or absent
//! after a crash. One writer thread owns the file and commits in groups
//! ([`writer`]): whatever was asked while one commit was being synced goes into the
//! next, so one `fsync` makes many envelopes durable and throughput survives it.
//!
//! Two kinds of write: [`Journal::write`] returns once its ops are on disk (a send
//! on the embedded queue, an ended branch); [`Journal::write_behind`] only queues
//! them (an ack, a delivery mark, a progress event). The writer takes both in the
//! order they were asked, so an ack queued behind is never on disk before the
//! durable writes that came before it: a crash can make a message be delivered
//! again, never lost. The queue of ops is bounded by what feeds it: every hop waits
//! for its own durable send, and that send is written after everything queued
//! before it.
//!
//! [`Journal::open`] refuses a store it cannot read, or one of a newer format, and
//! leaves it as it was; it never starts empty over it.

mod layout;
mod recover;
mod writer;

pub use layout::FORMAT;
pub use recover::{Recovered, StoredEnd, StoredMessage, StoredSubmission};

use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// The file the store lives in, inside the data directory.
pub const FILE_NAME: &str = "queue.redb";

/// Entries waiting for the writer, at most: a write waits past it, a write behind is
/// dropped (see [`Journal::write_behind`]).
const QUEUED_ENTRIES: usize = 16_384;

/// Why the store cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The store file is damaged or is not a store.
    #[error(
        "the store {path} cannot be read: {detail}. It was left as it is; move it aside to start with empty queues, or restore it from a backup"
    )]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What the store engine reported.
        detail: String,
    },
    /// The store was written by a newer wasya, in a format this one cannot read.
    #[error(
        "the store {path} was written in format {found}, newer than this wasya reads ({supported}). It was left as it is; run a newer wasya on it"
    )]
    NewerFormat {
        /// The store file.
        path: PathBuf,
        /// The format version the store was written in.
        found: u64,
        /// The newest format version this wasya reads.
        supported: u64,
    },
    /// Another process holds the store open.
    #[error(
        "the store {path} is in use by another process (is another node running on this data directory?)"
    )]
    InUse {
        /// The store file.
        path: PathBuf,
    },
    /// The store could not be created or opened.
    #[error("cannot open the store {path}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: crate::error_chain::Cause,
    },
    /// A commit failed (the disk is full, or failing); nothing it held was accepted.
    #[error("the node's store could not write: {0}")]
    Write(String),
    /// The store's writer has stopped, so nothing more can be written.
    #[error("the node's store is closed")]
    Closed,
}

/// One change to the store.
#[derive(Debug)]
pub enum Op {
    /// A message on queue `queue`, kept until removed.
    PutMessage {
        /// The message's key, from [`Journal::next_seq`].
        seq: u64,
        /// The queue the message is on.
        queue: Arc<str>,
        /// How many times the message was delivered before without being settled.
        redeliveries: u32,
        /// The message's bytes.
        body: Bytes,
        /// A fan-out child's bookkeeping, kept beside the body.
        lineage: Option<crate::branch::Lineage>,
    },
    /// The message is settled (acked, or moved): it and its delivery mark go.
    RemoveMessage {
        /// The message's key.
        seq: u64,
    },
    /// A delivery of the message: how often it was delivered before, and whether a
    /// consumer holds it now (one held at a crash is delivered again, counted).
    Delivery {
        /// The message's key.
        seq: u64,
        /// How many times the message was delivered before this delivery.
        redeliveries: u32,
        /// True while a consumer holds the message.
        in_flight: bool,
    },
    /// A submission the node took in, numbered in the order it was known.
    Submitted {
        /// The submission's id.
        id: String,
        /// Its position in the order submissions became known.
        order: u64,
    },
    /// An ended branch of submission `root`, as its end actor took it.
    Ended {
        /// The id of the submission the branch belongs to.
        root: String,
        /// The branch's path, as the `wasya-branch` header writes it (empty for the root).
        branch: String,
        /// Which end actor took the envelope.
        end: crate::records::End,
        /// The envelope's size on the queue, in bytes.
        size: u64,
        /// The envelope as JSON bytes.
        envelope: Vec<u8>,
    },
    /// A progress event of submission `root`, numbered `seq` (JSON).
    Event {
        /// The id of the submission the event belongs to.
        root: String,
        /// The event's number within its submission.
        seq: u64,
        /// The event as JSON bytes.
        event: Vec<u8>,
    },
    /// The submission went (evicted or withdrawn): its ends and events go too.
    Forget {
        /// The submission's id.
        id: String,
    },
}

/// Ops the writer commits together, and who waits for them.
struct Entry {
    ops: Vec<Op>,
    done: Option<oneshot::Sender<Result<(), JournalError>>>,
    /// The writer stops after this entry.
    last: bool,
}

struct Shared {
    entries: mpsc::Sender<Entry>,
    next_seq: AtomicU64,
    /// False from a failed commit until one succeeds.
    healthy: Arc<AtomicBool>,
    stopped: tokio::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The data directory's store, shared by the embedded queue and the outcomes.
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Journal").finish_non_exhaustive()
    }
}

/// How the writer commits (the benchmark turns grouping off to show what it buys).
#[derive(Debug, Clone, Copy)]
pub struct JournalOptions {
    /// Entries committed together, at most (1: one commit per write).
    pub max_group: usize,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            max_group: writer::MAX_GROUP,
        }
    }
}

impl Journal {
    /// Opens (or creates) the store in `dir` and reads back what it holds.
    pub async fn open(dir: &Path) -> Result<(Journal, Recovered), JournalError> {
        Self::open_with(dir, JournalOptions::default()).await
    }

    /// [`Journal::open`] with the writer's options.
    pub async fn open_with(
        dir: &Path,
        options: JournalOptions,
    ) -> Result<(Journal, Recovered), JournalError> {
        let path = dir.join(FILE_NAME);
        let opening = path.clone();
        let dir = dir.to_owned();
        let opened = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|error| JournalError::Open {
                path: opening.clone(),
                source: crate::error_chain::cause(error),
            })?;
            let db = layout::open(&opening)?;
            let recovered = recover::read(&db, &opening)?;
            Ok::<_, JournalError>((db, recovered))
        })
        .await;
        let (db, recovered) = match opened {
            Ok(result) => result?,
            // The engine asserts on some damage instead of returning an error.
            Err(join) => {
                return Err(JournalError::Corrupt {
                    path,
                    detail: format!("reading it failed ({join})"),
                });
            }
        };
        let (entries, receiver) = mpsc::channel(QUEUED_ENTRIES);
        let healthy = Arc::new(AtomicBool::new(true));
        let thread = writer::spawn(db, path, receiver, healthy.clone(), options)?;
        let journal = Journal {
            shared: Arc::new(Shared {
                entries,
                next_seq: AtomicU64::new(recovered.next_seq),
                healthy,
                stopped: tokio::sync::Mutex::new(Some(thread)),
            }),
        };
        Ok((journal, recovered))
    }

    /// A new number, larger than any the store holds: the key of a message, the
    /// order of a submission.
    pub fn next_seq(&self) -> u64 {
        self.shared.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the last commit succeeded.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Writes `ops` in one commit; returns once they are on disk. Waits while the
    /// queue of entries is full (the disk is slower than the node).
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), JournalError> {
        let (done, written) = oneshot::channel();
        self.shared
            .entries
            .send(Entry {
                ops,
                done: Some(done),
                last: false,
            })
            .await
            .map_err(|_| JournalError::Closed)?;
        written.await.unwrap_or(Err(JournalError::Closed))
    }

    /// Queues `ops` for the next commit, in order after every write asked before.
    ///
    /// Nothing the node acknowledges waits on a write behind (an accepted envelope
    /// and an ended one are [`Journal::write`]s): these are its bookkeeping (a
    /// delivery mark, an ack's removal, progress), whose loss costs at most a
    /// redelivery or a progress event. So when the queue is full, or a commit fails,
    /// they are dropped and counted (`wasya_store_writes_dropped_total`) rather than
    /// held in memory without bound.
    pub fn write_behind(&self, ops: Vec<Op>) {
        let entry = Entry {
            ops,
            done: None,
            last: false,
        };
        match self.shared.entries.try_send(entry) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::metrics::metrics().store_writes_dropped.inc();
                tracing::warn!(
                    "the store's queue is full; a write behind was dropped (at most a redelivery or a progress event is lost)"
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("the store is closed; a write behind was dropped");
            }
        }
    }

    /// Commits what is queued and closes the store; later writes fail as closed.
    pub async fn close(&self) {
        let (done, written) = oneshot::channel();
        let entry = Entry {
            ops: Vec::new(),
            done: Some(done),
            last: true,
        };
        if self.shared.entries.send(entry).await.is_ok() {
            let _ = written.await;
        }
        if let Some(thread) = self.shared.stopped.lock().await.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

#[cfg(test)]
mod tests;
