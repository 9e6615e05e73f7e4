

# wasi:http 0.2 (the sync world): a call blocks the guest until its response is read.
from wit_world.imports import outgoing_handler  # noqa: E402
from wit_world.imports.streams import StreamError_Closed  # noqa: E402

WRITE_SIZE = 4096
_WORLD_IS_ASYNC = False


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
    method, parts, fields, data = _prepare(method, url, headers, data, json)
    try:
        outgoing = http.OutgoingRequest(
            http.Fields.from_list([(name, value.encode()) for name, value in fields.items()])
        )
    except Err as error:
        raise HTTPError(f"a header cannot be sent: {error.value}", "invalid") from None
    outgoing.set_method(_method(method))
    outgoing.set_scheme(_scheme(parts))
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query(_target(parts))
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
