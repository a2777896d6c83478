#!/usr/bin/env python3
"""QUALITY.md from the outputs of scripts/quality/run.sh (a work directory of models, eval
reports and step logs). Each section says when, on which code and on which machine it was
measured. A section whose outputs are absent from WORK is copied from the `--keep` file (the
previous QUALITY.md) when that has it, so `QUALITY_SECTIONS=banking77 make quality` replaces only
the Banking77 section; otherwise it is left out.

    python3 scripts/quality/report.py WORK [--seconds N] [--rev REV] [--keep QUALITY.md] > QUALITY.md
"""
import argparse
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


def trial(work, model, lt):
    """A plain-dev result from the trials `calltype train` ran when choosing the long-text
    strategy (head+tail and mean-pooled windows), when no eval report exists for it."""
    log = load(os.path.join(work, model, "training_log.json")) or {}
    for strategy, stats in log.get("long_text_trials") or []:
        kind = strategy.get("kind")
        if kind == "head_tail" and lt == f"head-tail:{strategy['head_fraction']}":
            return stats
        if kind == "windows" and strategy.get("pool", "mean") == "mean" and lt == f"windows:{strategy['overlap']}":
            return stats
    return None


def long_section(out, work, stamp_line):
    models = [("star", "STAR model (plain training calls)"),
              ("star-long", "trained with wrapped calls among its training calls")]
    strategies = [("head-tail:0.5", "head+tail (half each end)"),
                  ("windows:31", "windows, mean pooling"),
                  ("windows:31:max", "windows, max pooling")]
    rows, from_trials = [], False
    for m, mdesc in models:
        for lt, ldesc in strategies:
            plain = load(os.path.join(work, f"long-{m}-plain-{lt}", "report.json"))
            mark = ""
            if plain is None:
                plain, mark = trial(work, m, lt), " (t)"
                from_trials |= plain is not None
            wrapped = load(os.path.join(work, f"long-{m}-wrapped-{lt}", "report.json"))
            if not (plain and wrapped):
                continue
            rows.append(f"| {mdesc} | {ldesc} | {plain['accuracy']:.4f}{mark} | {plain['macro_f1']:.4f}{mark} | "
                        f"{wrapped['accuracy']:.4f} | {wrapped['macro_f1']:.4f} |")
    if not rows:
        return False
    out.append(f"## {LONG_TITLE}\n")
    out.append(stamp_line)
    out.append("Plain: the STAR dev calls. Wrapped: 8 dev calls per label (181) inside 150-1,500 words "
               "of generic call-centre talk before and 150-1,000 after (`scripts/long-calls/wrap.py`, "
               "eval pool; median 1,512 words a call). All at 128 tokens a sequence; windows share 31 "
               "tokens. The second model's training set adds a third of the training calls wrapped "
               "in a disjoint pool of generic talk (`--pool train`), so generic talk appears with "
               "every label. See docs/long-calls.md for what was chosen and why.\n")
    out.append("| model | inference | plain accuracy | plain macro-F1 | wrapped accuracy | wrapped macro-F1 |")
    out.append("|---|---|---:|---:|---:|---:|")
    out.extend(rows)
    if from_trials:
        out.append("\n(t): from the dev trials `calltype train` itself ran after training (`long_text_trials` "
                   "in the model's `training_log.json`): the same dev calls and settings as `calltype eval "
                   "--long-text`, which gives identical numbers where both were run.")
    c = command(work, "long-train")
    if c:
        out.append(f"\nThe second model:\n```sh\n{c}\n```")
    log = load(os.path.join(work, "star-long", "training_log.json"))
    if log:
        out.append("\n" + epochs_table(log) + "\n")
    return True


STAR_TITLE = "STAR subflow (24 call types), train -> dev"
B77_TITLE = "Banking77 (77 intents), our seeded 10% dev split"
LONG_TITLE = "Long calls: head+tail against overlapping windows"


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
    ]
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
