#!/usr/bin/env python3
"""Drives a node for the GPU check: submits COUNT envelopes through ROUTE with
CONCURRENCY clients, waits for every outcome, and prints throughput and where the time
went. Standard library only.

usage: gpu_drive.py NODE_URL ROUTE COUNT CONCURRENCY
"""

import json
import sys
import threading
import time
import urllib.request

node, route, count, concurrency = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        node + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


latencies, compute, devices, failures = [], [], set(), []
lock = threading.Lock()
indices = iter(range(count))


def worker():
    while True:
        with lock:
            index = next(indices, None)
        if index is None:
            return
        started = time.perf_counter()
        payload = {"text": f"envelope number {index} for the gpu"}
        submitted = call("POST", "/v1/envelopes", {"route": route, "payload": payload})
        outcome = call("GET", f"/v1/envelopes/{submitted['id']}?wait=120s")
        elapsed = (time.perf_counter() - started) * 1000.0
        with lock:
            if outcome["status"] != "succeeded":
                failures.append(outcome)
                continue
            latencies.append(elapsed)
            result = outcome["results"][0]
            compute.append(result.get("compute_ms", 0.0))
            devices.add(result.get("device", "none"))


started = time.perf_counter()
threads = [threading.Thread(target=worker) for _ in range(concurrency)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
wall = time.perf_counter() - started


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


print(f"route: {' -> '.join(route)}; device: {', '.join(sorted(devices))}")
print(f"envelopes: {count} ({len(failures)} failed), concurrency {concurrency}, wall {wall:.2f} s")
print(f"throughput: {len(latencies) / wall:.1f} envelopes/s")
print(f"end-to-end latency: p50 {quantile(latencies, 0.5):.2f} ms, p99 {quantile(latencies, 0.99):.2f} ms")
print(f"inside the GPU handler: p50 {quantile(compute, 0.5):.3f} ms, p99 {quantile(compute, 0.99):.3f} ms")
rest = [total - inner for total, inner in zip(latencies, compute)]
print(f"everything else (HTTP, queues, wasm hops, socket, Python runtime): p50 {quantile(rest, 0.5):.2f} ms")
if failures:
    print("first failure:", json.dumps(failures[0])[:2000])
    sys.exit(1)
