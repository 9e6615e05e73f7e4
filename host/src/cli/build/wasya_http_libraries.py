

# The HTTP libraries handlers already use, over the same wasi:http. A component has no
# sockets: what reaches for one (a name lookup, a connect) raises NoSocketsError naming
# the way out, never a trap. httpx and requests, when a handler imports them, get a
# transport of this module's in place of their socket one, so `httpx.get(url)`,
# `httpx.AsyncClient()` and `requests.post(url, json=...)` work unchanged, and the same
# handler file runs under Asya's runtime, where the libraries are left as they are.
import codecs as _codecs  # noqa: E402
import io as _io  # noqa: E402
import socket as _socket  # noqa: E402
import sys as _sys  # noqa: E402
import zlib as _zlib  # noqa: E402

_send = request

_WAY_OUT = (
    "a wasya actor has no sockets: call out over HTTP with httpx, requests or wasya_http "
    "(they go through the node, to the hosts in the actor's allowed_outbound_hosts)"
)


class NoSocketsError(ConnectionError):
    """A socket or a name lookup, which a component cannot have."""


def _refuse(what):
    def refused(*args, **kwargs):
        raise NoSocketsError(f"{what}: {_WAY_OUT}")

    refused.__name__ = what
    return refused


for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo", "create_connection"):
    setattr(_socket, _name, _refuse(_name))
for _name in ("connect", "connect_ex", "bind", "sendto"):
    setattr(_socket.socket, _name, _refuse(f"socket.{_name}"))


def _ascii_idna(name):
    """Host names as ASCII where the idna codec cannot load (it needs `unicodedata`):
    what urllib3 and http.client check a host with before they reach for a socket."""
    if name != "idna":
        return None

    def encode(text, errors="strict"):
        try:
            return text.encode("ascii"), len(text)
        except UnicodeEncodeError:
            raise UnicodeError(f"{text!r}: only ASCII host names are supported in a wasya actor") from None

    def decode(data, errors="strict"):
        return bytes(data).decode("ascii", errors), len(data)

    return _codecs.CodecInfo(encode, decode, name="idna")


try:
    _codecs.lookup("idna")
except LookupError:
    _codecs.register(_ascii_idna)


def _body_bytes(body):
    """A request body as bytes, from what the libraries hand over."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if hasattr(body, "read"):
        return _body_bytes(body.read())
    return b"".join(_body_bytes(part) for part in body)


def _decoded(headers, content):
    """The body as the server meant it: requests expects the codings it asked for
    (gzip and deflate; zstd and br where their modules load) undone."""
    coding = next((value for name, value in headers.items() if name.lower() == "content-encoding"), "")
    for step in reversed([part.strip().lower() for part in coding.split(",") if part.strip()]):
        if step in ("gzip", "x-gzip"):
            content = _zlib.decompress(content, 16 + _zlib.MAX_WBITS)
        elif step == "deflate":
            try:
                content = _zlib.decompress(content)
            except _zlib.error:
                content = _zlib.decompress(content, -_zlib.MAX_WBITS)
        elif step in ("zstd", "br"):
            try:
                if step == "zstd":
                    from compression import zstd as codec
                else:
                    import brotli as codec
            except ImportError:
                break
            content = codec.decompress(content)
        elif step != "identity":
            break
    return content


_SYNC_IN_ASYNC = (
    "{what} blocks, and this actor's handler is an async def (the wasya:actor@0.2.0 world, "
    "where a call must not block the instance's other calls): use httpx.AsyncClient or "
    "`await wasya_http.get(...)`"
)


def _adopt_requests(requests):
    """`requests.Session` mounts a wasi:http adapter for http:// and https://."""
    from http.client import responses as reasons

    from requests import adapters, exceptions, models, sessions, structures, utils

    class RequestsAdapter(adapters.BaseAdapter):
        """A requests transport adapter over wasi:http (mounted by default in a wasya actor)."""

        def __init__(self, *args, **kwargs):
            super().__init__()

        def send(self, prepared, stream=False, timeout=None, verify=True, cert=None, proxies=None):
            if _WORLD_IS_ASYNC:
                raise RuntimeError(_SYNC_IN_ASYNC.format(what="requests"))
            try:
                answer = _send(
                    prepared.method or "GET",
                    prepared.url,
                    headers=dict(prepared.headers),
                    data=_body_bytes(prepared.body),
                )
            except HTTPError as error:
                failure = {
                    "timeout": exceptions.ReadTimeout,
                    "tls": exceptions.SSLError,
                    "invalid": exceptions.InvalidURL,
                }.get(error.kind, exceptions.ConnectionError)
                raise failure(str(error), request=prepared) from None
            response = models.Response()
            response.status_code = answer.status_code
            response.headers = structures.CaseInsensitiveDict(answer.headers)
            response.reason = reasons.get(answer.status_code, "")
            response.url = prepared.url
            response.request = prepared
            response.encoding = utils.get_encoding_from_headers(response.headers)
            response._content = _decoded(answer.headers, answer.content)
            response._content_consumed = True
            response.raw = _io.BytesIO(response._content)
            response.connection = self
            return response

        def close(self):
            pass

    sessions.HTTPAdapter = RequestsAdapter
    requests.wasya_adapter = RequestsAdapter
    globals()["RequestsAdapter"] = RequestsAdapter


def _adopt_httpx(httpx):
    """`httpx.Client` and `httpx.AsyncClient` default to wasi:http transports."""
    from httpx import _client

    def failure(error, request):
        kind = {
            "timeout": httpx.ReadTimeout,
            "connect": httpx.ConnectError,
            "dns": httpx.ConnectError,
            "tls": httpx.ConnectError,
            "denied": httpx.ConnectError,
            "invalid": httpx.UnsupportedProtocol,
        }.get(error.kind, httpx.ReadError)
        return kind(str(error), request=request)

    def response(answer):
        return httpx.Response(
            status_code=answer.status_code,
            headers=list(answer.headers.items()),
            stream=httpx.ByteStream(answer.content),
            extensions={"http_version": b"HTTP/1.1"},
        )

    def options(request):
        return {"headers": dict(request.headers), "data": request.content}

    class HttpxTransport(httpx.BaseTransport):
        """An httpx transport over wasi:http (the default of `httpx.Client` in a wasya actor)."""

        def __init__(self, *args, **kwargs):
            pass

        def handle_request(self, request):
            if _WORLD_IS_ASYNC:
                raise RuntimeError(_SYNC_IN_ASYNC.format(what="httpx.Client"))
            request.read()
            try:
                answer = _send(request.method, str(request.url), **options(request))
            except HTTPError as error:
                raise failure(error, request) from None
            return response(answer)

    class AsyncHttpxTransport(httpx.AsyncBaseTransport):
        """An async httpx transport over wasi:http (the default of `httpx.AsyncClient`)."""

        def __init__(self, *args, **kwargs):
            pass

        async def handle_async_request(self, request):
            await request.aread()
            try:
                answer = _send(request.method, str(request.url), **options(request))
                if _WORLD_IS_ASYNC:
                    answer = await answer
            except HTTPError as error:
                raise failure(error, request) from None
            return response(answer)

    _client.HTTPTransport = HttpxTransport
    _client.AsyncHTTPTransport = AsyncHttpxTransport
    globals()["HttpxTransport"] = HttpxTransport
    globals()["AsyncHttpxTransport"] = AsyncHttpxTransport


_ADOPTERS = {"requests": _adopt_requests, "httpx": _adopt_httpx}


class _Adopter:
    """A finder that finds nothing of its own: it lets the others find httpx and
    requests, and adopts each once its package has run."""

    def find_spec(self, name, path=None, target=None):
        adopt = _ADOPTERS.get(name)
        if adopt is None:
            return None
        for finder in _sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                run = spec.loader.exec_module

                def exec_module(module):
                    run(module)
                    adopt(module)

                spec.loader.exec_module = exec_module
                return spec
        return None


for _name, _adopt in _ADOPTERS.items():
    if _name in _sys.modules:
        _adopt(_sys.modules[_name])
_sys.meta_path.insert(0, _Adopter())
