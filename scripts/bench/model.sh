#!/usr/bin/env bash
# The model benchmark (opt-in: `BENCH_MODEL=1 make bench`, or this script alone): candle against
# PyTorch + transformers (eager, float32) and ONNX Runtime (fp32 and dynamic int8, the model
# exported with torch.onnx.export) on the same classifier directory and the same texts, then
# BENCHMARKS-MODEL.md. Opt-in because the PyTorch side needs a ~2.8 GB download
# (scripts/bench/model-venv.sh, a bench-only venv; never `make test`'s).
#
# 1. Training examples/s: `model::train` against the Hugging Face Trainer, same backbone
#    (models/all-MiniLM-L6-v2), same examples (the sample calls' train split, as transcripts),
#    same token ids and settings (batch 16, lr 5e-5, linear warm-up 10% and decay, weight decay
#    0.01, clip 1.0, dropout on), BENCH_TRAIN_EPOCHS epochs at each of BENCH_TRAIN_TOKENS.
# 2. Inference texts/s and peak RSS at 128 and 512 tokens, batch 1 and 32, tokenization included,
#    each measurement in its own process, candle, PyTorch, ORT fp32 and ORT int8 taking turns
#    to go first over BENCH_MODEL_ROUNDS rounds; the model is the classifier candle trained in
#    step 1 (first token count), loaded from disk by every side (ORT: exported once by
#    scripts/bench/ort_bench.py); label agreement and the largest probability difference.
# 3. Peak RSS of short 512-token training runs (micro-batch x gradient accumulation in
#    BENCH_TRAIN512, e.g. "4x4 8x2"), candle and PyTorch.
# 4. The allocator: candle's 512-token training steps (batch 16, 3 steps) with glibc's default
#    settings against `model::keep_freed_memory` (what `calltype train` runs with),
#    alternating for BENCH_MALLOC_ROUNDS rounds.
#
# Knobs: BENCH_VENV (.bench-venv), BENCH_THREADS (2), BENCH_MODEL_ROUNDS (3), BENCH_MODEL_TEXTS
# (64), BENCH_TRAIN_TOKENS ("128 256"), BENCH_TRAIN_EPOCHS (2), BENCH_TRAIN512 ("4x4 8x2"),
# BENCH_MALLOC_ROUNDS (2), BENCH_MODEL_OUT (BENCHMARKS-MODEL.md), BENCH_MODEL_WORK (keep the raw
# JSON there), BENCH_ISA (unset; `avx2` runs candle's own kernels as on a CPU without AVX-512,
# see crates/bench/src/bin/model_bench.rs), CARGO.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}
VENV=${BENCH_VENV:-.bench-venv}
ROUNDS=${BENCH_MODEL_ROUNDS:-3}
LIMIT=${BENCH_MODEL_TEXTS:-64}
TRAIN_TOKENS=${BENCH_TRAIN_TOKENS:-128 256}
TRAIN_EPOCHS=${BENCH_TRAIN_EPOCHS:-2}
TRAIN512=${BENCH_TRAIN512:-4x4 8x2}
MALLOC_ROUNDS=${BENCH_MALLOC_ROUNDS:-2}
OUT=${BENCH_MODEL_OUT:-BENCHMARKS-MODEL.md}
CMD=${BENCH_CMD:-scripts/bench/model.sh}
export BENCH_THREADS=${BENCH_THREADS:-2}
export RAYON_NUM_THREADS=$BENCH_THREADS
BACKBONE=models/all-MiniLM-L6-v2

if [[ -n ${BENCH_MODEL_WORK:-} ]]; then
  work=$BENCH_MODEL_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi

scripts/bench/model-venv.sh "$VENV"
scripts/fetch-backbone.sh >&2
echo "== building (release): model_bench" >&2
$CARGO build --release --locked -p bench --bin model_bench
target=$($CARGO metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
mb=$target/release/model_bench
py=(env PYTHONUNBUFFERED=1 "$VENV/bin/python" scripts/bench/torch_bench.py)
ort=(env PYTHONUNBUFFERED=1 "$VENV/bin/python" scripts/bench/ort_bench.py)

# Each measurement appends `{"file", "load_before", "load_after"}` to loads.jsonl.
measure() {
  local out=$1
  shift
  local before
  before=$(cut -d' ' -f1 /proc/loadavg)
  "$@" >"$out"
  printf '{"file": "%s", "load_before": %s, "load_after": %s}\n' "$(basename "$out")" \
    "$before" "$(cut -d' ' -f1 /proc/loadavg)" >>"$work/loads.jsonl"
}

start=$(date +%s)
# The code measured, for the report (which may be regenerated later from $work).
echo "$(git rev-parse --short HEAD)$([[ -n $(git status --porcelain --untracked-files=no) ]] && echo ' dirty')" \
  >"$work/code.rev"
"$mb" peak >"$work/peak.json"
"$mb" texts --calls samples/calls --labels samples/labels.csv --out "$work/texts.jsonl" >/dev/null
"$VENV/bin/python" - "$work/texts.jsonl" "$BACKBONE/tokenizer.json" >"$work/tokens.json" <<'PY'
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[2]); t.no_truncation(); t.no_padding()
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(json.dumps({"ids": [r["id"] for r in rows], "split": [r["split"] for r in rows],
                  "tokens": [len(t.encode(r["text"], add_special_tokens=False).ids) + 2 for r in rows]}))
PY

first_tok=${TRAIN_TOKENS%% *}
for tok in $TRAIN_TOKENS; do
  echo "== 1. training at $tok tokens, batch 16, $TRAIN_EPOCHS epochs: candle, then the Trainer" >&2
  measure "$work/train_candle_$tok.json" "$mb" train --backbone "$BACKBONE" --texts "$work/texts.jsonl" \
    --split train --max-tokens "$tok" --batch 16 --epochs "$TRAIN_EPOCHS" --out "$work/clf-$tok"
  measure "$work/train_torch_$tok.json" "${py[@]}" train --backbone "$BACKBONE" --texts "$work/texts.jsonl" \
    --split train --max-tokens "$tok" --batch 16 --epochs "$TRAIN_EPOCHS"
done

model=$work/clf-$first_tok
echo "== 2. exporting the classifier to ONNX: fp32, and dynamic int8" >&2
"${ort[@]}" export --model "$model" --out "$work/onnx" >"$work/onnx_export.json"
sides=(candle torch ort ort8)
for r in $(seq 1 "$ROUNDS"); do
  for tok in 128 512; do
    for b in 1 32; do
      echo "== 2. inference round $r/$ROUNDS: $tok tokens, batch $b" >&2
      # Each round starts with the next side, so no side always runs first.
      for ((k = 0; k < ${#sides[@]}; k++)); do
        side=${sides[$(((r - 1 + k) % ${#sides[@]}))]}
        common=(--texts "$work/texts.jsonl" --limit "$LIMIT" --max-tokens "$tok" --batch "$b"
          --dump "$work/probs_${side}_${tok}_$b.json")
        case $side in
          candle) cmd=("$mb" infer --model "$model" "${common[@]}") ;;
          torch) cmd=("${py[@]}" infer --model "$model" "${common[@]}") ;;
          ort) cmd=("${ort[@]}" infer --side ort --onnx "$work/onnx/model.onnx" --model "$model" "${common[@]}") ;;
          ort8) cmd=("${ort[@]}" infer --side ort8 --onnx "$work/onnx/model.int8.onnx" --model "$model" "${common[@]}") ;;
        esac
        measure "$work/infer_${side}_${tok}_${b}_$r.json" "${cmd[@]}"
      done
    done
  done
done

for spec in $TRAIN512; do
  micro=${spec%x*}
  accum=${spec#*x}
  n=$((micro * accum * 2))
  echo "== 3. 512-token training memory: micro-batch $micro x $accum, $n examples (2 steps)" >&2
  measure "$work/train512_candle_$spec.json" "$mb" train --backbone "$BACKBONE" --texts "$work/texts.jsonl" \
    --split train --max-tokens 512 --batch "$micro" --grad-accum "$accum" --limit "$n" --out "$work/clf-512-$spec"
  measure "$work/train512_torch_$spec.json" "${py[@]}" train --backbone "$BACKBONE" --texts "$work/texts.jsonl" \
    --split train --max-tokens 512 --batch "$micro" --grad-accum "$accum" --limit "$n"
done
for r in $(seq 1 "$MALLOC_ROUNDS"); do
  order=(glibc keep)
  ((r % 2)) || order=(keep glibc)
  for m in "${order[@]}"; do
    echo "== 4. allocator round $r/$MALLOC_ROUNDS: 512 tokens, batch 16, malloc $m" >&2
    measure "$work/malloc_${m}_$r.json" "$mb" train --backbone "$BACKBONE" --texts "$work/texts.jsonl" \
      --split train --max-tokens 512 --batch 16 --limit 48 --malloc "$m" --out "$work/clf-malloc"
  done
done
end=$(date +%s)

python3 scripts/bench/report_model.py "$work" --cmd "$CMD" --seconds "$((end - start))" \
  --rounds "$ROUNDS" --train-tokens "$TRAIN_TOKENS" --train512 "$TRAIN512" --venv "$VENV" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "== wrote $OUT ($((end - start)) s of benchmarks)" >&2
