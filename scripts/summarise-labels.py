#!/usr/bin/env python3
"""Print the labels the classify step wrote under a local bucket: calls per label, mean score."""
import csv
import glob
import os
import sys
from collections import defaultdict

csv.field_size_limit(sys.maxsize)
bucket = sys.argv[1] if len(sys.argv) > 1 else "local-bucket"
prefix = sys.argv[2] if len(sys.argv) > 2 else "calltype/"
paths = sorted(glob.glob(os.path.join(bucket, prefix, "labeled", "date=*", "part-*.csv")))
if not paths:
    sys.exit(f"no labeled CSVs under {bucket}/{prefix}labeled/")
scores = defaultdict(list)
for p in paths:
    with open(p, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            scores[row["label"]].append(float(row["score"]))
total = sum(len(s) for s in scores.values())
print(f"  {'label':<22}{'calls':>6}{'mean score':>12}")
for label, s in sorted(scores.items(), key=lambda kv: (-len(kv[1]), kv[0])):
    print(f"  {label:<22}{len(s):>6}{sum(s) / len(s):>12.3f}")
print(f"  {'total':<22}{total:>6}   in {len(paths)} labeled CSV(s):")
for p in paths:
    print(f"    {p}")
