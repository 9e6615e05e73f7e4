"""An MCP client for the tests: the official Python SDK over streamable HTTP.

    mcp_client.py URL list
    mcp_client.py URL call TOOL ARGUMENTS_JSON

Prints one JSON object: the tools listed, or the call's result with the progress
notifications received on the way. Set MCP_TOKEN to send a bearer token.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
import httpx2 as httpx


async def main(url, command, rest):
    headers = {}
    if os.environ.get("MCP_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["MCP_TOKEN"]
    client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60.0))
    async with client, streamable_http_client(url, http_client=client) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            if command == "list":
                tools = (await session.list_tools()).tools
                print(json.dumps({"tools": [
                    {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}
                    for tool in tools
                ]}))
                return
            progress = []

            async def on_progress(value, total, message):
                progress.append({"progress": value, "total": total, "message": message})

            name, arguments = rest[0], json.loads(rest[1])
            result = await session.call_tool(name, arguments, progress_callback=on_progress)
            print(json.dumps({
                "is_error": bool(result.is_error),
                "text": [block.text for block in result.content if getattr(block, "text", None) is not None],
                "progress": progress,
            }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
