//! An envelope as Asya's gateway shows it: the outcome, its progress events and what
//! the submission was, for a submission or for one of its fan-out children.
//!
//! Asya's gateway keeps every fan-out child as an envelope of its own (`{id}-{i}`,
//! with `parent_id`), registered by the sidecar that split it (`POST /envelopes`).
//! Here a child's events and end are kept in its root's record (the node folds a
//! fan-out into its submission), so a child's view is read out of its root's:
//! its events, and how it ended, picked by its id. Children a sidecar registered are
//! remembered with their parent (bounded like the submissions), so one that has not
//! reported anything yet is still found, pending.

use super::record::{EndedView, OutcomeView, Status};
use super::{Inner, Lookup, Outcomes, Submission};
use crate::progress::ProgressEvent;
use crate::records::End;
use std::sync::Arc;

/// Ancestors looked through for a child's root, at most.
const ANCESTORS: usize = 16;

/// What is known of one envelope, for Asya's view of it.
#[derive(Debug, Clone)]
pub struct Details {
    /// Its outcome (a child's: its own end alone).
    pub view: OutcomeView,
    /// Its progress events, in order (a child's: those of its own hops).
    pub events: Vec<ProgressEvent>,
    /// What it was when this node took it in, where it did.
    pub submission: Option<Arc<Submission>>,
    /// The envelope it was split from, for a fan-out child.
    pub parent_id: Option<String>,
}

/// What a lookup of an envelope found.
#[derive(Debug, Clone)]
pub enum DetailsLookup {
    /// What is known of it.
    Found(Box<Details>),
    /// Known once, and dropped to stay within the store's bounds.
    Evicted,
    /// Never known here.
    Unknown,
}

impl Outcomes {
    /// Envelope `id` as Asya's gateway would show it: a submission, or a fan-out child
    /// of one this node keeps.
    pub async fn details(&self, id: &str) -> DetailsLookup {
        match self.get(id).await {
            Lookup::Found(view) => {
                let events = self.events(id).await;
                let inner = self.lock();
                let submission = inner
                    .records
                    .get(id)
                    .and_then(|record| record.submission.clone());
                let parent_id = submission
                    .as_ref()
                    .and_then(|submission| submission.parent_id.clone())
                    .or_else(|| inner.parents.get(id).cloned())
                    .or_else(|| {
                        view.ended
                            .iter()
                            .find(|ended| ended.envelope.id == id)
                            .and_then(|ended| ended.envelope.parent_id.clone())
                    });
                DetailsLookup::Found(Box::new(Details {
                    view,
                    events,
                    submission,
                    parent_id,
                }))
            }
            Lookup::Evicted => DetailsLookup::Evicted,
            Lookup::Unknown => self.child_details(id),
        }
    }

    /// A fan-out child `id`, read out of its root's record here.
    fn child_details(&self, id: &str) -> DetailsLookup {
        let inner = self.lock();
        let registered = inner.parents.get(id).cloned();
        let Some(root) = root_of(&inner, id) else {
            return match registered {
                Some(parent) => DetailsLookup::Found(Box::new(pending_child(id, parent))),
                None => DetailsLookup::Unknown,
            };
        };
        let Some(record) = inner.records.get(&root) else {
            return DetailsLookup::Unknown;
        };
        let events: Vec<ProgressEvent> = record
            .events
            .iter()
            .filter(|event| event.hop.envelope_id == id)
            .cloned()
            .collect();
        let ended = record.ended_envelope(id);
        if events.is_empty() && ended.is_none() && registered.is_none() {
            return DetailsLookup::Unknown;
        }
        let parent_id = registered
            .or_else(|| ended.and_then(|(_, envelope)| envelope.parent_id.clone()))
            .or_else(|| id.rsplit_once('-').map(|(parent, _)| parent.to_owned()));
        let view = match ended {
            Some((end, envelope)) => {
                let payload = envelope.payload.clone();
                let (results, errors, status) = match end {
                    End::Happy => (vec![payload], Vec::new(), Status::Succeeded),
                    End::Error => (Vec::new(), vec![payload], Status::Failed),
                };
                OutcomeView {
                    id: id.to_owned(),
                    status,
                    results,
                    errors,
                    ended: vec![EndedView {
                        end: end.actor_name(),
                        envelope: envelope.clone(),
                    }],
                }
            }
            None => pending_view(id),
        };
        DetailsLookup::Found(Box::new(Details {
            view,
            events,
            submission: None,
            parent_id,
        }))
    }

    /// Remembers that a sidecar split `id` from `parent_id` (Asya's `POST /envelopes`).
    pub fn register_child(&self, id: &str, parent_id: &str) {
        let mut inner = self.lock();
        if inner
            .parents
            .insert(id.to_owned(), parent_id.to_owned())
            .is_none()
        {
            inner.parents_order.push_back(id.to_owned());
        }
        while inner.parents_order.len() > self.limits.count {
            if let Some(oldest) = inner.parents_order.pop_front() {
                inner.parents.remove(&oldest);
            }
        }
    }

    /// The submission whose record keeps envelope `id`'s progress: its own, or its
    /// root's for a fan-out child of a submission known here.
    pub fn record_of(&self, id: &str) -> String {
        let inner = self.lock();
        if inner.records.contains_key(id) {
            return id.to_owned();
        }
        root_of(&inner, id).unwrap_or_else(|| id.to_owned())
    }
}

/// The nearest ancestor of `id` with a record here: through the parents sidecars
/// registered, else through fan-out ids (`{parent}-{index}`).
fn root_of(inner: &Inner, id: &str) -> Option<String> {
    let mut current = id.to_owned();
    for _ in 0..ANCESTORS {
        let parent = match inner.parents.get(&current) {
            Some(parent) => parent.clone(),
            None => {
                let (parent, index) = current.rsplit_once('-')?;
                if index.is_empty() || !index.bytes().all(|byte| byte.is_ascii_digit()) {
                    return None;
                }
                parent.to_owned()
            }
        };
        if inner.records.contains_key(&parent) {
            return Some(parent);
        }
        current = parent;
    }
    None
}

fn pending_view(id: &str) -> OutcomeView {
    OutcomeView {
        id: id.to_owned(),
        status: Status::Pending,
        results: Vec::new(),
        errors: Vec::new(),
        ended: Vec::new(),
    }
}

fn pending_child(id: &str, parent: String) -> Details {
    Details {
        view: pending_view(id),
        events: Vec::new(),
        submission: None,
        parent_id: Some(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::branch::Branch;
    use crate::outcomes::tests::envelope;
    use serde_json::json;

    fn found(lookup: DetailsLookup) -> Details {
        match lookup {
            DetailsLookup::Found(details) => *details,
            other => panic!("not found: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_fan_out_child_is_read_out_of_its_roots_record() {
        let outcomes = Outcomes::default();
        outcomes.submitted("r").await;
        let child = |index: u32| {
            let mut headers = crate::envelope::Headers::new();
            Branch::default()
                .child("r", index, 2)
                .write_to(&mut headers);
            let mut envelope = envelope(&format!("r-{index}"), headers, json!({"i": index}));
            envelope.parent_id = Some("r".into());
            envelope
        };
        outcomes.record(End::Happy, child(1), 1).await.unwrap();
        let details = found(outcomes.details("r-1").await);
        assert_eq!(details.parent_id.as_deref(), Some("r"));
        assert_eq!(details.view.status, Status::Succeeded);
        assert_eq!(details.view.results, vec![json!({"i": 1})]);
        assert!(matches!(
            outcomes.details("r-7").await,
            DetailsLookup::Unknown
        ));
        assert!(matches!(
            outcomes.details("x-1").await,
            DetailsLookup::Unknown
        ));
    }

    #[tokio::test]
    async fn a_registered_child_reads_as_pending_and_its_progress_goes_to_its_root() {
        let outcomes = Outcomes::default();
        outcomes.submitted("job").await;
        outcomes.register_child("job-1", "job");
        assert_eq!(outcomes.record_of("job-1"), "job");
        assert_eq!(outcomes.record_of("other"), "other");
        let details = found(outcomes.details("job-1").await);
        assert_eq!(details.view.status, Status::Pending);
        assert_eq!(details.parent_id.as_deref(), Some("job"));
    }
}
