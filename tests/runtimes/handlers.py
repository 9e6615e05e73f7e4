"""Handlers the end-to-end tests run behind the reference runtime."""

import threading
import time


def echo(payload):
    return payload


def upper(payload):
    return {**payload, "text": payload["text"].upper()}


def split(payload):
    return [{"word": word, "index": index} for index, word in enumerate(payload["text"].split())]


def drop(_payload):
    return None


def fail(payload):
    raise ValueError(f"fail always fails: {payload.get('reason', 'no reason')}")


def slow(payload):
    time.sleep(float(payload.get("seconds", 1)))
    return payload


def add_hop(envelope):
    """Envelope mode: appends payload.append to the route and moves on."""
    route = dict(envelope["route"])
    route["actors"] = list(route["actors"]) + [envelope["payload"]["append"]]
    route["current"] = route["current"] + 1
    return {**envelope, "route": route}


def set_current(envelope):
    """Envelope mode: returns the envelope with route.current set to payload.current
    (Asya's invalid_route_current_handler sets it past the end of the route)."""
    route = dict(envelope["route"])
    route["current"] = envelope["payload"]["current"]
    return {**envelope, "route": route}


class Peak:
    """Reports how many calls were in flight when each one started."""

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = 0

    def observe(self, payload):
        with self.lock:
            self.in_flight += 1
            peak = self.in_flight
        time.sleep(float(payload.get("seconds", 1)))
        with self.lock:
            self.in_flight -= 1
        return {"peak": peak}


def headers_seen(envelope):
    """Envelope mode: answers the headers the envelope came with, and moves on."""
    route = dict(envelope["route"])
    route["current"] = route["current"] + 1
    return {**envelope, "route": route, "payload": {"headers": envelope.get("headers") or {}}}
