"""A GPU actor for the reference runtime: embeds a text or a vector with PyTorch.

The model (a fixed random projection, seeded, so answers are reproducible) is built
once when the runtime instantiates `Embedder`, on CUDA when a GPU is present and on the
CPU otherwise. Each call turns `payload.text` (hashed into features) or
`payload.values` into a tensor, projects and normalises it, and returns the embedding
with where and how long it ran:

    ASYA_HANDLER=embed.Embedder.embed ASYA_HANDLER_PATH=examples/gpu \\
        python3 runtimes/python/wasya_runtime.py
"""

import hashlib
import time

import torch

FEATURES = 1024
DIMENSIONS = 256


class Embedder:
    def __init__(self):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        generator = torch.Generator().manual_seed(0)
        weights = torch.randn(FEATURES, DIMENSIONS, generator=generator)
        self.projection = weights.to(self.device)
        self.name = torch.cuda.get_device_name(0) if self.device.type == "cuda" else "cpu"

    def features(self, payload):
        if "values" in payload:
            values = [float(value) for value in payload["values"]][:FEATURES]
            return values + [0.0] * (FEATURES - len(values))
        vector = [0.0] * FEATURES
        for token in str(payload.get("text", "")).split():
            digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
            vector[int.from_bytes(digest, "little") % FEATURES] += 1.0
        return vector

    def embed(self, payload):
        started = time.perf_counter()
        batch = torch.tensor([self.features(payload)], dtype=torch.float32, device=self.device)
        embedding = torch.nn.functional.normalize(batch @ self.projection, dim=1)[0]
        values = embedding.tolist()  # copies back to the host, so the GPU work is done
        return {
            **payload,
            "embedding": values[:8],
            "dimensions": len(values),
            "device": self.name,
            "compute_ms": (time.perf_counter() - started) * 1000.0,
        }
