//! Reading back, at start, what the store holds: the queued messages in the order
//! they were accepted, and the submissions with their ended branches and events.
//!
//! A message a consumer held when the node stopped is marked in flight; it is
//! delivered again with its redelivery count raised, as a broker does with the
//! messages of a consumer that went away.

use super::JournalError;
use super::layout::{self, DELIVERIES, ENDED, EVENTS, MESSAGES, SUBMISSIONS};
use crate::records::End;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A message the store held.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// The message's key in the store.
    pub seq: u64,
    /// The queue the message is on.
    pub queue: Arc<str>,
    /// Deliveries before this one, the one cut off by the stop included.
    pub redeliveries: u32,
    /// Whether a consumer held it when the node stopped.
    pub was_in_flight: bool,
    /// The message's bytes.
    pub body: Bytes,
    /// A fan-out child's bookkeeping, kept beside the body.
    pub lineage: Option<crate::branch::Lineage>,
}

/// An ended branch the store held.
#[derive(Debug, Clone)]
pub struct StoredEnd {
    /// Which end actor took the envelope.
    pub end: End,
    /// The envelope's size on the queue, in bytes.
    pub size: usize,
    /// The envelope as JSON bytes.
    pub envelope: Vec<u8>,
}

/// A submission the store held.
#[derive(Debug, Clone, Default)]
pub struct StoredSubmission {
    /// The submission's id.
    pub id: String,
    /// Its position in the order submissions became known.
    pub order: u64,
    /// Its ended branches.
    pub ended: Vec<StoredEnd>,
    /// Progress events as JSON, in order.
    pub events: Vec<Vec<u8>>,
}

/// What the store held at open.
#[derive(Debug, Default)]
pub struct Recovered {
    /// In the order they were accepted.
    pub messages: Vec<StoredMessage>,
    /// Oldest first.
    pub submissions: Vec<StoredSubmission>,
    /// Larger than every number in the store.
    pub next_seq: u64,
}

/// Reads the whole store.
pub(super) fn read(db: &Database, path: &Path) -> Result<Recovered, JournalError> {
    let bad = |error: &dyn std::fmt::Display| layout::corrupt(path, error);
    let read = db.begin_read().map_err(|error| bad(&error))?;
    let mut next_seq = 1;

    let deliveries = read.open_table(DELIVERIES).map_err(|error| bad(&error))?;
    let mut marks = HashMap::new();
    for row in deliveries.iter().map_err(|error| bad(&error))? {
        let (seq, mark) = row.map_err(|error| bad(&error))?;
        marks.insert(seq.value(), mark.value());
    }
    let table = read.open_table(MESSAGES).map_err(|error| bad(&error))?;
    let mut messages = Vec::new();
    for row in table.iter().map_err(|error| bad(&error))? {
        let (seq, value) = row.map_err(|error| bad(&error))?;
        let seq = seq.value();
        let Some(layout::DecodedMessage {
            queue,
            redeliveries: stored,
            lineage,
            body,
        }) = layout::decode_message(value.value())
        else {
            return Err(bad(&format!("message {seq} is not in the expected layout")));
        };
        let (redeliveries, was_in_flight) = match marks.get(&seq) {
            Some(&(count, true)) => (count.saturating_add(1), true),
            Some(&(count, false)) => (count, false),
            None => (stored, false),
        };
        next_seq = next_seq.max(seq + 1);
        messages.push(StoredMessage {
            seq,
            queue,
            redeliveries,
            was_in_flight,
            body,
            lineage,
        });
    }

    let table = read.open_table(SUBMISSIONS).map_err(|error| bad(&error))?;
    let mut submissions: HashMap<String, StoredSubmission> = HashMap::new();
    for row in table.iter().map_err(|error| bad(&error))? {
        let (id, order) = row.map_err(|error| bad(&error))?;
        let (id, order) = (id.value().to_owned(), order.value());
        next_seq = next_seq.max(order + 1);
        submissions.insert(
            id.clone(),
            StoredSubmission {
                id,
                order,
                ..StoredSubmission::default()
            },
        );
    }
    let table = read.open_table(ENDED).map_err(|error| bad(&error))?;
    for row in table.iter().map_err(|error| bad(&error))? {
        let (key, value) = row.map_err(|error| bad(&error))?;
        let (root, branch) = key.value();
        let Some((end, size, envelope)) = layout::decode_end(value.value()) else {
            return Err(bad(&format!(
                "an ended branch of {root} ({branch}) is not in the expected layout"
            )));
        };
        // A branch whose submission was not noted (it came from elsewhere) is kept
        // in the order of the ends read.
        let submission = submissions
            .entry(root.to_owned())
            .or_insert_with(|| StoredSubmission {
                id: root.to_owned(),
                order: u64::MAX,
                ..StoredSubmission::default()
            });
        submission.ended.push(StoredEnd {
            end,
            size: usize::try_from(size).unwrap_or(usize::MAX),
            envelope: envelope.to_vec(),
        });
    }
    let table = read.open_table(EVENTS).map_err(|error| bad(&error))?;
    for row in table.iter().map_err(|error| bad(&error))? {
        let (key, value) = row.map_err(|error| bad(&error))?;
        let (root, _) = key.value();
        if let Some(submission) = submissions.get_mut(root) {
            submission.events.push(value.value().to_vec());
        }
    }
    let mut submissions: Vec<StoredSubmission> = submissions.into_values().collect();
    submissions.sort_by_key(|submission| submission.order);
    Ok(Recovered {
        messages,
        submissions,
        next_seq,
    })
}
