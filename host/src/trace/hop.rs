//! One hop's span: ids chosen when the hop starts, the span built when it ends.

use super::context::{SAMPLED, TraceParent};
use crate::records::ERROR_END;
use crate::route_rules::Dispatch;
use std::time::SystemTime;

/// What a hop's span records besides its ids and times.
#[derive(Debug, Clone, PartialEq)]
pub struct HopFacts {
    /// `process <actor>`, or `record <end>` for an end actor.
    pub name: String,
    /// The actor that handled the envelope.
    pub actor: String,
    /// The queue the envelope was taken from (`messaging.destination.name`).
    pub queue: String,
    /// The envelope's id (`messaging.message.id`).
    pub envelope_id: String,
    /// The envelope's `route.current` at this hop (`wasya.route.index`).
    pub route_index: usize,
    /// The transport's short name, such as `embedded` or `amqp`.
    pub transport: &'static str,
}

/// A hop's span, open.
#[derive(Debug, Clone)]
pub struct HopSpan {
    /// This hop's own context: what is handed on in `traceparent`.
    pub context: TraceParent,
    /// The previous hop's span, when the envelope came with one.
    pub parent: Option<[u8; 8]>,
    /// When the hop started.
    pub start: SystemTime,
    /// What the span records besides its ids and times.
    pub facts: HopFacts,
}

/// How a hop ended, as its span says.
#[derive(Debug, Clone, PartialEq)]
pub enum HopEnd {
    /// The results were handed on to these actors.
    Completed {
        /// The actors the results went to, in order (`wasya.next`).
        next: Vec<String>,
    },
    /// The envelope went to error-end, saying why.
    Failed {
        /// Why the hop failed, as the span's error status.
        message: String,
    },
    /// The actor could not be called; the message went back to its queue.
    Requeued,
    /// An end actor recorded the envelope.
    Recorded,
}

impl HopEnd {
    /// This end, given whether the hop's results went to error-end after all (an
    /// output out of bounds fails the call when it is handed on).
    pub fn confirmed(self, went_to_error_end: bool) -> HopEnd {
        match self {
            HopEnd::Completed { .. } if went_to_error_end => HopEnd::Failed {
                message: "an output could not be handed on".to_owned(),
            },
            other => other,
        }
    }
}

/// How a hop whose results became `dispatches` ends.
pub fn end_of(dispatches: &[Dispatch]) -> HopEnd {
    match dispatches
        .iter()
        .find(|dispatch| dispatch.actor == ERROR_END)
    {
        Some(failed) => HopEnd::Failed {
            message: crate::route_rules::error_message(&failed.envelope.payload)
                .unwrap_or("failed")
                .to_owned(),
        },
        None => HopEnd::Completed {
            next: dispatches
                .iter()
                .map(|dispatch| dispatch.actor.clone())
                .collect(),
        },
    }
}

impl HopSpan {
    /// Opens the span of a hop of an envelope that came with `incoming` as its
    /// `traceparent` (a new trace when it has none, or an invalid one). `new_trace`
    /// and `new_span` are fresh random ids.
    pub fn begin(
        incoming: Option<&str>,
        facts: HopFacts,
        new_trace: [u8; 16],
        new_span: [u8; 8],
        start: SystemTime,
    ) -> HopSpan {
        let parent = incoming.and_then(TraceParent::parse);
        let context = TraceParent {
            trace_id: parent.map_or(new_trace, |parent| parent.trace_id),
            span_id: new_span,
            flags: parent.map_or(SAMPLED, |parent| parent.flags),
        };
        HopSpan {
            context,
            parent: parent.map(|parent| parent.span_id),
            start,
            facts,
        }
    }

    /// The `traceparent` the hop hands on.
    pub fn traceparent(&self) -> String {
        self.context.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HopFacts {
        HopFacts {
            name: "process a".into(),
            actor: "a".into(),
            queue: "asya-a".into(),
            envelope_id: "e".into(),
            route_index: 0,
            transport: "embedded",
        }
    }

    #[test]
    fn a_hop_continues_the_incoming_trace_with_its_own_span() {
        let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let span = HopSpan::begin(Some(incoming), facts(), [9; 16], [7; 8], SystemTime::now());
        assert_eq!(
            hex::encode(span.context.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(
            span.parent.map(hex::encode).as_deref(),
            Some("b7ad6b7169203331")
        );
        assert_eq!(
            span.traceparent(),
            "00-0af7651916cd43dd8448eb211c80319c-0707070707070707-01"
        );
    }

    #[test]
    fn an_envelope_without_a_trace_starts_one() {
        let span = HopSpan::begin(None, facts(), [9; 16], [7; 8], SystemTime::now());
        assert_eq!(span.context.trace_id, [9; 16]);
        assert_eq!(span.parent, None);
        assert!(span.context.sampled());
        let invalid = HopSpan::begin(Some("00-1"), facts(), [9; 16], [7; 8], SystemTime::now());
        assert_eq!(invalid.parent, None);
    }

    #[test]
    fn an_unsampled_trace_stays_unsampled() {
        let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        let span = HopSpan::begin(Some(incoming), facts(), [9; 16], [7; 8], SystemTime::now());
        assert!(!span.context.sampled());
    }
}
