"""Example handlers calling out with the HTTP libraries people already use.

Nothing here knows about wasya: the same file runs under Asya's runtime (where httpx
and requests open sockets as usual) and in a wasya actor (where they go through the
node's ``wasi:http``, to the hosts the actor is granted). Build them from a virtual
environment that has httpx and requests installed.
"""

import socket

import httpx
import requests


def call_out(payload):
    """A sync step calling ``payload["url"]`` the way ``payload["with"]`` says: ``httpx``
    or ``requests`` (as an OpenAI-compatible client makes the call), or, needing a
    socket, ``urllib3`` (requests with its own adapter mounted by hand) or ``socket``."""
    how = payload["with"]
    if how == "httpx":
        response = httpx.post(payload["url"], json={"tag": payload.get("tag")})
    elif how == "requests":
        with requests.Session() as session:
            response = session.post(payload["url"], json={"tag": payload.get("tag")}, timeout=10)
    elif how == "urllib3":
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter())
        response = session.get(payload["url"], timeout=10)
    elif how == "socket":
        with socket.create_connection((payload["host"], payload["port"]), timeout=10) as connection:
            connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return {"read": len(connection.recv(1024))}
    else:
        raise ValueError(f"no way to call out named {how!r}")
    response.raise_for_status()
    return {"status": response.status_code, "json": response.json()}


async def call_out_async(payload):
    """The same with ``httpx.AsyncClient``: an async def handler, many calls per instance."""
    async with httpx.AsyncClient() as client:
        response = await client.post(payload["url"], json={"tag": payload.get("tag")})
    response.raise_for_status()
    return {"status": response.status_code, "json": response.json()}
