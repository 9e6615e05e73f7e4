#!/usr/bin/env python3
"""An asyncio runtime for the socket benchmark: answers every envelope with its
payload after SLEEP seconds, serving thousands of connections at once."""

import asyncio
import json
import os
import struct
import sys

SLEEP = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
directory = os.environ["ASYA_SOCKET_DIR"]
path = os.path.join(directory, "asya-runtime.sock")


async def serve(reader, writer):
    try:
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        envelope = json.loads(await reader.readexactly(length))
        await asyncio.sleep(SLEEP)
        route = dict(envelope["route"], current=envelope["route"]["current"] + 1)
        body = json.dumps([{"payload": envelope["payload"], "route": route}]).encode()
        writer.write(struct.pack(">I", len(body)) + body)
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
