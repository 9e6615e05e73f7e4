//! The outcome record's writes to the data directory's journal.
//!
//! The bounded record in [`crate::outcomes`] decides what is kept; this says how that
//! is written: a submission noted in the order it became known, an ended branch
//! written before its end message is acked (the caller waits), progress events and
//! forgotten submissions written behind the hops. On the next start the journal hands
//! back what these wrote ([`super::journal::Recovered::submissions`]).

use super::journal::{Journal, JournalError, Op};
use crate::progress::ProgressEvent;
use crate::records::End;

/// Where a node's outcomes are kept across restarts, without a pool.
#[derive(Clone)]
pub struct OutcomeJournal {
    journal: Journal,
}

impl OutcomeJournal {
    /// Writes to `journal`.
    pub fn new(journal: Journal) -> Self {
        OutcomeJournal { journal }
    }

    /// Notes submission `id`, numbered after every one noted before it.
    pub fn submitted(&self, id: &str) {
        self.journal.write_behind(vec![Op::Submitted {
            id: id.to_owned(),
            order: self.journal.next_seq(),
        }]);
    }

    /// Forgets submission `id` (evicted, or withdrawn).
    pub fn forget(&self, id: &str) {
        self.journal
            .write_behind(vec![Op::Forget { id: id.to_owned() }]);
    }

    /// Writes an ended branch of submission `root`; returns once it is on disk.
    pub async fn ended(
        &self,
        root: &str,
        branch: String,
        end: End,
        size: usize,
        envelope: Vec<u8>,
    ) -> Result<(), JournalError> {
        self.journal
            .write(vec![Op::Ended {
                root: root.to_owned(),
                branch,
                end,
                size: size as u64,
                envelope,
            }])
            .await
    }

    /// Writes progress events of submission `root` behind the hop (an event that
    /// cannot be encoded is left out).
    pub fn events(&self, root: &str, events: Vec<ProgressEvent>) {
        let ops: Vec<Op> = events
            .into_iter()
            .filter_map(|event| {
                let json = serde_json::to_vec(&event).ok()?;
                Some(Op::Event {
                    root: root.to_owned(),
                    seq: event.seq,
                    event: json,
                })
            })
            .collect();
        if !ops.is_empty() {
            self.journal.write_behind(ops);
        }
    }
}
