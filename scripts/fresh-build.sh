#!/usr/bin/env bash
# A newcomer's first build, as far as cargo can tell one from another:
#
# 1. from an empty CARGO_HOME of its own, so the registry holds only what a plain
#    `cargo build` fetches (no dev-dependency, no other platform's crate), the node
#    builds, starts on the embedded queue and routes an envelope;
# 2. from another empty CARGO_HOME that a plain `cargo fetch` filled, it builds again
#    with the network cut off (`cargo build --offline`, in a network namespace of its
#    own where `unshare -n` works), the example actors' nested build included.
#
# The dependencies are built unoptimised here: this proves what the build needs, not
# how fast the node runs. Everything goes under target/fresh (or $WASYA_FRESH_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

work="${WASYA_FRESH_DIR:-$PWD/target/fresh}"
home="$work/cargo-home"
build="$work/build"
config=(--config 'profile.dev.package."*".opt-level=0')
mkdir -p "$work"
# The example actors' build goes there too, leaving guests/target as it was.
export WASYA_GUESTS_TARGET="$work/guests"

echo "fresh build: an empty CARGO_HOME, then cargo build"
rm -rf "$home"
mkdir -p "$home"
CARGO_HOME="$home" cargo build --locked --bin wasya --target-dir "$build" "${config[@]}"

echo "fresh build: the node it built serves"
data="$(mktemp -d)"
log="$work/up.log"
"$build/debug/wasya" --log-format json up --ephemeral --serve echo \
  --listen 127.0.0.1:0 --data-dir "$data" 2>"$log" &
node=$!
trap 'kill "$node" 2>/dev/null || true; rm -rf "$data"' EXIT
address=""
for _ in $(seq 1 600); do
  address="$(sed -n 's/.*"message":"HTTP API listening".*"address":"\([^"]*\)".*/\1/p' "$log" | head -n 1)"
  [ -n "$address" ] && break
  kill -0 "$node" 2>/dev/null || { cat "$log"; echo "the node exited"; exit 1; }
  sleep 0.2
done
[ -n "$address" ] || { cat "$log"; echo "the node did not listen"; exit 1; }
"$build/debug/wasya" send --node "http://$address" --route echo \
  --payload '{"fresh": true}' --wait --timeout 60s
kill "$node"
wait "$node" || true
trap - EXIT
rm -rf "$data"

echo "fresh build: an empty CARGO_HOME filled by cargo fetch, then cargo build --offline"
rm -rf "$home"
mkdir -p "$home"
CARGO_HOME="$home" cargo fetch --locked
# The node's build script (and the example actors' nested cargo in it) runs again.
rm -rf "$build"/debug/build/wasya-* "$build"/debug/.fingerprint/wasya-* "$WASYA_GUESTS_TARGET"
offline=()
if unshare -n true 2>/dev/null; then
  offline=(unshare -n)
fi
CARGO_HOME="$home" "${offline[@]}" cargo build --offline --locked --bin wasya \
  --target-dir "$build" "${config[@]}"
echo "fresh build: ok"
