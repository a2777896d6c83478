#!/usr/bin/env python3
"""Print one line per master CSV under a local bucket: calls, turns, categories seen."""
import csv
import glob
import os
import sys
from collections import Counter

csv.field_size_limit(sys.maxsize)
bucket = sys.argv[1] if len(sys.argv) > 1 else "local-bucket"
prefix = sys.argv[2] if len(sys.argv) > 2 else "calltype/"
paths = sorted(glob.glob(os.path.join(bucket, prefix, "transcripts", "date=*", "transcripts.csv")))
if not paths:
    sys.exit(f"no master CSVs under {bucket}/{prefix}transcripts/")
total = 0
for p in paths:
    with open(p, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total += len(rows)
    cats = Counter(c for r in rows for c in r["categories"].split("|") if c)
    top = ", ".join(f"{c} {n}" for c, n in cats.most_common(3))
    print(f"  {p}: {len(rows)} calls, {sum(int(r['turns']) for r in rows)} turns; top categories: {top}")
print(f"  {total} calls in {len(paths)} partitions")
