#!/usr/bin/env python3
"""A runtime that breaks the protocol on purpose: MODE is garbage, truncated,
non_array or huge (a 2 GiB length prefix). Used by the end-to-end tests."""

import os
import socket
import struct
import sys

MODE = sys.argv[1]
directory = os.environ["ASYA_SOCKET_DIR"]
path = os.path.join(directory, os.environ.get("ASYA_SOCKET_NAME", "asya-runtime.sock"))
if os.path.exists(path):
    os.unlink(path)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(16)
with open(os.path.join(directory, "runtime-ready"), "w", encoding="utf-8") as ready:
    ready.write(str(os.getpid()))

while True:
    connection, _ = server.accept()
    with connection:
        (length,) = struct.unpack(">I", connection.recv(4, socket.MSG_WAITALL))
        connection.recv(length, socket.MSG_WAITALL)
        if MODE == "garbage":
            body = b"this is not json {"
            connection.sendall(struct.pack(">I", len(body)) + body)
        elif MODE == "truncated":
            connection.sendall(struct.pack(">I", 100) + b'[{"payload"')
        elif MODE == "non_array":
            body = b'{"payload": 1}'
            connection.sendall(struct.pack(">I", len(body)) + body)
        elif MODE == "huge":
            connection.sendall(struct.pack(">I", 2**31) + b"[" * 64)
        else:
            sys.exit(f"unknown mode {MODE}")
