#!/usr/bin/env bash
# Runs a Lambda of ours against `cargo lambda watch`'s Lambda runtime API on 127.0.0.1 and
# invokes it with event files through `cargo lambda invoke`, with a local directory as the bucket
# (no AWS account).
#
#   scripts/invoke-local.sh FUNCTION BUCKET_DIR EVENT.json [EVENT.json ...]
#
# Env passed to the function: CALLTYPE_BUCKET (default calltype-demo, the bucket the sample events
# name), CALLTYPE_LOCAL_DIR=BUCKET_DIR, and any CALLTYPE_* already set. Each response is printed
# as one line of JSON. The watch process and the function are always stopped on exit.
#
# The function binary is built here (`cargo build --workspace --bin FUNCTION`) unless
# CALLTYPE_BINS=DIR names a directory where it is built already: `make test` passes the one
# `cargo test --workspace` filled, since a `cargo build` resolves features without the
# dev-dependencies (aws-smithy-mocks turns on the SDK's test-util) and would compile the AWS SDK
# a second time. So watch runs with `--only-lambda-apis` (it serves the runtime API and
# compiles nothing) and this script starts the binary itself, as watch would, pointed at
# `/.rt/FUNCTION`.
set -euo pipefail
fn=$1; dir=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/.venv/bin:$PATH"
command -v cargo-lambda >/dev/null || { echo "cargo-lambda not found: run 'make lambda-deps'" >&2; exit 1; }
if [ -n "${CALLTYPE_BINS:-}" ]; then
  bin=$CALLTYPE_BINS/$fn
else
  (cd "$root" && cargo build --locked -q --workspace --bin "$fn")
  bin=${CARGO_TARGET_DIR:-$root/target}/debug/$fn
fi
[ -x "$bin" ] || { echo "no $fn binary at $bin" >&2; exit 1; }
port=${INVOKE_PORT:-$((9300 + RANDOM % 500))}
watch_log=$(mktemp); fn_log=$(mktemp)
setsid cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >"$watch_log" 2>&1 &
watch=$!
fn_pid=""
trap 'kill $fn_pid 2>/dev/null || true; kill -- -$watch 2>/dev/null || true
      wait 2>/dev/null || true; rm -f "$watch_log" "$fn_log"' EXIT
for _ in $(seq 1 60); do
  (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  kill -0 $watch 2>/dev/null || { cat "$watch_log" >&2; exit 1; }
  sleep 0.5
done
CALLTYPE_BUCKET=${CALLTYPE_BUCKET:-calltype-demo} CALLTYPE_LOCAL_DIR=$(cd "$dir" && pwd) \
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt/$fn" AWS_LAMBDA_FUNCTION_NAME="$fn" \
  AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=${AWS_LAMBDA_FUNCTION_MEMORY_SIZE:-4096} \
  "$bin" >"$fn_log" 2>&1 &
fn_pid=$!
for ev in "$@"; do
  out=$(cargo lambda invoke "$fn" -A 127.0.0.1 -P "$port" --data-file "$ev" --output-format json) || {
    echo "invoke $fn with $ev failed" >&2; tail -20 "$fn_log" "$watch_log" >&2; exit 1; }
  echo "$out" | tr -d '\n'; echo
done
