"""HTTP requests from a wasya actor, over ``wasi:http`` (shipped with ``wasya build``).

A handler calls out as it would with ``requests``::

    import wasya_http

    def handler(payload):
        answer = wasya_http.post(URL, json={"prompt": payload["prompt"]},
                                 headers={"authorization": "Bearer ..."})
        answer.raise_for_status()
        return answer.json()

A call blocks until the response has been read: the node parks the guest while it
waits, holding no thread. The node sends a request only to hosts the actor is granted
(``allowed_outbound_hosts``); any other raises ``HTTPError`` with ``kind == "denied"``.
"""

import json as _json
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import outgoing_handler
from wit_world.imports import wasi_http_types as http
from wit_world.imports.streams import StreamError_Closed

READ_SIZE = 64 * 1024
WRITE_SIZE = 4096

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


def _body_failure(method, url, error):
    code = http.http_error_code(error)
    if code is not None:
        return _failure(method, url, code)
    text = error.to_debug_string()
    if "body size exceeds limit" in text:
        return HTTPError(f"{method} {url}: {_KINDS['HttpResponseBodySize'][1]}", "too_large")
    if "timed out" in text or "timeout" in text:
        return HTTPError(f"{method} {url}: {_KINDS['HttpResponseTimeout'][1]}", "timeout")
    return HTTPError(f"{method} {url}: {text}")


def request(method, url, headers=None, data=None, json=None):
    """Sends a request and reads its response; raises ``HTTPError`` when none came."""
    method = method.upper()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HTTPError(f"{url!r} is not an absolute http:// or https:// URL", "invalid")
    fields = {name.lower(): str(value) for name, value in (headers or {}).items()}
    if json is not None:
        data = _json.dumps(json).encode()
        fields.setdefault("content-type", "application/json")
    if isinstance(data, str):
        data = data.encode()
    data = data or b""
    try:
        outgoing = http.OutgoingRequest(
            http.Fields.from_list([(name, value.encode()) for name, value in fields.items()])
        )
    except Err as error:
        raise HTTPError(f"a header cannot be sent: {error.value}", "invalid") from None
    method_value = _METHODS[method]() if method in _METHODS else http.Method_Other(method)
    outgoing.set_method(method_value)
    outgoing.set_scheme(http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http())
    outgoing.set_authority(parts.netloc)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    outgoing.set_path_with_query(target)
    body = outgoing.body()
    if not data:
        http.OutgoingBody.finish(body, None)
    try:
        future = outgoing_handler.handle(outgoing, None)
    except Err as error:
        raise _failure(method, url, error.value) from None
    written = None
    if data:
        try:
            with body.write() as stream:
                for start in range(0, len(data), WRITE_SIZE):
                    stream.blocking_write_and_flush(data[start : start + WRITE_SIZE])
            http.OutgoingBody.finish(body, None)
        except Err as error:
            written = error
    with future:
        with future.subscribe() as ready:
            ready.block()
        answer = future.get()
    # Where the request failed, the response says why; a failed write says less.
    if answer is None or isinstance(answer, Err):
        raise HTTPError(f"{method} {url}: the response was already taken")
    if isinstance(answer.value, Err):
        raise _failure(method, url, answer.value.value)
    if written is not None:
        raise HTTPError(f"{method} {url}: the request body could not be sent")
    response = answer.value.value
    with response:
        status = response.status()
        with response.headers() as fields:
            received = {name: value.decode("utf-8", "replace") for name, value in fields.entries()}
        incoming = response.consume()
        chunks = []
        with incoming.stream() as stream:
            while True:
                try:
                    chunks.append(stream.blocking_read(READ_SIZE))
                except Err as error:
                    if isinstance(error.value, StreamError_Closed):
                        break
                    raise _body_failure(method, url, error.value.value) from None
        http.IncomingBody.finish(incoming).__exit__(None, None, None)
    return Response(url, status, received, b"".join(chunks))


def get(url, **options):
    return request("GET", url, **options)


def post(url, **options):
    return request("POST", url, **options)


def put(url, **options):
    return request("PUT", url, **options)


def delete(url, **options):
    return request("DELETE", url, **options)
