#!/usr/bin/env python3
"""The seed: the ingest handler's parse -> row -> CSV logic in plain Python (standard library
only), timed on the same files as the Rust core (crates/bench, parse_bench).

Usage: seed_handler.py MANIFEST_JSON [--seconds S] [--min-iters N] [--dump-dir DIR]
Prints one JSON object: per file, the median seconds per file and MB/s of input JSON.
"""
import argparse
import csv
import io
import json
import re
import statistics
import sys
import time
from pathlib import Path

KEY_DATE = re.compile(r"Analysis/(?:Voice|Chat)/(?:Redacted/)?(\d{4})/(\d{2})/(\d{2})/")
ROLE = {"AGENT": "AGENT", "CUSTOMER": "CUSTOMER"}


def handle(body, key, now):
    """One analysis file -> one CSV record (the master CSV's columns, in order)."""
    doc = json.loads(body)
    meta = doc.get("CustomerMetadata") or {}
    contact_id = meta.get("ContactId") or key.rsplit("/", 1)[-1].split("_analysis_")[0]
    m = KEY_DATE.search(key)
    date = f"{m[1]}-{m[2]}-{m[3]}" if m else ""
    roles = {p["ParticipantId"]: p.get("ParticipantRole", "") for p in doc.get("Participants", [])}
    turns = sorted(doc.get("Transcript", []), key=lambda t: t.get("BeginOffsetMillis", 0))
    parts = []
    for t in turns:
        text = " ".join(t.get("Content", "").split())
        if not text:
            continue
        role = ROLE.get(roles.get(t.get("ParticipantId"), t.get("ParticipantId")), "OTHER")
        parts.append(f"{role}: {text}")
    chars = doc.get("ConversationCharacteristics") or {}
    overall = (chars.get("Sentiment") or {}).get("OverallSentiment") or {}
    categories = (doc.get("Categories") or {}).get("MatchedCategories") or []
    summary = (
        ((chars.get("ContactSummary") or {}).get("PostContactSummary") or {}).get("Content") or ""
    )
    row = [
        contact_id,
        date,
        doc.get("Channel", "VOICE"),
        "true" if (doc.get("ContentMetadata") or {}).get("Output") == "Redacted" else "false",
        doc.get("LanguageCode", ""),
        doc.get("Version", ""),
        chars.get("TotalConversationDurationMillis", ""),
        len(turns),
        overall.get("CUSTOMER", ""),
        overall.get("AGENT", ""),
        "|".join(categories),
        " ".join(summary.split()),
        " ".join(parts),
        key,
        meta.get("InstanceId", ""),
        now,
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    return out.getvalue()


def time_loop(f, seconds, min_iters):
    f()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < seconds:
        t0 = time.perf_counter_ns()
        f()
        times.append(time.perf_counter_ns() - t0)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--min-iters", type=int, default=20)
    ap.add_argument("--dump-dir", help="write each file's CSV record to DIR/<name>.py.csv")
    a = ap.parse_args()
    manifest = json.loads(Path(a.manifest).read_text())
    results = []
    for f in manifest["files"]:
        body = Path(f["path"]).read_bytes()
        if a.dump_dir:
            record = handle(body, f["key"], "2026-01-01T00:00:00Z")
            Path(a.dump_dir, f"{f['name']}.py.csv").write_text(record, encoding="utf-8")
        now = "2026-01-01T00:00:00Z"
        times = time_loop(lambda: handle(body, f["key"], now), a.seconds, a.min_iters)
        med = statistics.median(times) / 1e9
        # json.loads alone (C code): the part of the seed no Python change can speed up.
        loads = time_loop(lambda: json.loads(body), a.seconds / 4, a.min_iters)
        loads_med = statistics.median(loads) / 1e9
        results.append(
            {
                "name": f["name"],
                "bytes": len(body),
                "iters": len(times),
                "median_s": med,
                "mb_per_s": len(body) / med / 1e6,
                "csv_bytes": len(handle(body, f["key"], now).encode()),
                "json_loads": {
                    "median_s": loads_med,
                    "mb_per_s": len(body) / loads_med / 1e6,
                    "iters": len(loads),
                },
            }
        )
    print(json.dumps({"python": sys.version.split()[0], "files": results}))


if __name__ == "__main__":
    main()
