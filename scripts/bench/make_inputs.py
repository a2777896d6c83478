#!/usr/bin/env python3
"""Writes Contact Lens voice files of ~20 KB, ~100 KB and ~300 KB for the benchmarks.

The base is a real Version 1.1.0 voice capture (raw copy). Its Transcript turns are repeated
with shifted offsets, fresh ids and varied wording until the file reaches each target size.
Files are written compact (no indentation), as Contact Lens writes them, into OUT_DIR, with a
manifest.json naming each file, its size, its turn count and an analysis key for it.

Usage: make_inputs.py BASE_JSON OUT_DIR
"""
import json
import sys
import uuid
from pathlib import Path

TARGETS = [("20k", 20_000), ("100k", 100_000), ("300k", 300_000)]
NS = uuid.UUID("6f1d2c1e-0000-4000-8000-000000000000")


def vary(text, r):
    """Rotates the words of a turn by r positions: same vocabulary, different text."""
    words = text.split()
    if len(words) < 2:
        return text
    k = r % len(words)
    return " ".join(words[k:] + words[:k])


def build(base, target):
    turns = base["Transcript"]
    period = max(t["EndOffsetMillis"] for t in turns) + 1000
    doc = json.loads(json.dumps(base))
    doc["Transcript"] = []
    r = 0
    while True:
        for i, t in enumerate(turns):
            nt = dict(t)
            nt["BeginOffsetMillis"] = t["BeginOffsetMillis"] + r * period
            nt["EndOffsetMillis"] = t["EndOffsetMillis"] + r * period
            nt["Id"] = str(uuid.uuid5(NS, f"{target}-{r}-{i}"))
            nt["Content"] = vary(t["Content"], r)
            doc["Transcript"].append(nt)
            last = nt["EndOffsetMillis"]
            doc["ConversationCharacteristics"]["TotalConversationDurationMillis"] = last
            body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
            if len(body) >= target:
                return doc, body
        r += 1


def main():
    base_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    base = json.loads(base_path.read_text())
    assert base["Version"] == "1.1.0" and base.get("Channel", "VOICE") == "VOICE", base_path
    cid = base["CustomerMetadata"]["ContactId"]
    files = []
    for name, target in TARGETS:
        doc, body = build(base, target)
        path = out / f"voice_{name}.json"
        path.write_bytes(body)
        files.append(
            {
                "name": name,
                "path": str(path),
                "bytes": len(body),
                "turns": len(doc["Transcript"]),
                "key": f"Analysis/Voice/2022/06/22/{cid}_analysis_2022-06-22T16:55:00Z.json",
                "contact_id": cid,
            }
        )
    (out / "manifest.json").write_text(json.dumps({"base": str(base_path), "files": files}, indent=1))
    for f in files:
        print(f"  {f['name']}: {f['bytes']} bytes, {f['turns']} turns", file=sys.stderr)


if __name__ == "__main__":
    main()
