"""An LLM step: one OpenAI-compatible chat-completions call per envelope.

An ``async def`` handler, so it is built for the async world: one instance holds
hundreds of these calls while they wait on the model, as one event loop would. The
call is plain httpx; the same file runs under Asya's runtime. The actor must be
granted the API's host (``allowed_outbound_hosts``); the key comes with the payload
here only to keep the example self-contained: a real actor reads it from its own
configuration.

Payload: ``{"prompt": "...", "url": "https://api.example/v1", "model"?: "...",
"api_key"?: "..."}``. Result: ``{"answer": "...", "model": "...", "tokens"?: N}``.
"""

import httpx

DEFAULT_MODEL = "gpt-4o-mini"


async def chat(payload):
    headers = {}
    if payload.get("api_key"):
        headers["authorization"] = f"Bearer {payload['api_key']}"
    request = {
        "model": payload.get("model", DEFAULT_MODEL),
        "messages": [{"role": "user", "content": payload["prompt"]}],
    }
    async with httpx.AsyncClient(base_url=payload["url"], headers=headers) as client:
        response = await client.post("/chat/completions", json=request)
    response.raise_for_status()
    answer = response.json()
    return {
        "answer": answer["choices"][0]["message"]["content"],
        "model": answer.get("model"),
        "tokens": answer.get("usage", {}).get("total_tokens"),
    }
