#!/usr/bin/env bash
# The bench-only venv for the Python sides of scripts/bench/model.sh: PyTorch, transformers and
# accelerate (the Trainer needs it), ONNX Runtime, onnx and onnxscript (the export), pinned. Never `make test`'s .venv: PyPI's torch is a CUDA
# build, about 2.8 GB with its nvidia-* dependencies (4 GB+ unpacked), and `import torch` fails
# without them, so it stays out of the tests. A second run with the same pins is a no-op.
#
# Usage: scripts/bench/model-venv.sh [VENV]   (default .bench-venv, git-ignored)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-.bench-venv}
PINS="torch==2.15.0 transformers==5.23.0 accelerate==1.15.0 onnxruntime==1.31.1 onnx==1.23.2 onnxscript==0.7.2"
MARKER="$VENV/.bench-deps"
if [[ -f $MARKER && $(cat "$MARKER") == "$PINS" ]]; then
  exit 0
fi
echo "== bench venv $VENV: $PINS (a ~2.8 GB download the first time)" >&2
python3 -m venv "$VENV"
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install -q $PINS
"$VENV/bin/python" -c 'import torch, transformers, accelerate, onnx, onnxruntime, onnxscript' >/dev/null
echo "$PINS" >"$MARKER"
