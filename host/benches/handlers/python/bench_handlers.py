"""The handlers the language benchmark runs, in a Python runtime and built into wasm."""


def double(payload):
    """Small: double a number."""
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
