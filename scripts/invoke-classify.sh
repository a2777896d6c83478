#!/usr/bin/env bash
# `make invoke-classify`: the classify Lambda under `cargo lambda watch`, invoked with the sample
# EventBridge schedule event, on a local directory as the bucket. MODE=endpoint (the default)
# labels through the SageMaker runtime API served by `calltype serve` on 127.0.0.1; MODE=embedded
# runs the model inside the Lambda (CALLTYPE_MODE=embedded, CALLTYPE_MODEL_DIR), as it does in AWS
# with no SageMaker endpoint.
#
#   [MODE=endpoint|embedded] scripts/invoke-classify.sh BUCKET_DIR MODEL_DIR
#
# The bucket's master CSVs are made first if it has none (samples staged and ingested). The
# Lambda looks back far enough to reach the sample calls' dates (2026-11-20..22). Prints the run
# report as one line of JSON; a second invocation labels nothing (exactly once).
set -euo pipefail
bucket=$1; model=$2
mode=${MODE:-endpoint}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case $mode in endpoint|embedded) ;; *) echo "MODE=$mode: expected endpoint or embedded" >&2; exit 2;; esac
[ -f "$model/config.json" ] || {
  echo "no model in $model: run 'make demo' first (it trains models/demo-classifier) or pass MODEL=DIR" >&2
  exit 1; }
# The CLI: built here, or already in CALLTYPE_BINS (see scripts/invoke-local.sh).
if [ -n "${CALLTYPE_BINS:-}" ]; then
  calltype=$CALLTYPE_BINS/calltype
else
  cargo build --locked -q --workspace --bin calltype
  calltype=${CARGO_TARGET_DIR:-$root/target}/debug/calltype
fi
if ! ls "$bucket"/calltype/transcripts/date=*/transcripts.csv >/dev/null 2>&1; then
  python3 samples/stage.py "$bucket" >/dev/null
  "$calltype" ingest --store "$bucket" >/dev/null
fi
days=$(python3 -c 'import datetime as d; print((d.date.today() - d.date(2026, 11, 20)).days + 1)')
export CALLTYPE_LOOKBACK_DAYS=$(( days > 3 ? days : 3 ))
if [ "$mode" = embedded ]; then
  # The Lambda loads the model at its cold start; it runs from another directory, so the path is absolute.
  export CALLTYPE_MODE=embedded CALLTYPE_MODEL_DIR=$(cd "$model" && pwd)
  exec scripts/invoke-local.sh classify "$bucket" "${@:3}" samples/events/classify-schedule.json
fi
port=${SERVE_PORT:-$((9800 + RANDOM % 100))}
log=$(mktemp)
"$calltype" serve --model "$model" --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ping")" = 200 ] && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 1
done
export CALLTYPE_MODE=endpoint CALLTYPE_ENDPOINT_NAME=calltype-local \
  AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:$port \
  AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local} \
  AWS_REGION=${AWS_REGION:-us-east-1} AWS_EC2_METADATA_DISABLED=true
scripts/invoke-local.sh classify "$bucket" "${@:3}" samples/events/classify-schedule.json
