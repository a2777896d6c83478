#!/usr/bin/env python3
"""Adds a `split` column (train/dev) to a labelled CSV: a seeded, stratified hold-out.

    python3 scripts/quality/split.py IN.csv OUT.csv --label-column category [--dev-fraction 0.1] [--seed 42]

Per label, round(n * fraction) rows (at least one row stays in train) go to dev, chosen by a
seeded shuffle, so the split is the same on every machine. With --train-per-label N (a few-shot
set) each label instead gives N rows to train and the next --dev-per-label M (default: all the
rest) to dev; rows beyond those get split `unused`. `calltype train --split train --dev
OUT.csv --dev-split dev` and `calltype eval --split dev` then use it.
"""
import argparse
import csv
import random
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--label-column", default="label")
    ap.add_argument("--dev-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--train-per-label", type=int)
    ap.add_argument("--dev-per-label", type=int)
    args = ap.parse_args()
    with open(args.src, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    if args.label_column not in fields:
        raise SystemExit(f"{args.src}: no column {args.label_column!r} (has {fields})")
    if "split" in fields:
        raise SystemExit(f"{args.src} already has a split column")
    by_label = defaultdict(list)
    for i, r in enumerate(rows):
        by_label[r[args.label_column]].append(i)
    rng = random.Random(args.seed)
    dev, unused = set(), set()
    for label in sorted(by_label):
        idx = by_label[label]
        rng.shuffle(idx)
        if args.train_per_label:
            n = args.train_per_label
            m = len(idx) - n if args.dev_per_label is None else args.dev_per_label
            dev.update(idx[n:n + m])
            unused.update(idx[n + m:])
            continue
        k = min(round(len(idx) * args.dev_fraction), len(idx) - 1)
        dev.update(idx[:k])
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields + ["split"])
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({**r, "split": "dev" if i in dev else "unused" if i in unused else "train"})
    print(f"{len(rows)} rows: {len(rows) - len(dev) - len(unused)} train, {len(dev)} dev, "
          f"{len(unused)} unused, {len(by_label)} labels")


if __name__ == "__main__":
    main()
