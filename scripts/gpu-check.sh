#!/usr/bin/env bash
# GPU check: runs the pipeline upper (wasm) -> embed (PyTorch on the GPU, behind the
# reference runtime) -> echo (wasm) on this machine and prints throughput and where the
# time goes. Needs python3 with torch; uses cargo to build wasya when it is there, else
# the binary in $WASYA_BIN (default: dist/wasya).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-2000}
CONCURRENCY=${CONCURRENCY:-16}

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
python3 - <<'PY' || echo "torch: not importable"
import torch
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
# The actor behind the socket (override to check the script without a GPU).
HANDLER=${HANDLER:-embed.Embedder.embed}
HANDLER_PATH=${HANDLER_PATH:-examples/gpu}

if [ -z "${WASYA_BIN:-}" ] && command -v cargo >/dev/null 2>&1; then
  cargo build --release
  WASYA_BIN=target/release/wasya
fi
WASYA_BIN=${WASYA_BIN:-dist/wasya}

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

ASYA_SOCKET_DIR="$work" ASYA_HANDLER="$HANDLER" ASYA_HANDLER_PATH="$HANDLER_PATH" \
  ASYA_RUNTIME_CONCURRENT=1 python3 runtimes/python/wasya_runtime.py 2>"$work/runtime.log" &
for _ in $(seq 1 600); do [ -f "$work/runtime-ready" ] && break; sleep 0.1; done
[ -f "$work/runtime-ready" ] || { cat "$work/runtime.log"; exit 1; }

"$WASYA_BIN" up --listen 127.0.0.1:18700 --data-dir "$work/data" \
  --socket-actor "embed=$work/asya-runtime.sock" --actor-concurrency "embed=$CONCURRENCY" \
  --serve upper,echo 2>"$work/node.log" &
python3 - <<'PY'
import time, urllib.request
for _ in range(600):
    try:
        urllib.request.urlopen("http://127.0.0.1:18700/readyz", timeout=1)
        break
    except Exception:
        time.sleep(0.1)
PY

echo "== warm-up"
python3 scripts/gpu_drive.py http://127.0.0.1:18700 upper,embed,echo 50 4 >/dev/null
echo "== wasm -> GPU actor -> wasm"
python3 scripts/gpu_drive.py http://127.0.0.1:18700 upper,embed,echo "$COUNT" "$CONCURRENCY"
echo "== baseline: the same route without the GPU actor (wasm -> wasm)"
python3 scripts/gpu_drive.py http://127.0.0.1:18700 upper,echo "$COUNT" "$CONCURRENCY" | grep -E "throughput|latency"
