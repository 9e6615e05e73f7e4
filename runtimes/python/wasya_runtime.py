#!/usr/bin/env python3
"""A reference external runtime for wasya socket actors (Python standard library only).

It speaks the runtime protocol of the Asya actor mesh, so a wasya node (or Asya's own
sidecar) can forward envelopes to Python handlers:

* listens on the Unix socket ``$ASYA_SOCKET_DIR/$ASYA_SOCKET_NAME``
  (defaults ``/var/run/asya`` and ``asya-runtime.sock``), and writes ``runtime-ready``
  into that directory once it serves; removes both on SIGTERM / SIGINT;
* one connection per message: a 4-byte big-endian length, then that many bytes of
  UTF-8 JSON, in both directions; the request is the whole envelope;
* the answer is always a JSON array: one item per result, ``[]`` for no result, or one
  ``{"error", "details"}`` item when the handler raised.

Handlers (``ASYA_HANDLER``):

* ``module.function``: called for every message;
* ``module.Class.method``: the class is instantiated once (load a model once), the
  method is called for every message.

Modes (``ASYA_HANDLER_MODE``):

* ``payload`` (default): ``f(payload)`` returns a value (one result), a list (one result
  per item: fan-out) or ``None`` (no result: the route is aborted);
* ``envelope``: ``f(envelope)`` returns an envelope or a list of them, and must advance
  ``route.current`` itself.

``ASYA_RUNTIME_CONCURRENT=1`` serves connections on threads instead of one at a time.
"""

import importlib
import json
import logging
import os
import signal
import socketserver
import struct
import sys
import traceback

LOG = logging.getLogger("wasya_runtime")
HEADER = struct.Struct(">I")
MAX_REQUEST = int(os.environ.get("ASYA_MAX_REQUEST_BYTES", str(256 * 1024 * 1024)))


class ProtocolError(Exception):
    """The peer broke the framing."""


def read_exact(stream, count):
    chunks = []
    remaining = count
    while remaining:
        chunk = stream.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ProtocolError(f"connection closed with {remaining} of {count} bytes unread")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(stream):
    (length,) = HEADER.unpack(read_exact(stream, HEADER.size))
    if length > MAX_REQUEST:
        raise ProtocolError(f"request of {length} bytes exceeds {MAX_REQUEST}")
    return read_exact(stream, length)


def write_frame(stream, value):
    body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    stream.sendall(HEADER.pack(len(body)) + body)


def load_handler(spec):
    """`module.function` or `module.Class.method`."""
    parts = spec.split(".")
    if len(parts) < 2:
        raise ValueError(f"ASYA_HANDLER={spec!r}: expected module.function or module.Class.method")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            target = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue
            raise
        for index, name in enumerate(parts[split:]):
            target = getattr(target, name)
            if isinstance(target, type) and index < len(parts[split:]) - 1:
                target = target()  # a class: one instance, reused for every message
        return target
    raise ValueError(f"ASYA_HANDLER={spec!r}: no importable module")


def error_item(code, error):
    return {
        "error": code,
        "details": {
            "message": str(error),
            "type": type(error).__name__,
            "traceback": traceback.format_exc(),
        },
    }


def advance(route):
    route = dict(route)
    route["current"] = int(route.get("current", 0)) + 1
    return route


def handle(handler, mode, envelope):
    """One envelope in, the response array out."""
    if mode == "envelope":
        results = handler(envelope)
        if results is None:
            return []
        return results if isinstance(results, list) else [results]
    results = handler(envelope.get("payload"))
    if results is None:
        return []
    if not isinstance(results, list):
        results = [results]
    route = advance(envelope.get("route") or {})
    items = []
    for result in results:
        item = {"payload": result, "route": route}
        if envelope.get("headers"):
            item["headers"] = envelope["headers"]
        items.append(item)
    return items


def make_request_handler(handler, mode):
    class Connection(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                request = read_frame(self.request)
            except ProtocolError as error:
                LOG.warning("bad request frame: %s", error)
                return
            try:
                envelope = json.loads(request)
            except ValueError as error:
                write_frame(self.request, [error_item("msg_parsing_error", error)])
                return
            LOG.info("handling envelope %s", envelope.get("id"))
            try:
                response = handle(handler, mode, envelope)
            except Exception as error:  # the handler's failure is the envelope's outcome
                LOG.info("handler failed on %s: %r", envelope.get("id"), error)
                response = [error_item("processing_error", error)]
            try:
                write_frame(self.request, response)
            except (TypeError, ValueError) as error:
                write_frame(self.request, [error_item("processing_error", error)])

    return Connection


class Server(socketserver.UnixStreamServer):
    allow_reuse_address = True


class ThreadingServer(socketserver.ThreadingMixIn, Server):
    daemon_threads = True


def main():
    logging.basicConfig(
        level=os.environ.get("ASYA_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    socket_dir = os.environ.get("ASYA_SOCKET_DIR", "/var/run/asya")
    socket_path = os.path.join(socket_dir, os.environ.get("ASYA_SOCKET_NAME", "asya-runtime.sock"))
    ready_path = os.path.join(socket_dir, "runtime-ready")
    mode = os.environ.get("ASYA_HANDLER_MODE", "payload")
    if mode not in ("payload", "envelope"):
        sys.exit(f"ASYA_HANDLER_MODE={mode!r}: expected payload or envelope")
    spec = os.environ.get("ASYA_HANDLER")
    if not spec:
        sys.exit("ASYA_HANDLER is not set (module.function or module.Class.method)")
    sys.path.insert(0, os.environ.get("ASYA_HANDLER_PATH", os.getcwd()))
    handler = load_handler(spec)
    for stale in (socket_path, ready_path):
        if os.path.exists(stale):
            os.unlink(stale)
    concurrent = os.environ.get("ASYA_RUNTIME_CONCURRENT", "") in ("1", "true", "yes")
    server_class = ThreadingServer if concurrent else Server
    server = server_class(socket_path, make_request_handler(handler, mode))
    server.request_queue_size = 1024

    def stop(signum, _frame):
        LOG.info("signal %s: stopping", signum)
        for path in (ready_path, socket_path):
            if os.path.exists(path):
                os.unlink(path)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(ready_path, "w", encoding="utf-8") as ready:
        ready.write(str(os.getpid()))
    LOG.info("serving %s (%s mode) on %s", spec, mode, socket_path)
    server.serve_forever()


if __name__ == "__main__":
    main()
