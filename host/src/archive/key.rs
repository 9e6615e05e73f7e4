//! Where an ended envelope goes in the bucket: Asya's crew end actors' layout, so
//! that whatever reads Asya's results reads these.
//!
//! `{prefix}{time}/{last actor}/{envelope id}.json`, the time as one segment in UTC
//! with microseconds (`2025-11-11T10:30:45.123456Z`), the last actor as Asya's end
//! actors name it: the route's current actor when it is neither the first nor past the
//! end, else the route's last. The id a producer chose is cut to what a key may hold.

use crate::envelope::Envelope;
use std::time::SystemTime;

/// Bytes of an envelope id kept in a key, at most (S3 keys hold 1,024 bytes).
const ID_CAP: usize = 256;

/// The key of `envelope`, ended at `at`, under `prefix`.
pub fn key_of(prefix: &str, envelope: &Envelope, at: SystemTime) -> String {
    let route = &envelope.route;
    let last_actor = match route.actors.get(route.current) {
        Some(actor) if route.current > 0 => actor.as_str(),
        _ => route.actors.last().map_or("unknown", String::as_str),
    };
    format!(
        "{prefix}{}/{}/{}.json",
        timestamp(at),
        segment(last_actor),
        segment(&crate::envelope::limits::cap_start(&envelope.id, ID_CAP)),
    )
}

/// A path segment: a `/` would open a folder of its own.
fn segment(text: &str) -> String {
    text.replace('/', "_")
}

/// `%Y-%m-%dT%H:%M:%S.%fZ` (microseconds), as Asya's end actors write it.
fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Route;
    use serde_json::json;
    use std::time::Duration;

    fn envelope(actors: &[&str], current: usize) -> Envelope {
        Envelope {
            id: "abc-123".into(),
            parent_id: None,
            route: Route {
                actors: actors.iter().map(|actor| (*actor).to_owned()).collect(),
                current,
                metadata: None,
            },
            headers: Default::default(),
            payload: json!({}),
        }
    }

    #[test]
    fn keys_follow_asyas_layout() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_762_857_045_123_456);
        assert_eq!(
            key_of("happy-asya/", &envelope(&["a", "text-analyzer"], 2), at),
            "happy-asya/2025-11-11T10:30:45.123456Z/text-analyzer/abc-123.json"
        );
        // Failed at the second actor: that actor.
        assert_eq!(
            key_of("error-asya/", &envelope(&["a", "b", "c"], 1), at),
            "error-asya/2025-11-11T10:30:45.123456Z/b/abc-123.json"
        );
        // Failed at the first: Asya names the route's last.
        assert!(key_of("e/", &envelope(&["a", "b"], 0), at).contains("/b/abc-123.json"));
        assert!(key_of("e/", &envelope(&[], 0), at).contains("/unknown/"));
    }
}
