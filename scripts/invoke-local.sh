#!/usr/bin/env bash
# Runs a Lambda of ours under `cargo lambda watch` on 127.0.0.1 and invokes it with event files,
# exactly as `cargo lambda invoke` does, with a local directory as the bucket (no AWS account).
#
#   scripts/invoke-local.sh FUNCTION BUCKET_DIR EVENT.json [EVENT.json ...]
#
# Env passed to the function: CALLTYPE_BUCKET (default calltype-demo, the bucket the sample events
# name), CALLTYPE_LOCAL_DIR=BUCKET_DIR, and any CALLTYPE_* already set. Each response is printed
# as one line of JSON. The watch process is always stopped on exit.
set -euo pipefail
fn=$1; dir=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/.venv/bin:$PATH"
command -v cargo-lambda >/dev/null || { echo "cargo-lambda not found: run 'make lambda-deps'" >&2; exit 1; }
port=${INVOKE_PORT:-$((9300 + RANDOM % 500))}
log=$(mktemp)
cargo build --locked -q -p "$fn" --bin "$fn"   # so the watcher starts at once
CALLTYPE_BUCKET=${CALLTYPE_BUCKET:-calltype-demo} CALLTYPE_LOCAL_DIR=$(cd "$dir" && pwd) \
  setsid cargo lambda watch -A 127.0.0.1 -P "$port" --ignore-changes >"$log" 2>&1 &
watch=$!
trap 'kill -- -$watch 2>/dev/null || true; wait $watch 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  kill -0 $watch 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 1
done
for ev in "$@"; do
  out=$(cargo lambda invoke "$fn" -A 127.0.0.1 -P "$port" --data-file "$ev" --output-format json) || {
    echo "invoke $fn with $ev failed" >&2; tail -20 "$log" >&2; exit 1; }
  echo "$out" | tr -d '\n'; echo
done
