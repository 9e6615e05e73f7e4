//! Blocking HTTP requests for actors, over `wasi:http/outgoing-handler`.
//!
//! A guest runs one call at a time, so a plain blocking call is the natural shape:
//! [`send`] returns when the response has been read. Blocking here is waiting on a
//! `wasi:io` pollable, which the node turns into an await: the guest's task is
//! parked, no thread is held, and thousands of guests can wait at once.
//!
//! The node sends a request only to hosts the actor is granted
//! (`allowed_outbound_hosts`); any other fails with [`HttpError`] saying the request
//! was denied.

use std::fmt;
use std::io::Write;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response, its body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug, Clone)]
pub struct HttpError {
    /// A short machine-readable name: `denied`, `timeout`, `connect`, `invalid`, …
    pub kind: &'static str,
    pub message: String,
}

impl fmt::Display for HttpError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

fn invalid(message: impl Into<String>) -> HttpError {
    HttpError {
        kind: "invalid",
        message: message.into(),
    }
}

/// Sends `request` and reads its response.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    let (scheme, authority, path) = split_url(&request.url)?;
    let fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&fields)
        .map_err(|error| invalid(format!("a header cannot be sent: {error:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    outgoing
        .set_method(&method(&request.method))
        .map_err(|()| invalid(format!("`{}` is not an HTTP method", request.method)))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("the URL's scheme cannot be used"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| invalid(format!("`{authority}` is not a host")))?;
    outgoing
        .set_path_with_query(Some(&path))
        .map_err(|()| invalid(format!("`{path}` is not a path")))?;
    let body = outgoing
        .body()
        .map_err(|()| invalid("the request body cannot be written"))?;
    // A request without a body is finished before it is sent; one with a body is
    // sent first and written while the host streams it out.
    let written = if request.body.is_empty() {
        OutgoingBody::finish(body, None)
            .map_err(|code| failure(&request.method, &request.url, code))?;
        Ok(())
    } else {
        Err(body)
    };
    let pending = outgoing_handler::handle(outgoing, None)
        .map_err(|code| failure(&request.method, &request.url, code))?;
    let written = match written {
        Ok(()) => Ok(()),
        Err(body) => write_body(body, &request.body),
    };
    pending.subscribe().block();
    // Where the request failed, the response says why; a failed write says less.
    let response = match (pending.get(), written) {
        (Some(Ok(Ok(response))), Ok(())) => response,
        (Some(Ok(Err(code))), _) | (_, Err(code)) => {
            return Err(failure(&request.method, &request.url, code));
        }
        (Some(Err(())) | None, Ok(())) => {
            return Err(invalid("the response was already taken"));
        }
    };
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| invalid("the response body was already taken"))?;
    let body = read_body(incoming).map_err(|code| failure(&request.method, &request.url, code))?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), ErrorCode> {
    {
        let mut stream = body
            .write()
            .map_err(|()| ErrorCode::InternalError(Some("the request body stream".into())))?;
        stream
            .write_all(bytes)
            .map_err(|error| ErrorCode::InternalError(Some(error.to_string())))?;
        stream
            .blocking_flush()
            .map_err(|error| ErrorCode::InternalError(Some(format!("{error:?}"))))?;
    }
    OutgoingBody::finish(body, None)
}

fn read_body(body: IncomingBody) -> Result<Vec<u8>, ErrorCode> {
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| ErrorCode::InternalError(Some("the response body stream".into())))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                Err(wasip2::io::streams::StreamError::LastOperationFailed(error)) => {
                    return Err(wasip2::http::types::http_error_code(&error)
                        .unwrap_or_else(|| body_error(&error.to_debug_string())));
                }
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// The error code of a failed body read that came as text only (wasmtime 48 hands
/// body errors to the guest as an `io/error` without its `error-code`).
fn body_error(text: &str) -> ErrorCode {
    if text.contains("body size exceeds limit") {
        ErrorCode::HttpResponseBodySize(None)
    } else if text.contains("timed out") || text.contains("timeout") {
        ErrorCode::HttpResponseTimeout
    } else {
        ErrorCode::InternalError(Some(text.to_owned()))
    }
}

/// `scheme`, `authority` and `path?query` of an absolute URL.
fn split_url(url: &str) -> Result<(Scheme, &str, String), HttpError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        invalid(format!(
            "`{url}` is not an absolute http:// or https:// URL"
        ))
    })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(invalid(format!("`{other}://` URLs are not supported"))),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let path = path.split('#').next().unwrap_or_default();
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if authority.is_empty() {
        return Err(invalid(format!("`{url}` names no host")));
    }
    Ok((scheme, authority, path))
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(name.to_owned()),
    }
}

/// A readable error for a request that failed.
fn failure(method: &str, url: &str, code: ErrorCode) -> HttpError {
    let (kind, why) = match &code {
        ErrorCode::HttpRequestDenied => (
            "denied",
            "the request was denied: the actor's allowed_outbound_hosts do not include this host"
                .to_owned(),
        ),
        ErrorCode::ConnectionRefused => ("connect", "the connection was refused".to_owned()),
        ErrorCode::ConnectionTimeout => ("connect", "the connection timed out".to_owned()),
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout | ErrorCode::DestinationNotFound => {
            ("dns", "the host name could not be resolved".to_owned())
        }
        ErrorCode::TlsCertificateError => (
            "tls",
            "the server's TLS certificate is not trusted".to_owned(),
        ),
        ErrorCode::TlsProtocolError | ErrorCode::TlsAlertReceived(_) => {
            ("tls", "the TLS handshake failed".to_owned())
        }
        ErrorCode::HttpResponseTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout => (
            "timeout",
            "the response did not come within the actor's outbound timeout".to_owned(),
        ),
        ErrorCode::HttpResponseBodySize(size) => (
            "too_large",
            match size {
                Some(size) => format!(
                    "the response body ({size} bytes or more) is past the actor's outbound body limit"
                ),
                None => "the response body is past the actor's outbound body limit".to_owned(),
            },
        ),
        ErrorCode::InternalError(Some(message)) => ("error", message.clone()),
        other => ("error", format!("{other:?}")),
    };
    HttpError {
        kind,
        message: format!("{} {url}: {why}", method.to_ascii_uppercase()),
    }
}
