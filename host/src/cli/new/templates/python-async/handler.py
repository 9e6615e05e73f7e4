"""The handler of the actor {{name}}: an async Asya handler, for the async world.

An `async def` handler is built for wasya:actor@0.2.0, where one instance serves many
calls at once: while one awaits (an HTTP call with `await wasya_http.post(...)`, an
`asyncio.sleep`), the others run. It takes the envelope's payload and returns the next
one. Return a list to fan out, None to end the route, or raise to send the envelope to
error-end with the exception's type, message and traceback.
"""

import asyncio


async def process(payload):
    text = str(payload.get("text", ""))
    # Where a real step awaits its API call (`await wasya_http.post(url, json=...)`).
    await asyncio.sleep(0)
    return {"text": text.upper(), "length": len(text)}
