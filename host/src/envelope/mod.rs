//! The envelope of the Asya actor mesh: its shape, parsing and validation.
//!
//! Parsing goes through `serde_json::Value` and then takes each field by hand, rather
//! than deriving `Deserialize` for the whole struct: a rejected envelope must go to
//! `error-end` with a reason that names the field at fault, and the payload of a
//! half-valid envelope must still be kept as `original_payload`. What the node accepts
//! is bounded ([`limits`]) so that the wrappers it adds can always be read again.

pub mod limits;

use crate::failure::{Code, Kind};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Envelope headers: an object of string values (W3C `traceparent` and the like).
pub type Headers = BTreeMap<String, String>;

/// Where an envelope is going.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Route {
    /// The actors the envelope passes through, by name, in order.
    pub actors: Vec<String>,
    /// Index into `actors` of the actor that receives the envelope now.
    pub current: usize,
    /// Free-form JSON that travels with the route, if the sender gave any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl Route {
    /// The actor that receives the envelope now, if `current` is in range.
    pub fn current_actor(&self) -> Option<&str> {
        self.actors.get(self.current).map(String::as_str)
    }

    /// True when every actor of the route has run.
    pub fn is_finished(&self) -> bool {
        self.current >= self.actors.len()
    }
}

/// One message of the mesh.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Envelope {
    /// The envelope's id: a non-empty string.
    pub id: String,
    /// The id of the envelope this one was split from (fan-out), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Where the envelope is going.
    pub route: Route,
    /// String headers such as `traceparent`; omitted from JSON when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: Headers,
    /// The data the next actor receives.
    pub payload: Value,
}

/// Why bytes taken from a queue are not a usable envelope.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes do not parse as JSON; holds the parser's message.
    #[error("envelope is not valid JSON: {0}")]
    NotJson(String),
    /// The JSON is valid but not an object.
    #[error("envelope is not a JSON object")]
    NotObject,
    /// The `id` field is missing or null.
    #[error("envelope has no `id` (a non-empty string is required)")]
    MissingId,
    /// A field nests deeper than the node accepts.
    #[error("envelope field `{field}` nests {depth} levels deep, over the limit of {limit}")]
    TooDeep {
        /// The field that nests too deep, such as `payload`.
        field: &'static str,
        /// How many levels deep the field nests.
        depth: usize,
        /// The most levels the node accepts.
        limit: usize,
    },
    /// The envelope is larger than the node accepts.
    #[error("the envelope is {size} bytes, over this node's limit of {limit}")]
    TooLarge {
        /// The envelope's size, in bytes.
        size: usize,
        /// The largest envelope this node accepts, in bytes.
        limit: usize,
    },
    /// A field is present but has the wrong type or value.
    #[error("envelope field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The field at fault, as a dotted path such as `route.actors`.
        field: &'static str,
        /// What is wrong with it, for people to read.
        reason: String,
    },
    /// `route.actors` has no actors.
    #[error("route.actors is empty")]
    EmptyRoute,
    /// `route.current` points past the end of `route.actors`.
    #[error("route.current = {current} is out of range for {len} actor(s)")]
    CurrentOutOfRange {
        /// The value of `route.current`.
        current: usize,
        /// How many actors the route lists.
        len: usize,
    },
    /// The route's current actor is not the actor the envelope was delivered to.
    #[error("route.actors[{current}] is `{expected}` but the envelope was delivered to `{actual}`")]
    WrongActor {
        /// The value of `route.current`.
        current: usize,
        /// The actor the route names at `current`.
        expected: String,
        /// The actor the envelope was delivered to.
        actual: String,
    },
}

impl EnvelopeError {
    /// The Asya error code an error-end envelope carries for this problem.
    pub fn code(&self) -> Code {
        match self {
            Self::NotJson(_)
            | Self::NotObject
            | Self::MissingId
            | Self::InvalidField { .. }
            | Self::TooDeep { .. }
            | Self::TooLarge { .. } => Code::MsgParsing,
            Self::EmptyRoute | Self::CurrentOutOfRange { .. } | Self::WrongActor { .. } => {
                Code::Route
            }
        }
    }

    /// What exactly is wrong (`details.type`).
    pub fn kind(&self) -> Kind {
        match self {
            Self::NotJson(_) => Kind::InvalidJson,
            Self::NotObject => Kind::NotAnObject,
            Self::MissingId => Kind::MissingId,
            Self::InvalidField { .. } => Kind::InvalidField,
            Self::TooDeep { .. } => Kind::TooDeep,
            Self::TooLarge { .. } => Kind::TooLarge,
            Self::EmptyRoute => Kind::EmptyRoute,
            Self::CurrentOutOfRange { .. } => Kind::CurrentOutOfRange,
            Self::WrongActor { .. } => Kind::RouteMismatch,
        }
    }
}

/// What could be read of bytes that are not a valid envelope: enough to send them to
/// error-end without losing them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Why the bytes were rejected.
    pub error: EnvelopeError,
    /// The id, where one could be read.
    pub id: Option<String>,
    /// The parent id, where one could be read.
    pub parent_id: Option<String>,
    /// The route, where it could be read.
    pub route: Option<Route>,
    /// The headers, where they could be read; empty otherwise.
    pub headers: Headers,
    /// The payload where the envelope was JSON, else the raw text.
    pub original_payload: Value,
}

impl Envelope {
    /// Parses an envelope and checks that it is addressed to `actor`.
    /// An actor's input may nest at most [`limits::MAX_DEPTH`] levels, so that the
    /// wrapper of its failure can be read again.
    pub fn parse_for(bytes: &[u8], actor: &str) -> Result<Envelope, Box<Rejected>> {
        let envelope = Self::parse_within(bytes, limits::MAX_DEPTH)?;
        match envelope.check_addressed_to(actor) {
            Ok(()) => Ok(envelope),
            Err(error) => Err(Box::new(envelope.into_rejected(error))),
        }
    }

    /// Parses an envelope from JSON bytes: any envelope the node carries, an actor's
    /// input or the error-end wrapper of one ([`limits::CARRIED_DEPTH`]).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, Box<Rejected>> {
        Self::parse_within(bytes, limits::CARRIED_DEPTH)
    }

    /// Parses an envelope whose payload and metadata nest at most `depth` levels; a
    /// deeper one is rejected with them carried as text.
    fn parse_within(bytes: &[u8], depth: usize) -> Result<Envelope, Box<Rejected>> {
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(value) => value,
            Err(error) => {
                return Err(Box::new(Rejected {
                    error: limits::json_error(&error),
                    id: None,
                    parent_id: None,
                    route: None,
                    headers: Headers::new(),
                    original_payload: Value::String(String::from_utf8_lossy(bytes).into_owned()),
                }));
            }
        };
        let Value::Object(object) = value else {
            return Err(Box::new(Rejected {
                error: EnvelopeError::NotObject,
                id: None,
                parent_id: None,
                route: None,
                headers: Headers::new(),
                original_payload: value,
            }));
        };
        Self::from_object(object, depth)
    }

    fn from_object(
        mut object: Map<String, Value>,
        depth: usize,
    ) -> Result<Envelope, Box<Rejected>> {
        let mut payload = object.remove("payload").unwrap_or(Value::Null);
        let id = parse_id(object.remove("id"));
        let parent_id = match object.remove("parent_id") {
            Some(Value::String(parent)) => Some(parent),
            _ => None,
        };
        let headers = parse_headers(object.remove("headers"));
        let mut route = parse_route(object.remove("route"));
        // Too deep to wrap: carried on as text, which adds no depth.
        // Both are flattened whatever else is wrong: either could make the rejection's
        // wrapper unreadable.
        let payload_too_deep = limits::flatten_if_deeper("payload", &mut payload, depth);
        let metadata_too_deep = route.as_mut().ok().and_then(|route| {
            let metadata = route.metadata.as_mut()?;
            limits::flatten_if_deeper("route.metadata", metadata, depth)
        });
        let too_deep = payload_too_deep.or(metadata_too_deep);
        let reject = |error: EnvelopeError, route: Option<Route>, headers: Headers| {
            Box::new(Rejected {
                error,
                id: id.as_ref().ok().cloned(),
                parent_id: parent_id.clone(),
                route,
                headers,
                original_payload: payload.clone(),
            })
        };
        let headers = match headers {
            Ok(headers) => headers,
            Err(error) => return Err(reject(error, route.ok(), Headers::new())),
        };
        let route = match route {
            Ok(route) => route,
            Err(error) => return Err(reject(error, None, headers)),
        };
        let id = match &id {
            Ok(id) => id.clone(),
            Err(error) => return Err(reject(error.clone(), Some(route), headers)),
        };
        if let Some(error) = too_deep {
            return Err(reject(error, Some(route), headers));
        }
        Ok(Envelope {
            id,
            parent_id,
            route,
            headers,
            payload,
        })
    }

    /// Checks that `route.actors[route.current]` is `actor`.
    pub fn check_addressed_to(&self, actor: &str) -> Result<(), EnvelopeError> {
        let len = self.route.actors.len();
        if len == 0 {
            return Err(EnvelopeError::EmptyRoute);
        }
        match self.route.current_actor() {
            None => Err(EnvelopeError::CurrentOutOfRange {
                current: self.route.current,
                len,
            }),
            Some(expected) if expected != actor => Err(EnvelopeError::WrongActor {
                current: self.route.current,
                expected: expected.to_owned(),
                actual: actor.to_owned(),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Turns a parsed envelope that failed a later check into a rejection.
    pub fn into_rejected(self, error: EnvelopeError) -> Rejected {
        Rejected {
            error,
            id: Some(self.id),
            parent_id: self.parent_id,
            route: Some(self.route),
            headers: self.headers,
            original_payload: self.payload,
        }
    }

    /// The envelope as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The envelope as JSON bytes without the headers `hidden` names (the node's
    /// bookkeeping, which travels beside the body, not in it); nothing is copied.
    pub fn to_bytes_without(&self, hidden: impl Fn(&str) -> bool) -> Vec<u8> {
        #[derive(Serialize)]
        struct Shown<'a> {
            id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            parent_id: Option<&'a str>,
            route: &'a Route,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            headers: BTreeMap<&'a str, &'a str>,
            payload: &'a Value,
        }
        let shown = Shown {
            id: &self.id,
            parent_id: self.parent_id.as_deref(),
            route: &self.route,
            headers: self
                .headers
                .iter()
                .filter(|(name, _)| !hidden(name))
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect(),
            payload: &self.payload,
        };
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(&shown).unwrap_or_default()
    }
}

/// The `id`: a non-empty string.
fn parse_id(value: Option<Value>) -> Result<String, EnvelopeError> {
    match value {
        None | Some(Value::Null) => Err(EnvelopeError::MissingId),
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        Some(Value::String(_)) => Err(EnvelopeError::InvalidField {
            field: "id",
            reason: "the id is empty".into(),
        }),
        Some(other) => Err(EnvelopeError::InvalidField {
            field: "id",
            reason: format!("expected a non-empty string, found {}", kind_of(&other)),
        }),
    }
}

pub(crate) fn parse_headers(value: Option<Value>) -> Result<Headers, EnvelopeError> {
    match value {
        None | Some(Value::Null) => Ok(Headers::new()),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(text) => Ok((name, text)),
                other => Err(EnvelopeError::InvalidField {
                    field: "headers",
                    reason: format!("header `{name}` is {}, not a string", kind_of(&other)),
                }),
            })
            .collect(),
        Some(other) => Err(EnvelopeError::InvalidField {
            field: "headers",
            reason: format!("expected an object, found {}", kind_of(&other)),
        }),
    }
}

pub(crate) fn parse_route(value: Option<Value>) -> Result<Route, EnvelopeError> {
    let invalid = |field, reason: String| EnvelopeError::InvalidField { field, reason };
    let mut route = match value {
        Some(Value::Object(route)) => route,
        None => return Err(invalid("route", "missing".into())),
        Some(other) => {
            return Err(invalid(
                "route",
                format!("expected an object, found {}", kind_of(&other)),
            ));
        }
    };
    let actors = match route.remove("actors") {
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(name) => Ok(name),
                other => Err(invalid(
                    "route.actors",
                    format!("item {index} is {}, not a string", kind_of(&other)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => return Err(invalid("route.actors", "missing".into())),
        Some(other) => {
            return Err(invalid(
                "route.actors",
                format!("expected an array, found {}", kind_of(&other)),
            ));
        }
    };
    let current = match route.remove("current") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(number)) => number
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                invalid(
                    "route.current",
                    format!("{number} is not a non-negative integer"),
                )
            })?,
        Some(other) => {
            return Err(invalid(
                "route.current",
                format!("expected an integer, found {}", kind_of(&other)),
            ));
        }
    };
    let metadata = match route.remove("metadata") {
        None | Some(Value::Null) => None,
        Some(metadata) => Some(metadata),
    };
    Ok(Route {
        actors,
        current,
        metadata,
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn parses_a_full_envelope() {
        let envelope = Envelope::parse(&bytes(json!({
            "id": "a", "parent_id": "p",
            "route": {"actors": ["x", "y"], "current": 1, "metadata": {"job": 7}},
            "headers": {"traceparent": "00-1"},
            "payload": [1, 2]
        })))
        .unwrap();
        assert_eq!(envelope.id, "a");
        assert_eq!(envelope.parent_id.as_deref(), Some("p"));
        assert_eq!(envelope.route.current_actor(), Some("y"));
        assert_eq!(envelope.route.metadata, Some(json!({"job": 7})));
        assert_eq!(envelope.headers["traceparent"], "00-1");
        assert_eq!(envelope.payload, json!([1, 2]));
    }

    #[test]
    fn round_trips_through_bytes() {
        let raw = json!({"id": "a", "route": {"actors": ["x"], "current": 0}, "payload": null});
        let envelope = Envelope::parse(&bytes(raw.clone())).unwrap();
        let again: Value = serde_json::from_slice(&envelope.to_bytes()).unwrap();
        assert_eq!(again, raw);
    }

    #[test]
    fn names_each_problem() {
        let cases = [
            (b"{not json".to_vec(), "invalid_json"),
            (bytes(json!([1])), "not_an_object"),
            (
                bytes(json!({"route": {"actors": ["x"]}, "payload": 1})),
                "missing_id",
            ),
            (
                bytes(json!({"id": "a", "route": {"actors": "x"}})),
                "invalid_field",
            ),
            (
                bytes(json!({"id": 5, "route": {"actors": ["x"]}})),
                "invalid_field",
            ),
            (
                bytes(json!({"id": {"a": 1}, "route": {"actors": ["x"]}})),
                "invalid_field",
            ),
            (
                bytes(json!({"id": "", "route": {"actors": ["x"]}})),
                "invalid_field",
            ),
            (
                bytes(json!({"id": "a", "route": {"actors": ["x"]}, "headers": {"h": 1}})),
                "invalid_field",
            ),
        ];
        for (raw, kind) in cases {
            let rejected = Envelope::parse(&raw).unwrap_err();
            assert_eq!(rejected.error.kind().as_str(), kind, "{:?}", rejected.error);
        }
    }

    #[test]
    fn keeps_the_payload_of_a_rejected_envelope() {
        let rejected = Envelope::parse(&bytes(
            json!({"route": {"actors": ["x"]}, "payload": {"k": 1}}),
        ))
        .unwrap_err();
        assert_eq!(rejected.original_payload, json!({"k": 1}));
        let rejected = Envelope::parse(b"garbage").unwrap_err();
        assert_eq!(rejected.original_payload, json!("garbage"));
    }

    #[test]
    fn checks_the_addressee() {
        let raw = |actors: Value, current: usize| {
            bytes(json!({"id": "a", "route": {"actors": actors, "current": current}}))
        };
        let err = |raw: Vec<u8>| Envelope::parse_for(&raw, "x").unwrap_err().error;
        assert_eq!(err(raw(json!([]), 0)), EnvelopeError::EmptyRoute);
        assert_eq!(
            err(raw(json!(["x"]), 3)),
            EnvelopeError::CurrentOutOfRange { current: 3, len: 1 }
        );
        assert!(matches!(
            err(raw(json!(["y"]), 0)),
            EnvelopeError::WrongActor { .. }
        ));
        assert!(Envelope::parse_for(&raw(json!(["y", "x"]), 1), "x").is_ok());
    }
}
