//! Fan-out bookkeeping that travels with the envelope.
//!
//! An envelope submitted to the node may fan out into many, on any node of a pool, and
//! each branch ends on its own at `happy-end` or `error-end`. To say when a submission
//! is complete without a shared counter, every fan-out child carries two headers: the
//! id of the submission it descends from (`wasya-root`) and its path in the fan-out
//! tree (`wasya-branch`, e.g. `1/3.0/2`: child 1 of 3, then child 0 of 2). The end
//! actors put the paths of the ended branches into a [`Completion`] tree; the
//! submission is complete when every fan-out in it has all its children ended.
//!
//! Envelopes that never fanned out carry no extra header.
//!
//! The two headers are the node's bookkeeping, not the envelope's: inside the node they
//! sit in the envelope's headers, but they never travel in the JSON body, which Asya's
//! runtimes and consumers read. A message carries them beside its body as a
//! [`Lineage`] (on RabbitMQ as AMQP headers, in the embedded queue's store beside the
//! body), and an actor is called without them.

use crate::envelope::Headers;
use std::collections::HashMap;

/// Header naming the id of the submission an envelope descends from.
pub const ROOT_HEADER: &str = "wasya-root";
/// Header holding an envelope's path in the fan-out tree of its submission.
pub const BRANCH_HEADER: &str = "wasya-branch";

/// Whether a header is the node's fan-out bookkeeping (kept out of the JSON body and
/// out of what actors see).
pub fn is_bookkeeping(name: &str) -> bool {
    name == ROOT_HEADER || name == BRANCH_HEADER
}

/// A fan-out child's bookkeeping as it travels beside a message's body: the two
/// headers' values, as they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// `wasya-root`: the id of the submission.
    pub root: String,
    /// `wasya-branch`: the path in its fan-out tree.
    pub path: String,
}

impl Lineage {
    /// The bookkeeping in `headers`, where both headers are there.
    pub fn of(headers: &Headers) -> Option<Lineage> {
        Some(Lineage {
            root: headers.get(ROOT_HEADER)?.clone(),
            path: headers.get(BRANCH_HEADER)?.clone(),
        })
    }

    /// Puts the bookkeeping back into `headers` (a message read from a queue).
    pub fn restore_into(&self, headers: &mut Headers) {
        headers.insert(ROOT_HEADER.to_owned(), self.root.clone());
        headers.insert(BRANCH_HEADER.to_owned(), self.path.clone());
    }
}

/// The id of the submission an envelope with `headers` belongs to, read without
/// building its [`Branch`] (as [`Branch::from_headers`] would tell it).
pub fn root_of<'a>(headers: &'a Headers, envelope_id: &'a str) -> &'a str {
    match (headers.get(BRANCH_HEADER), headers.get(ROOT_HEADER)) {
        (Some(path), Some(root)) if parse_path(path).is_some_and(|path| !path.is_empty()) => root,
        _ => envelope_id,
    }
}

/// One step of a fan-out path: child `index` of `count`. Paths order as fan-out order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Step {
    pub index: u32,
    pub count: u32,
}

/// Where an envelope sits in the fan-out tree of its submission.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Branch {
    pub root: Option<String>,
    pub path: Vec<Step>,
}

impl Branch {
    /// Reads the branch headers; absent or unreadable headers mean "the root itself".
    pub fn from_headers(headers: &Headers) -> Branch {
        let path = headers
            .get(BRANCH_HEADER)
            .and_then(|text| parse_path(text))
            .unwrap_or_default();
        let root = if path.is_empty() {
            None
        } else {
            headers.get(ROOT_HEADER).cloned()
        };
        Branch { root, path }
    }

    /// The id of the submission, given the id of the envelope carrying this branch.
    pub fn root_id<'a>(&'a self, envelope_id: &'a str) -> &'a str {
        self.root.as_deref().unwrap_or(envelope_id)
    }

    /// The branch of child `index` of a fan-out into `count`.
    pub fn child(&self, envelope_id: &str, index: u32, count: u32) -> Branch {
        let mut path = self.path.clone();
        path.push(Step { index, count });
        Branch {
            root: Some(self.root_id(envelope_id).to_owned()),
            path,
        }
    }

    /// The path as the `wasya-branch` header writes it (empty for the root).
    pub fn path_text(&self) -> String {
        format_path(&self.path)
    }

    /// Writes this branch into `headers` (removing the headers for the root).
    pub fn write_to(&self, headers: &mut Headers) {
        match (&self.root, self.path.is_empty()) {
            (Some(root), false) => {
                headers.insert(ROOT_HEADER.to_owned(), root.clone());
                headers.insert(BRANCH_HEADER.to_owned(), format_path(&self.path));
            }
            _ => {
                headers.remove(ROOT_HEADER);
                headers.remove(BRANCH_HEADER);
            }
        }
    }
}

fn format_path(path: &[Step]) -> String {
    path.iter()
        .map(|step| format!("{}/{}", step.index, step.count))
        .collect::<Vec<_>>()
        .join(".")
}

fn parse_path(text: &str) -> Option<Vec<Step>> {
    text.split('.')
        .map(|step| {
            let (index, count) = step.split_once('/')?;
            let step = Step {
                index: index.parse().ok()?,
                count: count.parse().ok()?,
            };
            (step.index < step.count).then_some(step)
        })
        .collect()
}

/// The ended branches of one submission.
#[derive(Debug, Default, Clone)]
pub struct Completion {
    ended: bool,
    fan_out: Option<u32>,
    children: HashMap<u32, Completion>,
}

impl Completion {
    /// Records that the branch at `path` reached an end actor; false when it had
    /// already (a redelivered end message).
    pub fn end(&mut self, path: &[Step]) -> bool {
        let mut node = self;
        for step in path {
            node.fan_out = Some(step.count);
            node = node.children.entry(step.index).or_default();
        }
        !std::mem::replace(&mut node.ended, true)
    }

    /// True when every branch of the submission has ended.
    pub fn is_complete(&self) -> bool {
        if self.ended {
            return true;
        }
        match self.fan_out {
            Some(count) => {
                self.children.len() == count as usize
                    && self.children.values().all(Completion::is_complete)
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let root = Branch::default();
        let child = root.child("abc", 1, 3).child("abc-1", 0, 2);
        let mut headers = Headers::new();
        child.write_to(&mut headers);
        assert_eq!(headers[BRANCH_HEADER], "1/3.0/2");
        assert_eq!(headers[ROOT_HEADER], "abc");
        assert_eq!(Branch::from_headers(&headers), child);
        assert_eq!(child.root_id("abc-1"), "abc");
    }

    #[test]
    fn unreadable_headers_mean_the_root() {
        let mut headers = Headers::new();
        headers.insert(BRANCH_HEADER.into(), "5/2".into());
        assert_eq!(Branch::from_headers(&headers), Branch::default());
    }

    #[test]
    fn complete_only_when_every_branch_ended() {
        let one = |index, count| Step { index, count };
        let mut completion = Completion::default();
        assert!(!completion.is_complete());
        completion.end(&[one(0, 2), one(1, 2)]);
        completion.end(&[one(1, 2)]);
        assert!(!completion.is_complete(), "child 0 has one of two ended");
        completion.end(&[one(0, 2), one(0, 2)]);
        assert!(completion.is_complete());
    }

    #[test]
    fn a_root_that_never_fanned_out_ends_at_once() {
        let mut completion = Completion::default();
        completion.end(&[]);
        assert!(completion.is_complete());
    }

    #[test]
    fn a_lineage_travels_out_of_the_headers_and_back() {
        let mut headers = Headers::new();
        headers.insert("traceparent".into(), "00-a-b-01".into());
        assert_eq!(Lineage::of(&headers), None, "a root carries none");
        Branch::default().child("e1", 2, 3).write_to(&mut headers);
        let lineage = Lineage::of(&headers).unwrap();
        assert_eq!(lineage.root, "e1");
        assert_eq!(lineage.path, "2/3");
        let mut received = Headers::new();
        received.insert("traceparent".into(), "00-a-b-01".into());
        lineage.restore_into(&mut received);
        assert_eq!(received, headers);
        assert!(is_bookkeeping(ROOT_HEADER) && is_bookkeeping(BRANCH_HEADER));
        assert!(!is_bookkeeping("traceparent"));
    }
}
