#!/usr/bin/env python3
"""Turns the JSON written by scripts/bench/model.sh (model_bench and torch_bench.py) into
BENCHMARKS-MODEL.md.

Usage: report_model.py WORK_DIR --cmd CMD --seconds S --rounds R --train-tokens "128 256"
       --train512 "4x4 8x2" --venv VENV
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
from pathlib import Path

GOAL = 1.0  # candle at least PyTorch's throughput
GB8 = 8 * 1024**3


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def gib(b):
    return f"{b / 1024**3:,.2f} GiB"


def mib(b):
    return f"{b / 1024**2:,.0f} MiB"


def load(path):
    return json.loads(Path(path).read_text())


def argmax(p):
    return max(range(len(p)), key=p.__getitem__)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--cmd", required=True)
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--train-tokens", required=True)
    ap.add_argument("--train512", required=True)
    ap.add_argument("--venv", required=True)
    a = ap.parse_args()
    work = Path(a.work)
    w = []
    p = w.append

    loads = [json.loads(l) for l in (work / "loads.jsonl").read_text().splitlines() if l.strip()]
    load_vals = [x["load_before"] for x in loads] + [x["load_after"] for x in loads]
    toks = load(work / "tokens.json")
    # The code the run measured: model.sh writes code.rev when it starts (the revision, and
    # "dirty" when tracked files had changes); without it, the working tree as it is now.
    code = work / "code.rev"
    if code.exists():
        rev, _, state = code.read_text().strip().partition(" ")
    else:
        rev = sh("git", "rev-parse", "--short", "HEAD")
        state = "dirty" if sh("git", "status", "--porcelain", "--untracked-files=no") else ""
    dirty = " (with uncommitted changes in the working tree)" if state == "dirty" else ""
    py = os.path.join(a.venv, "bin", "python")
    versions = sh(py, "-c", "import torch, transformers; print(torch.__version__, transformers.__version__)").split()
    torch_v, tf_v = (versions + ["?", "?"])[:2]
    first_tok = a.train_tokens.split()[0]
    infer_any = load(next(work.glob("infer_torch_*_1.json")))
    attn = infer_any.get("attn_implementation", "?")

    p("# Benchmarks: the model, candle against PyTorch")
    p("")
    p("Written by `scripts/bench/model.sh` (opt-in: `BENCH_MODEL=1 make bench`); do not edit by hand, run it again.")
    p("")
    p(f"- command: `{a.cmd}`")
    # When the measurements wrote their results, so that a report regenerated from a run's JSON
    # (say, with new notes) keeps the run's date.
    stamps = [f.stat().st_mtime for f in Path(a.work).glob("*.json")]
    utc = datetime.timezone.utc
    first = datetime.datetime.fromtimestamp(min(stamps), utc)
    last = datetime.datetime.fromtimestamp(max(stamps), utc)
    p(f"- date: {first:%Y-%m-%d %H:%M} to {last:%H:%M} UTC (the measurements' results written)")
    p(f"- machine: {os.cpu_count()} CPUs, {cpu_model()}, Linux {os.uname().release}; shared with other "
      f"work while it ran: 1-minute load average {min(load_vals):.1f} to {max(load_vals):.1f} "
      f"(median {statistics.median(load_vals):.1f}) read before and after each measurement")
    p(f"- code: {rev}{dirty}; {sh('rustc', '--version')}, release profile; candle-core/candle-nn 0.11 "
      f"over the `gemm` crate with its AVX-512 (`x86-v4`) kernels, and our packed AVX-512 product "
      f"(`crates/model/src/packed.rs`) for attention and linear layers of up to 512 rows where the CPU has AVX-512")
    p(f"- PyTorch side: torch {torch_v} (PyPI, MKL/oneDNN inside), transformers {tf_v}, eager mode "
      f"(no torch.compile, no TorchScript), float32, attention `{attn}`, `torch.inference_mode()`, "
      f"in the bench-only venv `{a.venv}`")
    p(f"- threads: {infer_any.get('threads')} on both sides (`torch.set_num_threads`, `RAYON_NUM_THREADS`; candle's gemm uses its own pool of the same size)")
    n_tok = toks["tokens"]
    p(f"- texts: the {len(n_tok)} sample calls in `samples/calls` (synthetic Contact Lens documents) as ingest "
      f"extracts them (all turns, role-tagged); {min(n_tok)} to {max(n_tok)} tokens, median "
      f"{statistics.median(n_tok):.0f} ([CLS]/[SEP] included, before truncation)")
    p(f"- inputs: identical token ids on both sides: the model's `tokenizer.json` without special tokens "
      f"or truncation, then our head+tail truncation (half the budget from each end), `[CLS] … [SEP]`, "
      f"batches padded to their longest sequence")
    p(f"- benchmark run time: {a.seconds} s (builds and the venv excluded)")
    p("")

    # Training.
    p("## 1. Training examples/s: `model::train` against the Hugging Face Trainer")
    p("")
    tr0 = load(work / f"train_candle_{first_tok}.json")
    p(f"Backbone `models/all-MiniLM-L6-v2` with a fresh 6-label head; the {tr0['examples']} training calls of "
      f"`samples/labels.csv` (split `train`); batch 16, {tr0['epochs']} epochs, AdamW lr 5e-5, weight decay 0.01, "
      "linear warm-up (10% of steps) and decay, gradient clip 1.0, dropout 0.1 on. Examples/s is over every "
      "optimiser step but the first (warm-up), from the step callbacks of each side (candle: the "
      "`TrainProgress::Step` events; Trainer: `on_step_begin`/`on_step_end`); the save after each epoch "
      "(candle) is not counted. One run per side and token count, candle first.")
    p("")
    p("| tokens | candle ex/s | PyTorch (Trainer) ex/s | candle / PyTorch | candle s/step (median) | PyTorch s/step (median) | candle peak RSS | PyTorch peak RSS | final train loss (candle / PyTorch) |")
    p("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for tok in a.train_tokens.split():
        c = load(work / f"train_candle_{tok}.json")
        t = load(work / f"train_torch_{tok}.json")
        p(f"| {tok} | {c['examples_per_s']:.2f} | {t['examples_per_s']:.2f} | "
          f"**{c['examples_per_s'] / t['examples_per_s']:.2f}×** | {statistics.median(c['step_s']):.2f} | "
          f"{statistics.median(t['step_s']):.2f} | {gib(c['peak_rss'])} | {gib(t['peak_rss'])} | "
          f"{c['train_loss'][-1]:.3f} (last epoch mean) / {t['train_loss']:.3f} (run mean) |")
    p("")

    # Inference.
    p("## 2. Inference texts/s and peak RSS, tokenization included")
    p("")
    p(f"The classifier directory candle trained in section 1 at {first_tok} tokens (config.json, "
      "model.safetensors, tokenizer.json), loaded from disk by both: `Classifier::load` + `predict` "
      "against `AutoModelForSequenceClassification.from_pretrained` + softmax. "
      f"The first {infer_any['texts']} texts, in calls of `batch` texts after one warm-up call; "
      f"every measurement in a fresh process (peak RSS is that process's `VmHWM` / `ru_maxrss`, "
      f"the PyTorch figure includes the ~0.7 GiB of the torch libraries). {a.rounds} rounds, candle "
      "and PyTorch alternating which goes first; texts/s is the median over rounds.")
    p("")
    p("| tokens | batch | candle texts/s | PyTorch texts/s | candle / PyTorch | goal ≥1.0× | candle peak RSS | PyTorch peak RSS (after load) | labels agree | largest |Δp| |")
    p("|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    ratios = {}
    for tok in (128, 512):
        for b in (1, 32):
            cs = [load(f) for f in sorted(work.glob(f"infer_candle_{tok}_{b}_*.json"))]
            ts = [load(f) for f in sorted(work.glob(f"infer_torch_{tok}_{b}_*.json"))]
            c = statistics.median(x["texts_per_s"] for x in cs)
            t = statistics.median(x["texts_per_s"] for x in ts)
            ratios[(tok, b)] = c / t
            pc = load(work / f"probs_candle_{tok}_{b}.json")
            pt = load(work / f"probs_torch_{tok}_{b}.json")
            assert pc["ids"] == pt["ids"] and pc["labels"] == pt["labels"]
            agree = sum(argmax(x) == argmax(y) for x, y in zip(pc["probs"], pt["probs"]))
            diff = max(abs(u - v) for x, y in zip(pc["probs"], pt["probs"]) for u, v in zip(x, y))
            p(f"| {tok} | {b} | {c:.1f} | {t:.1f} | **{c / t:.2f}×** | "
              f"{'met' if c / t >= GOAL else 'not met'} | "
              f"{mib(max(x['peak_rss'] for x in cs))} | {mib(max(x['peak_rss'] for x in ts))} "
              f"({mib(max(x['rss_after_load'] for x in ts))}) | "
              f"{agree}/{len(pc['probs'])} | {diff:.1e} |")
    p("")
    p("Rounds (texts/s, candle / PyTorch): " + "; ".join(
        f"{tok}×{b}: " + ", ".join(
            f"{load(cf)['texts_per_s']:.1f}/{load(tf)['texts_per_s']:.1f}"
            for cf, tf in zip(sorted(work.glob(f'infer_candle_{tok}_{b}_*.json')),
                              sorted(work.glob(f'infer_torch_{tok}_{b}_*.json'))))
        for tok in (128, 512) for b in (1, 32)) + ".")
    p("")
    met = [k for k, r in ratios.items() if r >= GOAL]
    p(f"**Goal** (at least 1.0× PyTorch's throughput): met in {len(met)} of {len(ratios)} configurations "
      f"(ratios {min(ratios.values()):.2f}× to {max(ratios.values()):.2f}×).")
    p("")

    # 512-token training memory.
    p("## 3. Peak memory of 512-token training")
    p("")
    p("Short runs (2 optimiser steps, the first examples of the training split) at 512 tokens; "
      "peak RSS of the whole process. The micro-batch is what one forward/backward holds; gradient "
      "accumulation (`calltype train --grad-accum`, `TrainConfig::grad_accum`) keeps the effective "
      "batch at micro × accumulation.")
    p("")
    p("| micro-batch × accumulation | effective batch | candle peak RSS | fits in 8 GB | candle s/step | PyTorch peak RSS | PyTorch s/step |")
    p("|---|---:|---:|---|---:|---:|---:|")
    for spec in a.train512.split():
        c = load(work / f"train512_candle_{spec}.json")
        t = load(work / f"train512_torch_{spec}.json")
        m, acc = spec.split("x")
        p(f"| {m} × {acc} | {int(m) * int(acc)} | {gib(c['peak_rss'])} | "
          f"{'yes' if c['peak_rss'] < GB8 else '**no**'} | {statistics.median(c['step_s'] or [c['total_s']]):.1f} | "
          f"{gib(t['peak_rss'])} | {statistics.median(t['step_s']):.1f} |")
    p("")
    # The allocator.
    kept = sorted(work.glob("malloc_keep_*.json"))
    if kept:
        glibc = sorted(work.glob("malloc_glibc_*.json"))
        p("## 4. The allocator: glibc's defaults against `keep_freed_memory`")
        p("")
        p("candle's training at 512 tokens, batch 16, the first 48 training calls (3 optimiser steps, "
          "the last 2 timed), once with glibc's allocator settings (`model_bench train --malloc glibc`) "
          "and once with `model::keep_freed_memory` (large buffers from the heap, no trimming: what "
          "`calltype train` runs with; `crates/model/src/alloc.rs`), alternating which goes first. "
          "Faults and kernel time are the whole process's (`/proc/self/stat`), model load included.")
        p("")
        p("| malloc | s/step (median) | examples/s | minor page faults | kernel (system) s | peak RSS | rounds (s/step) |")
        p("|---|---:|---:|---:|---:|---:|---|")
        med = {}
        for name, files in (("glibc defaults", glibc), ("keep_freed_memory", kept)):
            runs = [load(f) for f in files]
            steps = [x for r in runs for x in r["step_s"]]
            med[name] = statistics.median(steps)
            p(f"| {name} | {med[name]:.2f} | {statistics.median(r['examples_per_s'] for r in runs):.2f} | "
              f"{statistics.median(r['minor_faults'] for r in runs):,.0f} | "
              f"{statistics.median(r['system_s'] for r in runs):.1f} | {gib(max(r['peak_rss'] for r in runs))} | "
              + "; ".join(", ".join(f"{x:.2f}" for x in r["step_s"]) for r in runs) + " |")
        p("")
        p(f"A step with `keep_freed_memory` takes **{med['keep_freed_memory'] / med['glibc defaults']:.2f}×** "
          "the time of one with glibc's defaults (median over every timed step).")
        p("")
    notes = Path(__file__).with_name("model-notes.md")
    if notes.exists():
        p(notes.read_text().rstrip())
        p("")
    print("\n".join(w))


if __name__ == "__main__":
    main()
