//! The W3C trace context an envelope carries: `traceparent` as text and as ids.

use std::fmt;

/// `00-<trace id>-<parent id>-<flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace's 16-byte id.
    pub trace_id: [u8; 16],
    /// The 8-byte id of the span that hands the context on (W3C's parent id).
    pub span_id: [u8; 8],
    /// The trace flags, of which this node reads [`SAMPLED`].
    pub flags: u8,
}

/// The `sampled` flag.
pub const SAMPLED: u8 = 0x01;

fn hex_to<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

impl TraceParent {
    /// Reads a `traceparent` header; `None` when it is not a valid one (all-zero ids
    /// are invalid, as the W3C specification says; unknown versions are read by their
    /// first four fields).
    pub fn parse(text: &str) -> Option<TraceParent> {
        let mut parts = text.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let parent = TraceParent {
            trace_id: hex_to(trace)?,
            span_id: hex_to(span)?,
            flags: u8::from_str_radix(flags.get(..2)?, 16).ok()?,
        };
        (parent.trace_id != [0; 16] && parent.span_id != [0; 8]).then_some(parent)
    }

    /// Whether the trace is sampled upstream.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn reads_and_writes_the_w3c_example() {
        let parent = TraceParent::parse(EXAMPLE).expect("valid");
        assert_eq!(
            hex::encode(parent.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(hex::encode(parent.span_id), "b7ad6b7169203331");
        assert!(parent.sampled());
        assert_eq!(parent.to_string(), EXAMPLE);
    }

    #[test]
    fn refuses_what_is_not_a_traceparent() {
        for text in [
            "",
            "00-1",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031zz-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceParent::parse(text), None, "{text}");
        }
    }

    #[test]
    fn reads_a_later_version_by_its_first_fields() {
        let later = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more";
        assert!(TraceParent::parse(later).is_some());
    }
}
