#!/usr/bin/env bash
# `make test` step: the ingest Lambda through `cargo lambda watch` + `cargo lambda invoke`, with
# the three sample event shapes (SQS, direct S3, EventBridge) naming the same call. Each event
# must be handled with no failure, and the call must land in the master CSV exactly once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The binaries of the `cargo test --workspace` build (nothing to do after make test's cargo test):
# one build of the workspace for all of make test (see scripts/invoke-local.sh).
cargo test --workspace --locked --no-run -q >&2
export CALLTYPE_BINS=${CARGO_TARGET_DIR:-$root/target}/debug
bucket=$(mktemp -d)
trap 'rm -rf "$bucket"' EXIT
python3 samples/stage.py "$bucket" --only events >/dev/null
out=$(scripts/invoke-local.sh ingest "$bucket" \
  samples/events/sqs-s3-notification.json samples/events/s3-notification.json \
  samples/events/eventbridge-object-created.json)
echo "$out"
python3 - "$bucket" "$out" <<'PY'
import csv, glob, json, sys
bucket, out = sys.argv[1], sys.argv[2].splitlines()
assert len(out) == 3, out
assert json.loads(out[0]) == {"batchItemFailures": []}, out[0]
for line in out[1:]:
    r = json.loads(line)
    assert r["failed"] == 0 and r["quarantined"] == 0, line
masters = glob.glob(f"{bucket}/calltype/transcripts/date=*/transcripts.csv")
rows = [r for m in masters for r in csv.DictReader(open(m, newline=""))]
assert len(rows) == 1, f"expected the call once, found {len(rows)} rows"
print(f"1 passed, 0 failed: cargo lambda invoke ingest ({rows[0]['contact_id']} once after 3 events)")
PY
