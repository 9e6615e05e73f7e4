//! Why an envelope failed: Asya's error code and the `details.type` the node reports.
//!
//! Both are enums so that a kind matched in one file and written in another cannot
//! drift apart by a typo; they become text only where they meet JSON, logs and
//! metrics ([`Code::as_str`], [`Kind::as_str`]). An actor's own kind (a Python
//! exception's class, a guest's `bad-input`) is carried as [`Kind::Actor`].

/// Asya's error code: the `error` field of an error-end payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// The actor (or the node running it) failed on the message.
    Processing,
    /// The bytes on the queue are not an envelope.
    MsgParsing,
    /// A runtime could not be reached (as Asya's runtime reports it).
    Connection,
    /// The route does not address this actor, or names one nobody serves.
    Route,
    /// An external runtime broke the socket protocol.
    Protocol,
    /// Another code an external runtime reported.
    Other(String),
}

impl Code {
    /// The code as Asya writes it (`processing_error`, `msg_parsing_error`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Code::Processing => "processing_error",
            Code::MsgParsing => "msg_parsing_error",
            Code::Connection => "connection_error",
            Code::Route => "route_error",
            Code::Protocol => "protocol_error",
            Code::Other(code) => code,
        }
    }

    /// The code a runtime wrote.
    pub fn from_wire(text: &str) -> Code {
        match text {
            "processing_error" => Code::Processing,
            "msg_parsing_error" => Code::MsgParsing,
            "connection_error" => Code::Connection,
            "route_error" => Code::Route,
            "protocol_error" => Code::Protocol,
            other => Code::Other(other.to_owned()),
        }
    }
}

/// `details.type`: what exactly went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The guest trapped (a panic, an unreachable instruction).
    Trap,
    /// The call ran past its timeout.
    Timeout,
    /// The guest hit its memory limit.
    ResourceLimit,
    /// Envelope mode changed the route illegally.
    InvalidRoute,
    /// An output is not JSON, or not a valid envelope part.
    InvalidOutput,
    /// An output is larger than the node sends.
    OutputTooLarge,
    /// An output nests deeper than the node accepts.
    OutputTooDeep,
    /// A payload-mode actor returned a route, headers or an id.
    HandlerMode,
    /// The route names an actor nobody serves.
    UnknownActor,
    /// The bytes are not JSON.
    InvalidJson,
    /// The JSON is not an object.
    NotAnObject,
    /// The envelope has no `id`.
    MissingId,
    /// A field of the envelope has the wrong type or value.
    InvalidField,
    /// `route.actors` is empty.
    EmptyRoute,
    /// `route.current` is past the end of the route.
    CurrentOutOfRange,
    /// The envelope is addressed to another actor.
    RouteMismatch,
    /// The payload or metadata nests deeper than the node accepts.
    TooDeep,
    /// The envelope is larger than the node accepts.
    TooLarge,
    /// A runtime's answer is not JSON.
    NotJson,
    /// A runtime's answer is not a JSON array.
    NotAnArray,
    /// An item of a runtime's answer is not a result.
    InvalidItem,
    /// The runtime closed the connection without answering.
    RuntimeClosed,
    /// A runtime announced a frame over the limit.
    FrameTooLarge,
    /// A runtime's frame was cut short.
    TruncatedFrame,
    /// The request is too large for the protocol's length field.
    RequestTooLarge,
    /// The socket failed.
    IoError,
    /// A runtime reported an error without a type.
    RuntimeError,
    /// The actor's own kind (`ValueError`, `bad-input`).
    Actor(String),
}

impl Kind {
    /// The kind as `details.type` writes it (`trap`, `timeout`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Trap => "trap",
            Kind::Timeout => "timeout",
            Kind::ResourceLimit => "resource_limit",
            Kind::InvalidRoute => "invalid_route",
            Kind::InvalidOutput => "invalid_output",
            Kind::OutputTooLarge => "output_too_large",
            Kind::OutputTooDeep => "output_too_deep",
            Kind::HandlerMode => "handler_mode",
            Kind::UnknownActor => "unknown_actor",
            Kind::InvalidJson => "invalid_json",
            Kind::NotAnObject => "not_an_object",
            Kind::MissingId => "missing_id",
            Kind::InvalidField => "invalid_field",
            Kind::EmptyRoute => "empty_route",
            Kind::CurrentOutOfRange => "current_out_of_range",
            Kind::RouteMismatch => "route_mismatch",
            Kind::TooDeep => "too_deep",
            Kind::TooLarge => "too_large",
            Kind::NotJson => "not_json",
            Kind::NotAnArray => "not_an_array",
            Kind::InvalidItem => "invalid_item",
            Kind::RuntimeClosed => "runtime_closed",
            Kind::FrameTooLarge => "frame_too_large",
            Kind::TruncatedFrame => "truncated_frame",
            Kind::RequestTooLarge => "request_too_large",
            Kind::IoError => "io_error",
            Kind::RuntimeError => "runtime_error",
            Kind::Actor(kind) => kind,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why an actor call (or the envelope itself) failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Asya's error code, the error-end payload's `error`.
    pub code: Code,
    /// What exactly went wrong, the payload's `details.type`.
    pub kind: Kind,
    /// What went wrong, for people to read (`details.message`).
    pub message: String,
    /// The actor's traceback, where it gave one (`details.traceback`).
    pub traceback: Option<String>,
    /// Outbound hosts (`scheme://host:port`) the actor asked for and was refused.
    pub refused_hosts: Vec<String>,
}

impl Failure {
    /// A `processing_error` of the given kind.
    pub fn processing(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            code: Code::Processing,
            kind,
            message: message.into(),
            traceback: None,
            refused_hosts: Vec::new(),
        }
    }
}
