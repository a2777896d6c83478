#!/usr/bin/env bash
# `make demo`: the whole pipeline on the embedded defaults — a directory as the bucket and the
# model in-process — with no AWS account. Steps:
#   1. stage our sample calls under Contact Lens keys in $BUCKET (a directory)
#   2. ingest them into the master CSVs (what the ingest Lambda does)
#   3. fine-tune all-MiniLM-L6-v2 on the calls labeled `train` in samples/labels.csv
#      (kept in $MODEL; delete it, or `make demo-clean`, to train again)
#   4. classify every call (what the classify Lambda does, with the model in-process)
#   5. evaluate on the calls the model did not train on (`test`), report in $BUCKET-report/
#   6. run the Athena queries of infra/athena/ on the labeled CSVs with DuckDB
set -euo pipefail
cd "$(dirname "$0")/.."
BUCKET=${BUCKET:-local-bucket}
MODEL=${MODEL:-models/demo-classifier}
CALLTYPE=${CALLTYPE:-target/debug/calltype}
PY=${PY:-.venv/bin/python}
REPORT="$BUCKET-report"
SECONDS=0
step() { printf '\n== %s\n' "$*"; }

step "1. staging samples/calls into $BUCKET/ as Contact Lens would lay them out"
rm -rf "$BUCKET" "$REPORT"
python3 samples/stage.py "$BUCKET"

step "2. ingest (calltype ingest --store $BUCKET)"
"$CALLTYPE" ingest --store "$BUCKET"
python3 scripts/summarise-masters.py "$BUCKET"

step "3. fine-tune on the training calls (calltype train → $MODEL)"
if [ -f "$MODEL/config.json" ]; then
  echo "  $MODEL exists: reusing it (make demo-clean to train again)"
else
  "$CALLTYPE" train --backbone models/all-MiniLM-L6-v2 --data samples/calls \
    --labels samples/labels.csv --split train --epochs 5 --batch-size 8 --lr 2e-4 --max-tokens 256 --out "$MODEL"
fi

step "4. classify every call (calltype classify --store $BUCKET --model $MODEL)"
"$CALLTYPE" classify --store "$BUCKET" --model "$MODEL" --all-dates >/dev/null
echo "  labels written (the Athena table calltype.labeled reads these CSVs):"
python3 scripts/summarise-labels.py "$BUCKET"

step "5. accuracy on the calls it did not train on (calltype eval, split test)"
"$CALLTYPE" eval --model "$MODEL" --data samples/calls --labels samples/labels.csv --split test --report "$REPORT"
echo "  report: $REPORT/report.json, $REPORT/confusion.png"

step "6. the Athena queries of infra/athena/, run on the labeled CSVs with DuckDB"
# The sample calls are dated 2026-11-20..22; pin "today" so the 90-day windows include them.
"$PY" scripts/athena-local.py "$BUCKET" --today 2026-11-25

printf '\n== done in %dm%02ds (after the build): bucket %s/, model %s/, report %s/\n' \
  $((SECONDS / 60)) $((SECONDS % 60)) "$BUCKET" "$MODEL" "$REPORT"
