"""The handler of the actor {{name}}: a plain Asya handler, unchanged in wasm.

It takes the envelope's payload and returns the next one. Return a list to fan out
(one envelope per item), None to end the route, or raise to send the envelope to
error-end with the exception's type, message and traceback.
"""


def process(payload):
    text = str(payload.get("text", ""))
    return {"text": text.upper(), "length": len(text)}
