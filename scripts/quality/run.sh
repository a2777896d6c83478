#!/usr/bin/env bash
# `make quality`: the classifier's quality targets, measured with the release CLI as a user runs
# it, on the data in ../shared; writes QUALITY.md. Not part of `make test` (hours on 2 cores).
#
#   star      STAR subflow (24 call types): train on train/, evaluate on dev/      goal macro-F1 >= 0.99
#   banking77 Banking77 (77 intents): our seeded, stratified 10% dev split        goal accuracy >= 92%
#   fewshot   Banking77 with 10 labeled examples per intent (seeded), dev 20 per intent from the
#             rest, trained with the plain command (the few-shot schedule is the default's):
#             goal accuracy >= 85% (docs/few-labels.md)
#   long      the long-call benchmark (scripts/long-calls/bench.py: STAR dev calls inside 1,000-5,000
#             words of generic talk, early / middle / late), for the STAR model above and for one
#             trained with the same command and settings on STAR train where a third of the calls
#             are wrapped in a disjoint pool of generic talk (docs/long-calls.md)
#
# Knobs: QUALITY_SECTIONS ("star banking77 long fewshot"), QUALITY_WORK (quality-out, kept: models and
# reports), QUALITY_OUT (QUALITY.md), CALLTYPE_SHARED (../shared), CARGO, RAYON_NUM_THREADS,
# QUALITY_BENCH_PER_CELL (2: calls per label in each position x length cell of the benchmark),
# QUALITY_BIN (a calltype binary to use instead of building the release CLI) and
# QUALITY_BACKBONE (instead of fetching all-MiniLM-L6-v2), for quick trial runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}
SHARED=${CALLTYPE_SHARED:-../shared}
WORK=${QUALITY_WORK:-quality-out}
OUT=${QUALITY_OUT:-QUALITY.md}
SECTIONS=${QUALITY_SECTIONS:-star banking77 long fewshot}
PER_CELL=${QUALITY_BENCH_PER_CELL:-2}
BACKBONE=${QUALITY_BACKBONE:-models/all-MiniLM-L6-v2}
STAR=$SHARED/datasets/star-contactlens
B77=$SHARED/datasets/banking77/train.csv
needs=("$STAR/train" "$STAR/dev")
[[ " $SECTIONS " == *" banking77 "* || " $SECTIONS " == *" fewshot "* ]] && needs+=("$B77")
for need in "${needs[@]}"; do
  [[ -e $need ]] || { echo "missing $need: the quality runs need ../shared (or CALLTYPE_SHARED)" >&2; exit 1; }
done
mkdir -p "$WORK"
[[ -n ${QUALITY_BACKBONE:-} ]] || scripts/fetch-backbone.sh >&2
if [[ -n ${QUALITY_BIN:-} ]]; then
  bin=$QUALITY_BIN
else
  echo "== building the release CLI" >&2
  $CARGO build --release --locked -p calltype >&2
  target=$($CARGO metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  bin=$target/release/calltype
fi
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

if [[ " $SECTIONS " == *" fewshot "* ]]; then
  python3 scripts/quality/split.py "$B77" "$WORK/banking77-few10.csv" --label-column category \
    --train-per-label 10 --dev-per-label 20 --seed 42 >&2
  few=(--data "$WORK/banking77-few10.csv" --text-column text --label-column category)
  rm -rf "$WORK/fewshot"
  # No --epochs or --lr: what a user with few labels gets (model::default_schedule).
  step fewshot-train "$bin" train --backbone "$BACKBONE" "${few[@]}" --split train \
    --dev "$WORK/banking77-few10.csv" --dev-split dev --max-tokens 64 --out "$WORK/fewshot"
  step fewshot-eval "$bin" eval --model "$WORK/fewshot" "${few[@]}" --split dev \
    --report "$WORK/fewshot-report"
fi

if [[ " $SECTIONS " == *" long "* ]]; then
  [[ -d $WORK/star ]] || { echo "the long section needs the star model: QUALITY_SECTIONS='star long'" >&2; exit 1; }
  rm -rf "$WORK/long-bench" "$WORK/wrapped-train" "$WORK/star-long-data" "$WORK/star-long"
  # The benchmark: PER_CELL dev calls per label in each of 3 positions x 3 length buckets, in the
  # eval pool's generic talk (bench.py checks it shares no sentence with the train pool).
  python3 scripts/long-calls/bench.py "$STAR/dev" "$WORK/long-bench" \
    --labels "$STAR/dev/labels_subflow.csv" --per-cell "$PER_CELL" >&2
  # The long-trained model's data: STAR train where a seeded third of the calls are replaced by
  # copies wrapped in the train pool's generic talk (same contact ids, so the same labels CSV).
  python3 scripts/long-calls/wrap.py "$STAR/train" "$WORK/wrapped-train" --pool train \
    --fraction 0.3333 --seed 11 >&2
  mkdir -p "$WORK/star-long-data"
  for f in "$STAR"/train/*.json; do
    w=$WORK/wrapped-train/${f##*/}
    [[ -e $w ]] && f=$w
    ln -s "$(realpath "$f")" "$WORK/star-long-data/"
  done
  step long-train "$bin" train --backbone "$BACKBONE" --data "$WORK/star-long-data" \
    --labels "$STAR/train/labels_subflow.csv" --dev "$STAR/dev" \
    --dev-labels "$STAR/dev/labels_subflow.csv" "${star_settings[@]}" --out "$WORK/star-long"
  for model in star star-long; do
    step "long-$model-plain" "$bin" eval --model "$WORK/$model" "${star_dev[@]}" \
      --report "$WORK/long-$model-plain"
    step "long-$model-bench" "$bin" eval --model "$WORK/$model" --data "$WORK/long-bench" \
      --report "$WORK/long-$model-bench"
  done
fi

end=$(date +%s)
python3 scripts/quality/report.py "$WORK" --seconds "$((end - start))" --shared "$SHARED" \
  --rev "$rev" --keep "$OUT" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "== wrote $OUT ($((end - start)) s)" >&2
