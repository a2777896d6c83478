#!/usr/bin/env bash
# Profiles contact_lens::parse with perf on the ~300 KB generated file. The workspace's
# release binaries are stripped, so this builds a throwaway crate with symbols in a temporary
# directory (same crate versions, via the workspace Cargo.lock) and prints where the time goes,
# grouped. Needs perf. Not part of `make bench`; the result is summarised in notes.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
BASE=${BENCH_BASE:-/work/shared/fixtures/contact-lens/scv_voice_raw_v1.1.0_7c77422d_analysis_2022-06-22.json}
command -v perf >/dev/null || { echo "perf not found" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/bench/make_inputs.py "$BASE" "$work/inputs"
mkdir -p "$work/prof/src"
cp Cargo.lock "$work/prof/"
cat >"$work/prof/Cargo.toml" <<TOML
[package]
name = "parse-prof"
version = "0.1.0"
edition = "2021"
[dependencies]
contact-lens = { path = "$root/crates/contact-lens" }
[profile.release]
debug = true
strip = false
lto = "thin"
codegen-units = 4
[workspace]
TOML
cat >"$work/prof/src/main.rs" <<'RS'
fn main() {
    let mut a = std::env::args().skip(1);
    let (path, key) = (a.next().unwrap(), a.next().unwrap());
    let body = std::fs::read(path).unwrap();
    let t = std::time::Instant::now();
    let mut turns = 0;
    while t.elapsed().as_secs_f64() < 5.0 {
        turns += contact_lens::parse(&body, Some(&key)).unwrap().turns.len();
    }
    println!("{turns}");
}
RS
(cd "$work/prof" && cargo build --release --offline -q)
key=$(python3 -c 'import json,sys; print([f for f in json.load(open(sys.argv[1]))["files"] if f["name"]=="300k"][0]["key"])' "$work/inputs/manifest.json")
perf record -q -o "$work/perf.data" "$work/prof/target/release/parse-prof" "$work/inputs/voice_300k.json" "$key" >/dev/null
perf report -i "$work/perf.data" --no-children --stdio --sort symbol 2>/dev/null | python3 -c '
import collections, re, sys
groups = collections.Counter()
for line in sys.stdin:
    m = re.match(r" +([0-9.]+)%\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    p, s = float(m[1]), m[2]
    if "fast::Reader::skip" in s: k = "reader: validating and skipping unused values"
    elif "fast::" in s: k = "reader: tokens, keys, kept strings and numbers"
    elif "FieldVisitor" in s: k = "serde derive: matching field names (serde_json path)"
    elif "serde_json" in s or "serde_core" in s: k = "serde_json (fallback path)"
    elif "memmove" in s or "memcpy" in s: k = "memmove (copies)"
    elif re.search("malloc|free|unlink_chunk|realloc", s): k = "allocator"
    elif "push_normalised" in s: k = "whitespace normalisation of turn text"
    elif "from_utf8" in s: k = "UTF-8 validation"
    elif "contact_lens" in s: k = "contact_lens: building the Contact"
    else: k = "other"
    groups[k] += p
for k, v in groups.most_common():
    print(f"{v:5.1f}%  {k}")
'
