

# wasi:http 0.3 (the async world): every call is a coroutine; calls of other envelopes
# run while one waits.
import asyncio  # noqa: E402
import contextvars  # noqa: E402

import wit_world  # noqa: E402
from componentize_py_types import Ok  # noqa: E402
from wit_world.imports import client as _client  # noqa: E402

_WORLD_IS_ASYNC = True

# The call running in this context: its envelope id and headers (set by the glue).
_CALL = contextvars.ContextVar("wasya_call", default=None)

# The trace context a request carries on, unless the handler set its own.
_TRACE_HEADERS = ("traceparent", "tracestate")


def _no_trailers():
    return wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
        lambda: Ok(None)
    )


async def _send_body(writer, data, trailers):
    """Writes the request body, then its (empty) trailers: the host ends the request
    only once both are in, and the server may wait for the body's end to answer."""
    if writer is not None:
        with writer:
            await writer.write_all(data)
    await trailers.write(Ok(None))


async def request(method, url, headers=None, data=None, json=None):
    """Sends a request and reads its response; raises ``HTTPError`` when none came."""
    method, parts, fields, data = _prepare(method, url, headers, data, json)
    if data:
        # A length, as clients send one: some servers refuse a chunked request body.
        fields.setdefault("content-length", str(len(data)))
    call = _CALL.get()
    if call is not None:
        for name in _TRACE_HEADERS:
            if name not in fields and name in call.headers:
                fields[name] = call.headers[name]
    try:
        header_fields = http.Fields.from_list([(name, value.encode()) for name, value in fields.items()])
    except Err as error:
        raise HTTPError(f"a header cannot be sent: {error.value}", "invalid") from None
    writer, reader = wit_world.byte_stream() if data else (None, None)
    trailers_writer, trailers = _no_trailers()
    outgoing, _sent = http.Request.new(header_fields, reader, trailers, None)
    writing = asyncio.ensure_future(_send_body(writer, data, trailers_writer))
    outgoing.set_method(_method(method))
    outgoing.set_scheme(_scheme(parts))
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query(_target(parts))
    try:
        response = await _client.send(outgoing)
    except Err as error:
        raise _failure(method, url, error.value) from None
    finally:
        await writing
    status = response.get_status_code()
    with response.get_headers() as received_fields:
        received = {
            name: value.decode("utf-8", "replace") for name, value in received_fields.copy_all()
        }
    finished, done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))
    body, body_trailers = http.Response.consume_body(response, done)
    chunks = []
    with body:
        while not body.writer_dropped:
            chunk = await body.read(READ_SIZE)
            if chunk:
                chunks.append(chunk)
    try:
        await body_trailers.read()
    except Err as error:
        raise _failure(method, url, error.value) from None
    await finished.write(Ok(None))
    return Response(url, status, received, b"".join(chunks))


async def get(url, **options):
    return await request("GET", url, **options)


async def post(url, **options):
    return await request("POST", url, **options)


async def put(url, **options):
    return await request("PUT", url, **options)


async def delete(url, **options):
    return await request("DELETE", url, **options)
