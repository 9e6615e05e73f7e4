"""Example Asya handlers, built into wasya actors with `wasya build --python`.

Plain functions and a class, exactly as Asya's Python runtime takes them; nothing here
knows about WebAssembly.
"""

# How many times a Greeter was made: once, however many messages it greets.
GREETERS_MADE = 0


def shout(payload):
    """A payload transform: uppercases the text and counts its words."""
    text = payload["text"]
    print(f"shouting {len(text)} characters")
    return {"text": text.upper(), "words": len(text.split())}


def words(payload):
    """A fan-out: one result per word."""
    return [{"word": word, "index": index} for index, word in enumerate(payload["text"].split())]


def refuse(payload):
    """A failure: raises, so the envelope goes to error-end with this exception."""
    raise ValueError(f"refused: {payload.get('reason', 'no reason given')}")


def skip(_payload):
    """No result: the route ends here and the original goes to happy-end."""
    return None


class Greeter:
    """A class handler: built once (a model would be loaded here), then called per message."""

    def __init__(self):
        global GREETERS_MADE
        GREETERS_MADE += 1
        self.greeting = "Hello"
        self.greeted = 0

    def greet(self, payload):
        self.greeted += 1
        return {
            "greeting": f"{self.greeting}, {payload['name']}",
            "greeted": self.greeted,
            "greeters_made": GREETERS_MADE,
        }


def add_hop(envelope):
    """Envelope mode: sends the envelope on to one more actor, named by the payload."""
    route = envelope["route"]
    route["actors"].append(envelope["payload"]["then"])
    route["current"] += 1
    return envelope


def fetch_status(payload):
    """A network step: fetches ``payload["url"]`` (the actor must be granted its host
    with ``allowed_outbound_hosts``) and answers with the status and the body's length.
    ``wasya_http`` comes with ``wasya build``; it is imported here, in the handler, so
    the module still loads where it is absent."""
    import wasya_http

    response = wasya_http.get(payload["url"])
    return {
        "status": response.status_code,
        "length": len(response.content),
        "type": response.headers.get("content-type"),
    }


async def fetch_both(payload):
    """An async network step (built for the async world, many calls per instance): two
    requests at once with ``asyncio.gather``. Answers with the trace context the first
    request carried (the envelope's, passed on by ``wasya_http``) and what the second
    echoed back."""
    import asyncio

    import wasya_http

    print(f"fetching for {payload['tag']}")
    first, second = await asyncio.gather(
        wasya_http.get(payload["url"]),
        wasya_http.post(payload["url"], json={"tag": payload["tag"]}),
    )
    return {
        "tag": payload["tag"],
        "traceparent": first.json()["headers"].get("traceparent"),
        "echoed": second.json()["body"],
        "status": second.status_code,
    }


async def wait_on(payload):
    """An async step that mostly waits, as an LLM call does: one request to
    ``payload["url"]``, then a short ``asyncio.sleep``."""
    import asyncio

    import wasya_http

    response = await wasya_http.get(payload["url"])
    await asyncio.sleep(0.01)
    return {"status": response.status_code, "length": len(response.content)}
