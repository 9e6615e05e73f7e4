//! How deep and how large an envelope may be, with room for what the node adds.
//!
//! Whatever the node accepts must reach an end, and so must the wrapper it builds when
//! the envelope fails: the error-end envelope puts the original payload one level
//! deeper and adds the error's details. serde_json reads at most 128 nested levels,
//! and a broker refuses a message over its size limit, so an envelope accepted at the
//! edge of either could fail with a wrapper nobody can read or queue. Hence:
//!
//! - a payload or `route.metadata` may nest at most [`MAX_DEPTH`] levels, leaving room
//!   for the wrapper (one level) and for the outcome views that embed it (five);
//!   a deeper one that came from a queue is carried on as JSON text, which adds no
//!   depth ([`flatten_if_deeper`]);
//! - the node puts no message over `--max-envelope` on a queue, and accepts envelopes
//!   up to that less [`ERROR_ROOM`], which bounds what a wrapper adds (its message,
//!   type and traceback are cut to fit, [`cap_start`] and [`cap_end`]).

use super::EnvelopeError;
use serde_json::Value;

/// Containers (arrays, objects) a payload or `route.metadata` may nest.
pub const MAX_DEPTH: usize = 100;

/// How deep a payload the node carries may nest: an accepted one inside the error-end
/// wrapper of its failure, one level deeper.
pub const CARRIED_DEPTH: usize = MAX_DEPTH + 1;

/// What an error-end wrapper may add to an envelope, at most.
pub const ERROR_ROOM: usize = 64 << 10;

/// The longest `details.message` a wrapper carries (its start is kept).
pub const MESSAGE_CAP: usize = 2 << 10;
/// The longest `details.traceback` a wrapper carries (its end is kept: the frame
/// that failed).
pub const TRACEBACK_CAP: usize = 8 << 10;
/// The longest `details.type` a wrapper carries (and each of `details.refused_hosts`).
pub const TYPE_CAP: usize = 256;
/// The most `details.refused_hosts` a wrapper names.
pub const REFUSED_HOSTS_CAP: usize = 8;

/// How large the envelopes a node takes and sends may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    /// The largest message put on a queue (`--max-envelope`).
    pub max_message: usize,
}

impl SizeLimit {
    /// A limit for a node whose largest queue message is `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        SizeLimit { max_message }
    }

    /// The largest envelope accepted: room is kept for an error-end wrapper.
    pub fn accepted(&self) -> usize {
        self.max_message.saturating_sub(ERROR_ROOM)
    }

    /// Checks the size of an envelope's bytes.
    pub fn check(&self, size: usize) -> Result<(), EnvelopeError> {
        if size > self.accepted() {
            return Err(EnvelopeError::TooLarge {
                size,
                limit: self.accepted(),
            });
        }
        Ok(())
    }
}

/// How many containers `value` nests (`1` for `[1]`, `0` for `1`). Iterative, so a
/// value of any depth is measured without recursion.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, above)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        let level = above + 1;
        deepest = deepest.max(level);
        stack.extend(children.map(|child| (child, level)));
    }
    deepest
}

/// Checks the depth of `value`, found in `field`, against [`MAX_DEPTH`].
pub fn check_depth(field: &'static str, value: &Value) -> Result<(), EnvelopeError> {
    check_depth_within(field, value, MAX_DEPTH)
}

fn check_depth_within(
    field: &'static str,
    value: &Value,
    limit: usize,
) -> Result<(), EnvelopeError> {
    if !deeper_than(value, limit) {
        return Ok(());
    }
    Err(EnvelopeError::TooDeep {
        field,
        depth: depth(value),
        limit,
    })
}

/// Whether `value` nests more than `limit` containers. On the hot path: no
/// allocation, and it stops descending past `limit`, so its recursion is bounded by
/// `limit` whatever the value.
fn deeper_than(value: &Value, limit: usize) -> bool {
    let deeper = |child: &Value| deeper_than(child, limit - 1);
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(deeper),
        Value::Object(map) => limit == 0 || map.values().any(deeper),
        _ => false,
    }
}

/// Replaces a value that nests deeper than `limit` by its JSON text, and says why.
pub fn flatten_if_deeper(
    field: &'static str,
    value: &mut Value,
    limit: usize,
) -> Option<EnvelopeError> {
    let error = check_depth_within(field, value, limit).err()?;
    *value = Value::String(value.to_string());
    Some(error)
}

/// The rejection of bytes serde_json could not read: too deep is named as such.
pub fn json_error(error: &serde_json::Error) -> EnvelopeError {
    if error.to_string().starts_with("recursion limit exceeded") {
        return EnvelopeError::TooDeep {
            field: "envelope",
            depth: 128,
            limit: MAX_DEPTH,
        };
    }
    EnvelopeError::NotJson(error.to_string())
}

/// The most of a caller's own input an error message quotes back, in bytes.
pub const ECHO_CAP: usize = 256;

/// A caller's input as an error quotes it: cut to [`ECHO_CAP`] bytes.
pub fn echo(text: &str) -> String {
    cap_start(text, ECHO_CAP)
}

/// `text` cut to at most `cap` bytes, keeping its start.
pub fn cap_start(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_owned();
    }
    let marker = format!(" … ({} bytes cut)", text.len() - cap);
    let keep = floor_char_boundary(text, cap.saturating_sub(marker.len()));
    format!("{}{marker}", &text[..keep])
}

/// `text` cut to at most `cap` bytes, keeping its end.
pub fn cap_end(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_owned();
    }
    let marker = format!("({} bytes cut) … ", text.len() - cap);
    let from = ceil_char_boundary(text, text.len() - cap.saturating_sub(marker.len()));
    format!("{marker}{}", &text[from..])
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |inner, _| json!([inner]))
    }

    #[test]
    fn measures_depth() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [1, {"b": []}]})), 4);
        assert_eq!(depth(&nested(MAX_DEPTH)), MAX_DEPTH);
        assert!(check_depth("payload", &nested(MAX_DEPTH)).is_ok());
        assert!(check_depth("payload", &nested(MAX_DEPTH + 1)).is_err());
    }

    #[test]
    fn the_quick_check_agrees_with_the_measure() {
        let values = [
            json!(1),
            json!([]),
            json!({}),
            json!([1, [2, [3]]]),
            json!({"a": [1, {"b": []}], "c": {"d": {"e": [[]]}}}),
            nested(MAX_DEPTH),
            nested(MAX_DEPTH + 1),
        ];
        for value in values {
            for limit in 0..=MAX_DEPTH + 2 {
                assert_eq!(deeper_than(&value, limit), depth(&value) > limit, "{limit}");
            }
        }
    }

    #[test]
    fn a_too_deep_value_becomes_its_text() {
        let mut value = nested(MAX_DEPTH + 5);
        let error = flatten_if_deeper("payload", &mut value, MAX_DEPTH).expect("too deep");
        assert_eq!(error.kind().as_str(), "too_deep");
        let text = value.as_str().expect("text");
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), nested(105));
    }

    #[test]
    fn caps_keep_what_matters_and_respect_characters() {
        let text = "é".repeat(5000);
        let start = cap_start(&text, 1000);
        assert!(start.len() <= 1000 && start.starts_with('é') && start.ends_with("cut)"));
        let end = cap_end(&text, 1000);
        assert!(end.len() <= 1000 && end.ends_with('é') && end.starts_with('('));
        assert_eq!(cap_start("short", 1000), "short");
    }

    #[test]
    fn room_is_kept_for_the_wrapper() {
        let limit = SizeLimit::new(1 << 20);
        assert_eq!(limit.accepted(), (1 << 20) - ERROR_ROOM);
        assert!(limit.check(limit.accepted()).is_ok());
        assert!(limit.check(limit.accepted() + 1).is_err());
    }
}
