"""The handlers the language benchmark runs, in a Python runtime and built into wasm."""


def double(payload):
    """Small: double a number."""
    return {"n": payload["n"] * 2}


async def double_async(payload):
    """Small, as an async def: built for the async world, many calls in one instance."""
    return {"n": payload["n"] * 2}


def tally(payload):
    """JSON-heavy: totals and a per-tag breakdown of a list of order lines."""
    total = 0.0
    by_tag = {}
    lines = []
    for item in payload["items"]:
        amount = item["price"] * item["qty"]
        total += amount
        for tag in item["tags"]:
            by_tag[tag] = by_tag.get(tag, 0.0) + amount
        lines.append({"id": item["id"], "amount": amount, "tags": len(item["tags"])})
    return {"total": total, "by_tag": by_tag, "lines": lines}


def chat(payload):
    """I/O-bound, plain def: one OpenAI-compatible chat-completions request."""
    import wasya_http

    answer = wasya_http.post(payload["url"], json=_chat_request(payload))
    return _chat_answer(answer)


async def chat_async(payload):
    """I/O-bound, async def (the async world): the same request, awaited."""
    import wasya_http

    answer = await wasya_http.post(payload["url"], json=_chat_request(payload))
    return _chat_answer(answer)


def _chat_request(payload):
    return {"model": "bench", "messages": [{"role": "user", "content": payload.get("prompt", "hi")}]}


def _chat_answer(answer):
    answer.raise_for_status()
    return {"text": answer.json()["choices"][0]["message"]["content"]}
