#!/usr/bin/env python3
"""An asyncio runtime for the outbound benchmark: for every envelope it GETs
``payload["url"]`` (HTTP/1.1, standard library only) and answers with the status and
body, as the `fetch` actor does. It serves thousands of connections at once, so it
is the best case of a Python runtime waiting on the network, not Asya's
one-call-at-a-time default."""

import asyncio
import json
import os
import struct
from urllib.parse import urlsplit

directory = os.environ["ASYA_SOCKET_DIR"]
path = os.path.join(directory, "asya-runtime.sock")


async def get(url):
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode("utf-8", "replace")


async def serve(reader, writer):
    try:
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        envelope = json.loads(await reader.readexactly(length))
        status, body = await get(envelope["payload"]["url"])
        route = dict(envelope["route"], current=envelope["route"]["current"] + 1)
        answer = [{"payload": {"status": status, "body": body}, "route": route}]
        data = json.dumps(answer).encode()
        writer.write(struct.pack(">I", len(data)) + data)
        await writer.drain()
    finally:
        writer.close()


async def main():
    if os.path.exists(path):
        os.unlink(path)
    server = await asyncio.start_unix_server(serve, path=path, backlog=16384)
    with open(os.path.join(directory, "runtime-ready"), "w", encoding="utf-8") as ready:
        ready.write(str(os.getpid()))
    async with server:
        await server.serve_forever()


asyncio.run(main())
