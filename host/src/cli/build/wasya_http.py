"""HTTP requests from a wasya actor, over ``wasi:http`` (shipped with ``wasya build``).

A handler calls out as it would with ``requests``::

    import wasya_http

    def handler(payload):
        answer = wasya_http.post(URL, json={"prompt": payload["prompt"]},
                                 headers={"authorization": "Bearer ..."})
        answer.raise_for_status()
        return answer.json()

A call blocks until the response has been read: the node parks the guest while it
waits, holding no thread. In an async actor (``async def`` handler, the
``wasya:actor@0.2.0`` world) the same functions are coroutines: ``await
wasya_http.get(url)``, and ``asyncio.gather`` runs several at once. The node sends a request only to hosts the actor is granted
(``allowed_outbound_hosts``); any other raises ``HTTPError`` with ``kind == "denied"``.
"""

import json as _json
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import wasi_http_types as http

READ_SIZE = 64 * 1024

_METHODS = {
    "GET": http.Method_Get,
    "HEAD": http.Method_Head,
    "POST": http.Method_Post,
    "PUT": http.Method_Put,
    "DELETE": http.Method_Delete,
    "CONNECT": http.Method_Connect,
    "OPTIONS": http.Method_Options,
    "TRACE": http.Method_Trace,
    "PATCH": http.Method_Patch,
}

_KINDS = {
    "HttpRequestDenied": (
        "denied",
        "the request was denied: the actor's allowed_outbound_hosts do not include this host",
    ),
    "ConnectionRefused": ("connect", "the connection was refused"),
    "ConnectionTimeout": ("connect", "the connection timed out"),
    "DnsError": ("dns", "the host name could not be resolved"),
    "DnsTimeout": ("dns", "the host name could not be resolved"),
    "TlsCertificateError": ("tls", "the server's TLS certificate is not trusted"),
    "TlsProtocolError": ("tls", "the TLS handshake failed"),
    "TlsAlertReceived": ("tls", "the TLS handshake failed"),
    "HttpResponseTimeout": ("timeout", "the response did not come within the actor's outbound timeout"),
    "ConnectionReadTimeout": ("timeout", "the response did not come within the actor's outbound timeout"),
    "HttpResponseBodySize": ("too_large", "the response body is past the actor's outbound body limit"),
}


class HTTPError(Exception):
    """A request that got no response, or (from ``raise_for_status``) an error status."""

    def __init__(self, message, kind="error", response=None):
        super().__init__(message)
        self.kind = kind
        self.response = response


class Response:
    """A response, its body read in full."""

    def __init__(self, url, status_code, headers, content):
        self.url = url
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def ok(self):
        return self.status_code < 400

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return _json.loads(self.content)

    def raise_for_status(self):
        if not self.ok:
            raise HTTPError(f"{self.status_code} for {self.url}", "status", self)


def _failure(method, url, code):
    name = type(code).__name__.removeprefix("ErrorCode_")
    kind, why = _KINDS.get(name, ("error", name))
    if name == "InternalError" and getattr(code, "value", None):
        why = code.value
    return HTTPError(f"{method} {url}: {why}", kind)


# Headers a client may not set on wasi:http (hop-by-hop, or the client's own).
_FORBIDDEN = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "te"}


def _prepare(method, url, headers, data, json):
    """The parts of a request, checked: method, URL parts, header fields, body bytes."""
    method = method.upper()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HTTPError(f"{url!r} is not an absolute http:// or https:// URL", "invalid")
    fields = {
        name.lower(): str(value)
        for name, value in (headers or {}).items()
        if name.lower() not in _FORBIDDEN
    }
    if json is not None:
        data = _json.dumps(json).encode()
        fields.setdefault("content-type", "application/json")
    if isinstance(data, str):
        data = data.encode()
    return method, parts, fields, data or b""


def _target(parts):
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return target


def _method(method):
    return _METHODS[method]() if method in _METHODS else http.Method_Other(method)


def _scheme(parts):
    return http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http()

