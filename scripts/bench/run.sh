#!/usr/bin/env bash
# `make bench`: builds the release binaries, runs the three ingest benchmarks and writes
# BENCHMARKS.md. Inputs are generated into a temporary directory from a real Contact Lens
# file (BENCH_BASE); nothing is copied into the repository.
#
# Knobs (environment): BENCH_BASE (a Version 1.1.0 voice file), BENCH_SECONDS (time per file
# and stage, default 2), BENCH_ROUNDS (Rust/Python alternations, default 3), BENCH_STARTS (Lambda starts, default 10), BENCH_STORE (moto|local),
# BENCH_OUT (where BENCHMARKS.md goes, default the repository root), CARGO; BENCH_SERVE_TEXTS
# and BENCH_SERVE_ROUNDS (section 4); BENCH_CLASSIFY_STARTS and BENCH_CLASSIFY_CALLS (section 5); BENCH_MODEL=1 also runs scripts/bench/model.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}
BASE=${BENCH_BASE:-/work/shared/fixtures/contact-lens/scv_voice_raw_v1.1.0_7c77422d_analysis_2022-06-22.json}
SECONDS_PER=${BENCH_SECONDS:-2}
STARTS=${BENCH_STARTS:-10}
STORE=${BENCH_STORE:-moto}
OUT=${BENCH_OUT:-BENCHMARKS.md}
CMD=${BENCH_CMD:-make bench}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The project's pinned moto (make test-deps, a no-op once installed), which the harness prefers
# to any moto_server on PATH: an older one (5.2.1 was seen here) fails the large-master appends.
if [[ $STORE == moto && -z ${MOTO_SERVER:-} ]]; then
  make test-deps >&2
fi

echo "== building (release): the ingest Lambda as shipped, then the bench binaries" >&2
$CARGO build --release --locked -p ingest
$CARGO build --release --locked -p bench -p classify --bins
target=$($CARGO metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target/release

echo "== inputs from $BASE" >&2
python3 scripts/bench/make_inputs.py "$BASE" "$work/inputs"
mkdir -p "$work/csv"

start=$(date +%s)
# Rust and Python alternate in rounds, so that load from other processes falls on both alike.
ROUNDS=${BENCH_ROUNDS:-3}
per_round=$(python3 -c "print($SECONDS_PER / $ROUNDS)")
for r in $(seq 1 "$ROUNDS"); do
  echo "== 1. parse -> row -> CSV, round $r/$ROUNDS: Rust core, then the Python seed" >&2
  "$bin/parse_bench" "$work/inputs/manifest.json" --seconds "$per_round" --dump-dir "$work/csv" >"$work/rust_$r.json"
  python3 scripts/bench/seed_handler.py "$work/inputs/manifest.json" --seconds "$per_round" \
    --dump-dir "$work/csv" >"$work/python_$r.json"
done
echo "== 2. ingest Lambda: start, one event, peak RSS ($STARTS starts)" >&2
"$bin/lambda_bench" "$bin/ingest" "$work/inputs/voice_300k.json" --starts "$STARTS" >"$work/lambda.json"
echo "== 3. bytes moved per append ($STORE)" >&2
"$bin/append_bench" --store "$STORE" >"$work/append.json"
echo "== 4. labeling through serve over HTTP vs in-process" >&2
scripts/fetch-backbone.sh >&2
"$bin/model_bench" texts --calls samples/calls --labels samples/labels.csv --out "$work/texts.jsonl" >/dev/null
"$bin/model_bench" make-classifier --backbone models/all-MiniLM-L6-v2 --out "$work/clf" \
  --labels address_change,billing_dispute,cancellation,card_not_received,payment_arrangement,technical_fault >/dev/null
"$bin/serve_bench" --model "$work/clf" --texts "$work/texts.jsonl" --limit "${BENCH_SERVE_TEXTS:-64}" \
  --rounds "${BENCH_SERVE_ROUNDS:-3}" >"$work/serve.json"
echo "== 5. classify Lambda, embedded mode: cold start from S3 and a directory, time per call" >&2
# The model as `calltype train` writes it for long calls: overlapping windows, max pooling.
printf '{"max_tokens": 256, "long_text": {"kind": "windows", "overlap": 63, "pool": "max"}, "batch_size": 32, "temperature": 1.0}\n' \
  >"$work/clf/calltype.json"
"$bin/classify_bench" "$bin/classify" "$work/clf" "$work/texts.jsonl" --starts "${BENCH_CLASSIFY_STARTS:-5}" \
  --calls "${BENCH_CLASSIFY_CALLS:-32}" --words 1000 >"$work/classify.json"
end=$(date +%s)

python3 scripts/bench/report.py "$work" --cmd "$CMD" --base "$BASE" \
  --seconds "$((end - start))" --ingest "$bin/ingest" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "== wrote $OUT ($((end - start)) s of benchmarks)" >&2

# Opt-in: candle against PyTorch (a ~2.8 GB bench-only venv), BENCHMARKS-MODEL.md.
if [[ ${BENCH_MODEL:-0} == 1 ]]; then
  scripts/bench/model.sh
fi
