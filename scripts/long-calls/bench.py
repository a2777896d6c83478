#!/usr/bin/env python3
"""The long-call benchmark: labelled calls inside generic call-centre talk, 1,000 to 5,000 words
a call, with the conversation that decides the label placed early, in the middle or late.

    python3 scripts/long-calls/bench.py SRC_DIR OUT_DIR --labels CSV [--per-cell 2] [--seed 17]
    python3 scripts/long-calls/bench.py --check

Each benchmark call is one source call (a STAR dev call: its whole transcript is the decisive
conversation) with generic talk of wrap.py's *eval* pool around it: OPENING and FILLER exchanges
before it, FILLER and CLOSING exchanges after it. It sits in one cell of buckets x positions:

    bucket    its words in all (generic + source): [1000, 2000), [2000, 3500) or [3500, 5000)
    position  the share of its generic words that come before the source conversation:
              early [0, 0.10], middle [0.45, 0.55], late [0.90, 1.00]

For every call the total and the share are drawn uniformly in the cell's ranges, the talk is
added turn by turn as close to the drawn budgets as whole turns allow, and a draw that lands
outside the cell is drawn again, so every call's words and share lie in its cell's ranges.
Every cell holds --per-cell calls of every label. A label's calls are dealt out to its cells
after a seeded shuffle, so the benchmark uses as many distinct source calls as a label has (up
to 9 x per-cell) and repeats a call, at another position or length, only when the label has
fewer. Every benchmark call gets its own contact id (uuid5 of the source id, the cell and its
slot), so the same source call at two positions does not collide.

OUT_DIR gets one Contact Lens JSON file per call, labels.csv (contact_id,label) for
`calltype eval --data OUT_DIR`, and manifest.csv: contact_id, source_contact_id, label,
position, bucket, words, words_before, call_words, words_after, before_share. The same
arguments give the same files. Before building (and alone with --check) it checks that no
sentence template of the eval pool is one of the train pool's, and that no generic talk names a
STAR task (wrap.check_pools).
"""
import argparse
import csv
import json
import os
import random
import sys
import uuid
from collections import Counter, defaultdict

from wrap import CLOSING, FILLER, NAMES, OPENING, SURNAMES, assemble, check_pools, values

BUCKETS = {"1000-2000": (1000, 2000), "2000-3500": (2000, 3500), "3500-5000": (3500, 5000)}
POSITIONS = {"early": (0.0, 0.10), "middle": (0.45, 0.55), "late": (0.90, 1.0)}
BEFORE = OPENING + FILLER
AFTER = FILLER + CLOSING
TRIES = 200


def fill(pool, budget, rng, who):
    """Exchanges drawn from `pool` turn by turn; a turn is added while it brings the word count
    closer to `budget`, so the last exchange may stop early."""
    turns, words = [], 0
    while True:
        v = values(rng, who)
        for role, text in rng.choice(pool):
            t = text.format(**v)
            n = len(t.split())
            if abs(words + n - budget) >= abs(words - budget):
                return turns, words
            turns.append((role, t))
            words += n


def place(doc, call_words, bucket, position, rng):
    """`doc` wrapped for one cell: (new doc, words, words before, words after)."""
    lo, hi = BUCKETS[bucket]
    p_lo, p_hi = POSITIONS[position]
    if call_words >= hi:
        sys.exit(f"a source call of {call_words} words does not fit the {bucket} bucket")
    who = {"agent": rng.choice(NAMES), "name": rng.choice(NAMES), "surname": rng.choice(SURNAMES)}
    for _ in range(TRIES):
        total = rng.randint(max(lo, call_words + 1), hi - 1)
        generic = total - call_words
        before, n_before = fill(BEFORE, round(rng.uniform(p_lo, p_hi) * generic), rng, who)
        after, n_after = fill(AFTER, generic - n_before, rng, who)
        words = n_before + call_words + n_after
        share = n_before / (n_before + n_after)
        if lo <= words < hi and p_lo <= share <= p_hi:
            new, counted = assemble(doc, before, after, rng)
            assert counted == words, (counted, words)
            return new, words, n_before, n_after
    sys.exit(f"no draw of {TRIES} fits the {bucket} bucket at position {position}")


def transcript_words(doc):
    return sum(len(t.get("Content", "").split()) for t in doc.get("Transcript", []))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="?", help="a directory of Contact Lens JSON files (STAR dev)")
    ap.add_argument("out", nargs="?", help="the benchmark directory to write (replaced)")
    ap.add_argument("--labels", help="contact_id,label CSV of SRC_DIR")
    ap.add_argument("--per-cell", type=int, default=2, help="calls per label in each cell (2)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--check", action="store_true", help="only check the pools of generic talk")
    a = ap.parse_args()
    check_pools()
    if a.check:
        print("generic talk: the eval and train pools share no sentence template; no task words")
        return
    if not (a.src and a.out and a.labels):
        ap.error("SRC_DIR, OUT_DIR and --labels are needed")
    if a.per_cell < 1:
        ap.error("--per-cell must be at least 1")
    with open(a.labels, newline="", encoding="utf-8") as f:
        label = {r["contact_id"]: r["label"] for r in csv.DictReader(f)}
    by_label = defaultdict(list)
    for f in sorted(os.listdir(a.src)):
        if f.endswith(".json") and f.split("_analysis")[0] in label:
            by_label[label[f.split("_analysis")[0]]].append(f)
    if not by_label:
        sys.exit(f"no file of {a.src} has a label in {a.labels}")
    if os.path.isdir(a.out):
        for f in os.listdir(a.out):
            if f.endswith((".json", ".csv")):
                os.remove(os.path.join(a.out, f))
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    slots = [(p, b, k) for p in POSITIONS for b in BUCKETS for k in range(a.per_cell)]
    rows = []
    for lab in sorted(by_label):
        files = by_label[lab]
        rng.shuffle(files)
        for i, (position, bucket, k) in enumerate(slots):
            f = files[i % len(files)]
            old = f.split("_analysis")[0]
            with open(os.path.join(a.src, f), encoding="utf-8") as fh:
                doc = json.load(fh)
            call_words = transcript_words(doc)
            doc, words, n_before, n_after = place(doc, call_words, bucket, position, rng)
            new = str(uuid.uuid5(uuid.NAMESPACE_URL,
                                 f"calltype-bench:{a.seed}:{old}:{position}:{bucket}:{k}"))
            meta = dict(doc.get("CustomerMetadata", {}))
            meta["ContactId"] = new
            doc["CustomerMetadata"] = meta
            with open(os.path.join(a.out, new + f[len(old):]), "w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"))
            rows.append({"contact_id": new, "source_contact_id": old, "label": lab,
                         "position": position, "bucket": bucket, "words": words,
                         "words_before": n_before, "call_words": call_words,
                         "words_after": n_after,
                         "before_share": f"{n_before / (n_before + n_after):.4f}"})
    ids = Counter(r["contact_id"] for r in rows)
    assert max(ids.values()) == 1, "contact ids must be unique"
    with open(os.path.join(a.out, "labels.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["contact_id", "label"])
        w.writerows(sorted((r["contact_id"], r["label"]) for r in rows))
    with open(os.path.join(a.out, "manifest.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    words = sorted(r["words"] for r in rows)
    print(f"benchmark of {len(rows)} calls in {a.out}: {len(by_label)} labels x "
          f"{len(POSITIONS)} positions x {len(BUCKETS)} buckets x {a.per_cell}; "
          f"{len({r['source_contact_id'] for r in rows})} distinct source calls; words per call "
          f"median {words[len(words) // 2]}, min {words[0]}, max {words[-1]}")


if __name__ == "__main__":
    main()
