#!/usr/bin/env bash
# `make quality`: the classifier's quality targets, measured with the release CLI as a user runs
# it, on the data in ../shared; writes QUALITY.md. Not part of `make test` (hours on 2 cores).
#
#   star      STAR subflow (24 call types): train on train/, evaluate on dev/      goal macro-F1 >= 0.99
#   banking77 Banking77 (77 intents): our seeded, stratified 10% dev split        goal accuracy >= 92%
#   long      long calls: STAR dev calls wrapped in generic call-centre talk; head+tail against
#             overlapping windows (mean and max pooling), for the STAR model above and for one
#             trained with wrapped calls among its training calls (docs/long-calls.md)
#
# Knobs: QUALITY_SECTIONS ("star banking77 long"), QUALITY_WORK (quality-out, kept: models and
# reports), QUALITY_OUT (QUALITY.md), CALLTYPE_SHARED (../shared), CARGO, RAYON_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}
SHARED=${CALLTYPE_SHARED:-../shared}
WORK=${QUALITY_WORK:-quality-out}
OUT=${QUALITY_OUT:-QUALITY.md}
SECTIONS=${QUALITY_SECTIONS:-star banking77 long}
BACKBONE=models/all-MiniLM-L6-v2
STAR=$SHARED/datasets/star-contactlens
B77=$SHARED/datasets/banking77/train.csv
for need in "$STAR/train" "$STAR/dev" "$B77"; do
  [[ -e $need ]] || { echo "missing $need: the quality runs need ../shared (or CALLTYPE_SHARED)" >&2; exit 1; }
done
mkdir -p "$WORK"
scripts/fetch-backbone.sh >&2
echo "== building the release CLI" >&2
$CARGO build --release --locked -p calltype >&2
target=$($CARGO metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target/release/calltype
start=$(date +%s)
rev=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates scripts Cargo.lock || echo +changes)

# Each step is logged (the command first) to $WORK/<name>.log; its JSON results stay in $WORK.
step() {
  local name=$1
  shift
  echo "== $name: $*" >&2
  { echo "\$ $*"; "$@"; } >"$WORK/$name.log" 2>&1 || { tail -20 "$WORK/$name.log" >&2; exit 1; }
}

star_train=(--data "$STAR/train" --labels "$STAR/train/labels_subflow.csv")
star_dev=(--data "$STAR/dev" --labels "$STAR/dev/labels_subflow.csv")
star_settings=(--max-tokens 128 --epochs 6 --batch-size 16 --lr 1e-4)

if [[ " $SECTIONS " == *" star "* ]]; then
  rm -rf "$WORK/star"
  step star-train "$bin" train --backbone "$BACKBONE" "${star_train[@]}" \
    --dev "$STAR/dev" --dev-labels "$STAR/dev/labels_subflow.csv" "${star_settings[@]}" --out "$WORK/star"
  step star-eval "$bin" eval --model "$WORK/star" "${star_dev[@]}" --report "$WORK/star-report"
fi

if [[ " $SECTIONS " == *" banking77 "* ]]; then
  python3 scripts/quality/split.py "$B77" "$WORK/banking77.csv" --label-column category \
    --dev-fraction 0.1 --seed 42 >&2
  b77=(--data "$WORK/banking77.csv" --text-column text --label-column category)
  rm -rf "$WORK/banking77"
  step banking77-train "$bin" train --backbone "$BACKBONE" "${b77[@]}" --split train \
    --dev "$WORK/banking77.csv" --dev-split dev --max-tokens 64 --batch-size 16 --lr 2e-4 \
    --epochs 8 --label-smoothing 0.1 --out "$WORK/banking77"
  step banking77-eval "$bin" eval --model "$WORK/banking77" "${b77[@]}" --split dev \
    --report "$WORK/banking77-report"
fi

if [[ " $SECTIONS " == *" long "* ]]; then
  [[ -d $WORK/star ]] || { echo "the long section needs the star model: QUALITY_SECTIONS='star long'" >&2; exit 1; }
  # The validation set: 8 dev calls per label, wrapped in the eval pool's generic talk.
  rm -rf "$WORK/wrapped-dev" "$WORK/wrapped-train" "$WORK/star-aug"
  python3 scripts/long-calls/wrap.py "$STAR/dev" "$WORK/wrapped-dev" \
    --labels "$STAR/dev/labels_subflow.csv" --per-label 8 >&2
  # Training copies: a third of the training calls wrapped in the disjoint train pool, under new
  # contact ids, beside the plain training calls.
  python3 scripts/long-calls/wrap.py "$STAR/train" "$WORK/wrapped-train" --pool train \
    --fraction 0.34 --seed 11 --new-ids --labels "$STAR/train/labels_subflow.csv" >&2
  mkdir -p "$WORK/star-aug"
  for f in "$STAR"/train/*.json "$WORK"/wrapped-train/*.json; do ln -s "$(realpath "$f")" "$WORK/star-aug/"; done
  { cat "$STAR/train/labels_subflow.csv"; tail -n +2 "$WORK/wrapped-train/labels.csv"; } >"$WORK/star-aug/labels.csv"
  rm -rf "$WORK/star-long"
  step long-train "$bin" train --backbone "$BACKBONE" --data "$WORK/star-aug" \
    --labels "$WORK/star-aug/labels.csv" --dev "$STAR/dev" --dev-labels "$STAR/dev/labels_subflow.csv" \
    --max-tokens 128 --epochs 2 --batch-size 16 --lr 1e-4 --out "$WORK/star-long"
  for model in star star-long; do
    for lt in head-tail:0.5 windows:31 windows:31:max; do
      step "long-$model-plain-$lt" "$bin" eval --model "$WORK/$model" "${star_dev[@]}" \
        --long-text "$lt" --report "$WORK/long-$model-plain-$lt"
      step "long-$model-wrapped-$lt" "$bin" eval --model "$WORK/$model" --data "$WORK/wrapped-dev" \
        --labels "$STAR/dev/labels_subflow.csv" --long-text "$lt" --report "$WORK/long-$model-wrapped-$lt"
    done
  done
fi

end=$(date +%s)
python3 scripts/quality/report.py "$WORK" --seconds "$((end - start))" --shared "$SHARED" \
  --rev "$rev" --keep "$OUT" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "== wrote $OUT ($((end - start)) s)" >&2
