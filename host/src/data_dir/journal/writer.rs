//! The one thread that writes the store, committing in groups.
//!
//! It takes the first entry waiting, then every other entry already queued (up to
//! [`MAX_GROUP`]), applies them all in one transaction and syncs it once; the writers
//! waiting on any of them are answered together. While a sync runs, new entries
//! queue up for the next one, so the more the node is asked, the more each sync
//! carries. A failed commit (a full disk) fails every entry it held; the engine then
//! refuses further writes on that handle, so the file is opened again before the next
//! commit, and keeps failing entries, clearly, until the disk takes writes again.

use super::layout::{self, DELIVERIES, ENDED, EVENTS, MESSAGES, SUBMISSIONS};
use super::{Entry, JournalError, JournalOptions, Op};
use crate::metrics::metrics;
use redb::{Database, ReadableTable, WriteTransaction};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;

/// Entries committed together, at most.
pub(super) const MAX_GROUP: usize = 4096;

pub(super) fn spawn(
    db: Database,
    path: PathBuf,
    entries: mpsc::Receiver<Entry>,
    healthy: Arc<AtomicBool>,
    options: JournalOptions,
) -> Result<std::thread::JoinHandle<()>, JournalError> {
    let writer = Writer {
        db: Some(db),
        path: path.clone(),
        healthy,
        max_group: options.max_group.max(1),
    };
    std::thread::Builder::new()
        .name("wasya-store".into())
        .spawn(move || writer.run(entries))
        .map_err(|error| JournalError::Open {
            path,
            source: crate::error_chain::cause(error),
        })
}

struct Writer {
    /// `None` after a failed commit, until the file opens again.
    db: Option<Database>,
    path: PathBuf,
    healthy: Arc<AtomicBool>,
    max_group: usize,
}

impl Writer {
    fn run(mut self, mut entries: mpsc::Receiver<Entry>) {
        let mut group = Vec::with_capacity(self.max_group);
        while let Some(first) = entries.blocking_recv() {
            group.push(first);
            while group.len() < self.max_group {
                match entries.try_recv() {
                    Ok(entry) => group.push(entry),
                    Err(_) => break,
                }
            }
            let last = group.iter().any(|entry| entry.last);
            let result = self.commit(&group);
            for entry in group.drain(..) {
                match entry.done {
                    Some(done) => {
                        let _ = done.send(result.clone());
                    }
                    // A write behind that failed with its commit is gone: counted.
                    None if result.is_err() && !entry.ops.is_empty() => {
                        metrics().store_writes_dropped.inc();
                    }
                    None => {}
                }
            }
            if last {
                break;
            }
        }
        // Dropping the handle closes the file cleanly.
        drop(self.db.take());
        tracing::debug!("the store is closed");
    }

    fn commit(&mut self, group: &[Entry]) -> Result<(), JournalError> {
        if group.iter().all(|entry| entry.ops.is_empty()) {
            return Ok(());
        }
        let m = metrics();
        let started = Instant::now();
        let result = self.try_commit(group);
        m.store_commit_duration
            .observe(started.elapsed().as_secs_f64());
        m.store_group_entries.observe(group.len() as f64);
        match &result {
            Ok(()) => {
                m.store_commits.with_label_values(&["ok"]).inc();
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!(path = %self.path.display(), "the store takes writes again");
                }
            }
            Err(error) => {
                m.store_commits.with_label_values(&["failed"]).inc();
                if self.healthy.swap(false, Ordering::Relaxed) {
                    tracing::error!(path = %self.path.display(), %error, "the store cannot write; envelopes are refused until it can");
                }
                // The engine refuses every write after a failed one: open it again.
                self.db = None;
            }
        }
        result
    }

    fn try_commit(&mut self, group: &[Entry]) -> Result<(), JournalError> {
        let failed = |error: &dyn std::fmt::Display| JournalError::Write(error.to_string());
        if self.db.is_none() {
            let db = redb::Builder::new()
                .create(&self.path)
                .map_err(|error| failed(&error))?;
            self.db = Some(db);
        }
        let Some(db) = &self.db else {
            return Err(JournalError::Closed);
        };
        let write = db.begin_write().map_err(|error| failed(&error))?;
        apply(&write, group).map_err(|error| failed(&error))?;
        write.commit().map_err(|error| failed(&error))
    }
}

fn apply(write: &WriteTransaction, group: &[Entry]) -> Result<(), redb::Error> {
    let mut messages = write.open_table(MESSAGES)?;
    let mut deliveries = write.open_table(DELIVERIES)?;
    let mut submissions = write.open_table(SUBMISSIONS)?;
    let mut ended = write.open_table(ENDED)?;
    let mut events = write.open_table(EVENTS)?;
    for op in group.iter().flat_map(|entry| &entry.ops) {
        match op {
            Op::PutMessage {
                seq,
                queue,
                redeliveries,
                body,
                lineage,
            } => {
                let value = layout::encode_message(queue, *redeliveries, lineage.as_ref(), body);
                messages.insert(*seq, value.as_slice())?;
            }
            Op::RemoveMessage { seq } => {
                messages.remove(*seq)?;
                deliveries.remove(*seq)?;
            }
            Op::Delivery {
                seq,
                redeliveries,
                in_flight,
            } => {
                // A mark for a message settled already would outlive it.
                if messages.get(*seq)?.is_some() {
                    deliveries.insert(*seq, (*redeliveries, *in_flight))?;
                }
            }
            Op::Submitted { id, order } => {
                if submissions.get(id.as_str())?.is_none() {
                    submissions.insert(id.as_str(), *order)?;
                }
            }
            Op::Ended {
                root,
                branch,
                end,
                size,
                envelope,
            } => {
                let value = layout::encode_end(*end, *size, envelope);
                ended.insert((root.as_str(), branch.as_str()), value.as_slice())?;
            }
            Op::Event { root, seq, event } => {
                events.insert((root.as_str(), *seq), event.as_slice())?;
            }
            Op::Forget { id } => {
                submissions.remove(id.as_str())?;
                let branches: Vec<String> = ended
                    .range((id.as_str(), "")..)?
                    .map_while(|row| {
                        let (key, _) = row.ok()?;
                        let (root, branch) = key.value();
                        (root == id).then(|| branch.to_owned())
                    })
                    .collect();
                for branch in branches {
                    ended.remove((id.as_str(), branch.as_str()))?;
                }
                events.retain_in((id.as_str(), 0)..=(id.as_str(), u64::MAX), |_, _| false)?;
            }
        }
    }
    Ok(())
}
