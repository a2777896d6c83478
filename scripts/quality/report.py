#!/usr/bin/env python3
"""QUALITY.md from the outputs of scripts/quality/run.sh (a work directory of models, eval
reports and step logs). Each section says when, on which code and on which machine it was
measured. A section whose outputs are absent from WORK is copied from the `--keep` file (the
previous QUALITY.md) when that has it, so `QUALITY_SECTIONS=banking77 make quality` replaces only
the Banking77 section; otherwise it is left out.

    python3 scripts/quality/report.py WORK [--seconds N] [--rev REV] [--keep QUALITY.md] > QUALITY.md
"""
import argparse
import csv
import json
import os
import platform
import subprocess
from datetime import datetime, timezone


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def command(work, step):
    """The command line a step ran (first line of its log, after `$ `)."""
    try:
        with open(os.path.join(work, f"{step}.log"), encoding="utf-8") as f:
            first = f.readline().strip()
    except FileNotFoundError:
        return None
    if not first.startswith("$ "):
        return None
    # Quote paths relative to the repository (run.sh runs there), not this machine's layout.
    return first[2:].replace(os.getcwd() + os.sep, "")


def epochs_table(log):
    rows = ["| epoch | train loss | dev loss | dev accuracy | dev macro-F1 | seconds | saved |",
            "|---:|---:|---:|---:|---:|---:|---|"]
    for e in log["epochs"]:
        d = e.get("dev") or {}
        rows.append(f"| {e['epoch']} | {e['train_loss']:.4f} | {d.get('loss', float('nan')):.4f} | "
                    f"{d.get('accuracy', float('nan')):.4f} | {d.get('macro_f1', float('nan')):.4f} | "
                    f"{e['seconds']:.0f} | {'yes' if e['saved'] else ''} |")
    return "\n".join(rows)


def worst(report, n=5):
    cls = sorted(report["per_class"], key=lambda c: (c["f1"], -c["support"]))[:n]
    return ", ".join(f"{c['label']} {c['f1']:.3f} ({c['support']})" for c in cls)


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def stamp(rev, seconds=None):
    """The line under a section's heading: when, which code, which machine."""
    return (f"Measured {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC, code {rev}, "
            f"{os.cpu_count()} CPUs ({cpu_model()}, {platform.system()} {platform.release()})"
            + (f"; `make quality` ran {seconds} s" if seconds else "") + ".\n")


def kept_sections(path):
    """The previous file's sections by heading (`## ...` up to the next one)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (FileNotFoundError, TypeError):
        return {}
    parts = text.split("\n## ")[1:]
    return {p.split("\n", 1)[0].strip(): "## " + p.rstrip() + "\n" for p in parts}


def section(out, work, name, title, goal_text, goal_ok, train_step, eval_step, stamp_line):
    log = load(os.path.join(work, name, "training_log.json"))
    rep = load(os.path.join(work, f"{name}-report", "report.json"))
    if not (log and rep):
        return False
    ok = goal_ok(rep)
    out.append(f"## {title}\n")
    out.append(stamp_line)
    out.append(f"**Goal** {goal_text}: **{'met' if ok else 'not met'}**: accuracy "
               f"{rep['accuracy']:.4f}, macro-F1 {rep['macro_f1']:.4f} on {rep['examples']} dev "
               f"examples ({len(rep['labels'])} labels), dev loss {rep['loss']:.4f}.\n")
    for step in (train_step, eval_step):
        c = command(work, step)
        if c:
            out.append(f"```sh\n{c}\n```")
    cfg = log["config"]
    out.append(f"\nBackbone `{log['backbone']}`; {log['train_examples']} training and "
               f"{log['dev_examples']} dev examples; {cfg['epochs']} epochs, batch {cfg['batch_size']}"
               f" x {cfg['grad_accum']}, lr {cfg['lr']}, weight decay {cfg['weight_decay']}, warm-up "
               f"{cfg['warmup_ratio']}, label smoothing {cfg.get('label_smoothing', 0.0)}, "
               f"{cfg['max_tokens']} tokens (head+tail), seed {cfg['seed']}; "
               f"the saved epoch is the one with the lowest dev loss ({log['best_epoch']}).\n")
    out.append(epochs_table(log) + "\n")
    out.append(f"Lowest per-class F1 (support): {worst(rep)}.\n")
    return True


LONG_MODELS = [("star", "plain-trained (the STAR model above)"),
               ("star-long", "long-trained (a third of the training calls wrapped)")]
POSITIONS = ["early", "middle", "late"]
BUCKETS = ["1000-2000", "2000-3500", "3500-5000"]
ECE_BINS = 10


def read_csv(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return None


def scores(rows):
    """Accuracy and macro-F1 of predictions.csv rows, macro-F1 as `calltype eval` computes it:
    the mean F1 over the labels that are true or predicted in `rows`."""
    labels = {r["label"] for r in rows} | {r["predicted"] for r in rows}
    f1s = []
    for lab in labels:
        tp = sum(r["label"] == lab and r["predicted"] == lab for r in rows)
        support = sum(r["label"] == lab for r in rows)
        predicted = sum(r["predicted"] == lab for r in rows)
        p = tp / predicted if predicted else 0.0
        rc = tp / support if support else 0.0
        f1s.append(2 * p * rc / (p + rc) if p + rc else 0.0)
    acc = sum(r["label"] == r["predicted"] for r in rows) / len(rows)
    return acc, sum(f1s) / len(f1s)


def ece(rows, bins=ECE_BINS):
    """Expected calibration error of the winning label's score: |accuracy - mean score| per
    equal-width score bin, weighted by the bin's share of the rows."""
    total = 0.0
    for b in range(bins):
        inside = [r for r in rows
                  if min(int(float(r["score"]) * bins), bins - 1) == b]
        if inside:
            acc = sum(r["label"] == r["predicted"] for r in inside) / len(inside)
            conf = sum(float(r["score"]) for r in inside) / len(inside)
            total += len(inside) / len(rows) * abs(acc - conf)
    return total


def calibration(report, rows):
    """The report's ECE when `calltype eval` wrote one, else computed here (marked (c))."""
    if report and report.get("ece") is not None:
        return f"{report['ece']:.4f}", False
    return f"{ece(rows):.4f} (c)", True


def long_section(out, work, stamp_line):
    manifest = read_csv(os.path.join(work, "long-bench", "manifest.csv"))
    if not manifest:
        return False
    cell = {r["contact_id"]: r for r in manifest}
    results = {}
    for m, _ in LONG_MODELS:
        plain_rep = load(os.path.join(work, f"long-{m}-plain", "report.json"))
        plain = read_csv(os.path.join(work, f"long-{m}-plain", "predictions.csv"))
        bench_rep = load(os.path.join(work, f"long-{m}-bench", "report.json"))
        bench = read_csv(os.path.join(work, f"long-{m}-bench", "predictions.csv"))
        if not (plain_rep and plain and bench_rep and bench):
            continue
        missing = [r["contact_id"] for r in bench if r["contact_id"] not in cell]
        if missing or len(bench) != len(manifest):
            raise SystemExit(f"long-{m}-bench/predictions.csv does not match the benchmark's "
                             f"manifest ({len(bench)} rows, {len(manifest)} calls, "
                             f"{len(missing)} unknown ids)")
        for r in bench:
            r.update(position=cell[r["contact_id"]]["position"], bucket=cell[r["contact_id"]]["bucket"])
        results[m] = (plain_rep, plain, bench_rep, bench)
    if not results:
        return False
    out.append(f"## {LONG_TITLE}\n")
    out.append(stamp_line)
    words = sorted(int(r["words"]) for r in manifest)
    labels = {r["label"] for r in manifest}
    per_cell = len(manifest) // (len(labels) * len(POSITIONS) * len(BUCKETS))
    out.append(
        f"The benchmark (`scripts/long-calls/bench.py`, docs/long-calls.md): {len(manifest)} calls, "
        f"{per_cell} per label ({len(labels)} labels) in each of 3 positions x 3 length buckets, "
        f"made of {len({r['source_contact_id'] for r in manifest})} distinct STAR dev calls inside "
        f"generic call-centre talk of the eval pool, which shares no sentence with the train pool "
        f"the long-trained model saw; words per call median {words[len(words) // 2]:,}, min "
        f"{words[0]:,}, max {words[-1]:,}. Position: the share of the generic words before the STAR "
        f"conversation (early 0-10%, middle 45-55%, late 90-100%). Length bucket: words in the "
        f"whole call. Both models label with the long-call strategy saved with them "
        f"(`calltype eval` without overrides). Plain dev: the "
        f"{next(iter(results.values()))[0]['examples']} STAR dev calls as they are.\n")
    goal = results.get("star-long")
    if goal:
        plain_rep, _, _, bench = goal
        slices = [scores([r for r in bench if r["position"] == p])[1] for p in POSITIONS]
        slices += [scores([r for r in bench if r["bucket"] == b])[1] for b in BUCKETS]
        ok = min(slices) >= 0.95 and plain_rep["macro_f1"] >= 0.99
        out.append(f"**Goal** long-trained model: macro-F1 >= 0.95 at every position and length "
                   f"bucket, >= 0.99 on plain dev: **{'met' if ok else 'not met'}** (lowest "
                   f"position/bucket macro-F1 {min(slices):.4f}, plain dev {plain_rep['macro_f1']:.4f}).\n")
    out.append("| model | plain dev accuracy | plain dev macro-F1 | plain dev ECE | benchmark accuracy "
               "| benchmark macro-F1 | benchmark ECE |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    computed = False
    for m, desc in LONG_MODELS:
        if m not in results:
            continue
        plain_rep, plain, bench_rep, bench = results[m]
        pe, c1 = calibration(plain_rep, plain)
        be, c2 = calibration(bench_rep, bench)
        computed |= c1 or c2
        out.append(f"| {desc} | {plain_rep['accuracy']:.4f} | {plain_rep['macro_f1']:.4f} | {pe} | "
                   f"{bench_rep['accuracy']:.4f} | {bench_rep['macro_f1']:.4f} | {be} |")
    if computed:
        out.append(f"\n(c): `calltype eval` wrote no ECE; computed here from predictions.csv (the "
                   f"winning label's score, {ECE_BINS} equal-width bins).")
    names = [m for m, _ in LONG_MODELS if m in results]
    desc = dict(LONG_MODELS)
    out.append("\nBy position and by length bucket (accuracy / macro-F1):\n")
    out.append("| slice | calls | " + " | ".join(desc[m].split(" (")[0] for m in names) + " |")
    out.append("|---|---:|" + "---:|" * len(names))
    slices = [(f"position {p}", "position", p) for p in POSITIONS]
    slices += [(f"{b.replace('-', ' to ')} words", "bucket", b) for b in BUCKETS]
    for title, key, value in slices:
        cells, n = [], 0
        for m in names:
            rows = [r for r in results[m][3] if r[key] == value]
            n = len(rows)
            acc, f1 = scores(rows)
            cells.append(f"{acc:.4f} / {f1:.4f}")
        out.append(f"| {title} | {n} | " + " | ".join(cells) + " |")
    for m in names:
        bench = results[m][3]
        out.append(f"\nAccuracy of the {desc[m].split(' (')[0]} model per cell (position x words):\n")
        out.append("| position | " + " | ".join(BUCKETS) + " |")
        out.append("|---|" + "---:|" * len(BUCKETS))
        for p in POSITIONS:
            accs = [scores([r for r in bench if r["position"] == p and r["bucket"] == b])[0]
                    for b in BUCKETS]
            out.append(f"| {p} | " + " | ".join(f"{a:.4f}" for a in accs) + " |")
    out[-1] += "\n"
    for step, what in [("long-train", "The long-trained model"),
                       ("long-star-long-bench", "Its benchmark run")]:
        c = command(work, step)
        if c:
            out.append(f"\n{what}:\n```sh\n{c}\n```")
    log = load(os.path.join(work, "star-long", "training_log.json"))
    if log:
        out.append(f"\n{log['train_examples']} training examples; the saved epoch is the one with the "
                   f"lowest plain dev loss ({log['best_epoch']}).\n")
        out.append(epochs_table(log) + "\n")
    return True


STAR_TITLE = "STAR subflow (24 call types), train -> dev"
B77_TITLE = "Banking77 (77 intents), our seeded 10% dev split"
LONG_TITLE = "Long calls: the long-call benchmark, by position and length"
FEW_TITLE = "Banking77 with 10 labeled examples per intent (few-shot), 20 per intent for dev"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--rev", help="the code the runs were made with (default: HEAD now)")
    ap.add_argument("--keep", help="previous QUALITY.md: sections not in WORK are copied from it")
    a = ap.parse_args()
    rev = a.rev or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip()
    line = stamp(rev, a.seconds)
    kept = kept_sections(a.keep)
    out = ["# Quality of the classifier\n",
           "Written by `scripts/quality/run.sh` (`make quality`) from the models and reports in its "
           "work directory; do not edit by hand, run it again (`QUALITY_SECTIONS` picks sections; "
           "the others are kept as they were, each with the date, code and machine it was "
           "measured on).\n",
           "Data: `../shared/datasets` (read in place); every number is on held-out dev data the "
           "model did not train on.\n"]
    made = [
        section(out, a.work, "star", STAR_TITLE, "macro-F1 >= 0.99", lambda r: r["macro_f1"] >= 0.99,
                "star-train", "star-eval", line) or keep(out, kept, STAR_TITLE),
        section(out, a.work, "banking77", B77_TITLE, "accuracy >= 92%", lambda r: r["accuracy"] >= 0.92,
                "banking77-train", "banking77-eval", line) or keep(out, kept, B77_TITLE),
        long_section(out, a.work, line) or keep(out, kept, LONG_TITLE),
        section(out, a.work, "fewshot", FEW_TITLE, "accuracy >= 85%", lambda r: r["accuracy"] >= 0.85,
                "fewshot-train", "fewshot-eval", line) or keep(out, kept, FEW_TITLE),
    ]
    # Sections of the previous file under a title this script no longer writes (e.g. an older
    # long-call table) are kept as they were, after the others: nothing measured is dropped.
    known = {STAR_TITLE, B77_TITLE, LONG_TITLE, FEW_TITLE}
    for title, text in kept.items():
        if title not in known:
            out.append(text)
    if not any(made):
        raise SystemExit(f"nothing to report in {a.work}")
    print("\n".join(out))


def keep(out, kept, title):
    if title in kept:
        out.append(kept[title])
        return True
    return False


if __name__ == "__main__":
    main()
