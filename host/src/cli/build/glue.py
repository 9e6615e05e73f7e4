"""The glue `wasya build` puts around an Asya handler to make it a wasya actor.

Generated at build time: the handler and mode below are filled in by `wasya build`.
It gives the handler Asya's runtime semantics on the `actor` world of wasya:

* the handler is named as ``ASYA_HANDLER`` names it: ``module.function``, or
  ``module.Class.method`` (the class is instantiated once, here, when the component is
  built and its state pre-initialised; with warm instances it lives on between
  messages, as in a runtime process);
* payload mode: ``f(payload)`` returns a value (one result), a list (one result per
  item: fan-out) or ``None`` (no result: the route is aborted);
* envelope mode: ``f(envelope)`` returns an envelope or a list of them, and advances
  ``route.current`` itself;
* an exception goes to error-end with its class name, message and traceback (written
  to stderr, which the node attaches);
* ``wasya_http`` (shipped beside this glue) lets the handler call out over HTTP.

The world's part follows this common part: a plain ``def`` handler is called once per
instance on ``wasya:actor@0.1.0``; an ``async def`` one is awaited on
``wasya:actor@0.2.0``, many calls at once in one instance.
"""

import importlib
import inspect
import json
import traceback

import wit_world
from componentize_py_types import Err
from wit_world.imports import wasya_actor_types as types

# Imported here so that it is in the pre-initialised interpreter: the component has
# no file system, and a handler's `import wasya_http` finds it loaded.
import wasya_http  # noqa: F401

HANDLER = "{{HANDLER}}"
MODE = "{{MODE}}"


def load_handler(spec):
    """`module.function` or `module.Class.method`, as Asya's runtime resolves it."""
    parts = spec.split(".")
    if len(parts) < 2:
        raise ValueError(f"handler {spec!r}: expected module.function or module.Class.method")
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
                target = target()
        return target
    raise ValueError(f"handler {spec!r}: no importable module")


HANDLE = load_handler(HANDLER)

# Compact, without the circular-reference check, UTF-8 as it is: a fifth faster than
# json.dumps in CPython on wasm, and the node reads it the same.
_ENCODE = json.JSONEncoder(separators=(",", ":"), check_circular=False, ensure_ascii=False).encode


def _route(route):
    metadata = route.get("metadata")
    return types.Route(
        actors=[str(actor) for actor in route.get("actors", [])],
        current=int(route.get("current", 0)),
        metadata=None if metadata is None else _ENCODE(metadata),
    )


def _headers(headers):
    if headers is None:
        return None
    return [types.Header(name=str(name), value=str(value)) for name, value in headers.items()]


def _envelope(msg):
    route = {"actors": list(msg.route.actors), "current": msg.route.current}
    if msg.route.metadata is not None:
        route["metadata"] = json.loads(msg.route.metadata)
    envelope = {
        "id": msg.id,
        "route": route,
        "headers": {header.name: header.value for header in msg.headers},
        "payload": json.loads(msg.payload),
    }
    if msg.parent_id is not None:
        envelope["parent_id"] = msg.parent_id
    return envelope


def _argument(msg):
    """What the handler is called with: the payload, or the envelope in envelope mode."""
    if MODE == "envelope":
        return _envelope(msg)
    return json.loads(msg.payload)


def _outputs(results):
    """The handler's return value as the world's outputs."""
    if results is None:
        return []
    if not isinstance(results, list):
        results = [results]
    if MODE == "envelope":
        return [
            types.Output(
                payload=_ENCODE(item.get("payload")),
                route=_route(item["route"]) if item.get("route") is not None else None,
                headers=_headers(item.get("headers")),
            )
            for item in results
        ]
    return [types.Output(payload=_ENCODE(result), route=None, headers=None) for result in results]
