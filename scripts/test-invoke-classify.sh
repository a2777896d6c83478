#!/usr/bin/env bash
# `make test` step: the classify Lambda through `cargo lambda watch` + `cargo lambda invoke` with
# the sample schedule event, labeling the staged sample calls in both of the modes that run
# locally: through `calltype serve` (endpoint) and with the model inside the Lambda (embedded),
# the tiny BERT of ../shared/parity as the model. In each, every call must get exactly one
# labeled row, and a second invocation must label nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The binaries of the `cargo test --workspace` build (nothing to do after make test's cargo test):
# one build of the workspace for all of make test (see scripts/invoke-local.sh).
cargo test --workspace --locked --no-run -q >&2
export CALLTYPE_BINS=${CARGO_TARGET_DIR:-$root/target}/debug
shared=${CALLTYPE_SHARED:-$root/../shared}
model="$shared/parity/tiny-bert"
if [ ! -f "$model/config.json" ]; then
  [ "${CI:-}" = true ] && { echo "missing $model (../shared beside the checkout)" >&2; exit 1; }
  echo "skipped: $model not found"; exit 0
fi
for mode in endpoint embedded; do
bucket=$(mktemp -d)
first=$(MODE=$mode scripts/invoke-classify.sh "$bucket" "$model")
second=$(MODE=$mode scripts/invoke-classify.sh "$bucket" "$model")
echo "$first"; echo "$second"
python3 - "$bucket" "$first" "$second" "$mode" <<'PY'
import csv, glob, json, sys
bucket, first, second, mode = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
masters = glob.glob(f"{bucket}/calltype/transcripts/date=*/transcripts.csv")
ids = [r["contact_id"] for m in masters for r in csv.DictReader(open(m, newline=""))]
parts = glob.glob(f"{bucket}/calltype/labeled/date=*/part-*.csv")
rows = [r for p in parts for r in csv.DictReader(open(p, newline=""))]
labeled = [r["contact_id"] for r in rows]
assert len(ids) == 120, len(ids)
assert sorted(labeled) == sorted(ids), f"{mode}: {len(labeled)} labeled rows for {len(ids)} calls"
assert first["rows_labeled"] == 120 and first["rows_failed"] == 0, first
assert second["rows_labeled"] == 0, second
labels = {"billing", "cancel", "card", "tech_support"}  # the tiny BERT's
assert all(r["label"] in labels for r in rows), f"{mode}: labels not the model's"
if mode == "embedded":
    assert first["model"] == "tiny-bert", first
print(f"1 passed, 0 failed: cargo lambda invoke classify, {mode} mode ({len(ids)} calls labeled once, rerun labels 0)")
PY
rm -rf "$bucket"
done
