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

GOAL = 1.0  # candle at least the bar's throughput (ONNX Runtime fp32 where measured)
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


def cpu_flags():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def peak_gflops(threads):
    """The fp32 FMA peak of `threads` cores, and how it was reckoned: cores x clock x FLOP per
    cycle (2 FMA pipes: 2 x 2 x 16 = 64 with 512-bit pipes, as Intel Xeon server cores; 2 x 2 x
    8 = 32 with 256-bit pipes, as AMD Zen 2-4 (Zen 4 splits AVX-512 into two 256-bit halves)
    and AVX2-only cores). The clock is the model name's nominal one, else the highest
    `cpu MHz` read now (a boost clock can be higher: the peak is an estimate)."""
    import re
    model = cpu_model()
    m = re.search(r"@ *([0-9.]+) *GHz", model)
    if m:
        ghz, clock = float(m.group(1)), "nominal clock from the CPU name"
    else:
        mhz = [float(l.split(":")[1]) for l in Path("/proc/cpuinfo").read_text().splitlines()
               if l.startswith("cpu MHz")]
        ghz, clock = (max(mhz) / 1000 if mhz else 0.0), "highest `cpu MHz` in /proc/cpuinfo"
    flags = cpu_flags()
    intel = "GenuineIntel" in Path("/proc/cpuinfo").read_text()
    per_cycle = 64 if ("avx512f" in flags and intel) else 32 if "fma" in flags else 16
    return threads * ghz * per_cycle, f"{threads} cores × {ghz:.2f} GHz ({clock}) × {per_cycle} FLOP/cycle"


def bert_flops(cfg, t):
    """Multiply-adds × 2 of the encoder on one sequence of `t` tokens: per layer the Q, K, V and
    output projections (4 t h²), the feed-forward (2 t h i) and attention's two products (2 t² h);
    embeddings, layer norms, softmax, the pooler and the head are left out (under 1%)."""
    h = cfg.get("hidden_size") or cfg.get("dim")
    i = cfg.get("intermediate_size") or cfg.get("hidden_dim")
    n = cfg.get("num_hidden_layers") or cfg.get("n_layers")
    return 2 * n * (t * (4 * h * h + 2 * h * i) + 2 * t * t * h)


def roofline(p, work, first_tok, toks, n_texts, med, sides, name, threads):
    cfg = load(work / f"clf-{first_tok}" / "config.json")
    measured = load(work / "peak.json") if (work / "peak.json").exists() else {}
    if measured.get("gflops"):
        peak = measured["gflops"]
        how = (f"measured by `model_bench peak`: independent {measured['isa']} FMA chains on "
               f"{measured['threads']} threads ({measured['gflops_one_thread']:.0f} GFLOP/s on one)")
    else:
        peak, how = peak_gflops(threads)
        how = "estimated: " + how
    p("### Where the time goes")
    p("")
    p(f"FLOPs a sequence (2 × the multiply-adds of the Q, K, V and output projections, the feed-forward and "
      f"attention's two products in every layer; the rest is under 1%). Peak: {how}; fp32 FMA peak "
      f"{peak:.0f} GFLOP/s). Useful work only: each text at its own truncated length, padding not counted; "
      f"achieved = texts/s × mean FLOPs a text. MiniLM-L6 at 128 tokens: {bert_flops(cfg, 128) / 1e9:.2f} GFLOP.")
    p("")
    p("| tokens | batch | GFLOP a full sequence | mean GFLOP a text | " + " | ".join(
        f"{name[s]} GFLOP/s (% of peak)" for s in sides if s != "ort8") + " |")
    p("|---:|---:|---:|---:|" + "---:|" * len([s for s in sides if s != "ort8"]))
    for tok in (128, 512):
        mean = statistics.mean(bert_flops(cfg, min(t, tok)) for t in toks["tokens"][:n_texts])
        for b in (1, 32):
            cells = []
            for s in sides:
                if s == "ort8":
                    continue
                g = med[(s, tok, b)][0] * mean / 1e9
                cells.append(f"{g:.1f} ({100 * g / peak:.0f}%)" if peak else f"{g:.1f}")
            p(f"| {tok} | {b} | {bert_flops(cfg, tok) / 1e9:.2f} | {mean / 1e9:.2f} | " + " | ".join(cells) + " |")
    p("")
    p("(ORT int8 does integer work and is left out of the fp32 roofline.)")
    p("")


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
    infer_candle = load(next(work.glob("infer_candle_*_1.json")))
    attn = infer_any.get("attn_implementation", "?")

    p("# Benchmarks: the model, candle against PyTorch and ONNX Runtime")
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
      f"over the `gemm` crate with its AVX-512 (`x86-v4`) kernels where the CPU has AVX-512, and our packed "
      f"products (`crates/model/src/packed/`: AVX-512, AVX2+FMA or NEON tiles) for attention and linear "
      f"layers of up to 512 rows; this run's packed products: **{infer_candle.get('packed_isa') or 'none'}**"
      + (f" (`BENCH_ISA={os.environ['BENCH_ISA']}`: our own kernels capped to that instruction set as on a CPU "
         f"without AVX-512; the `gemm` crate, which takes training and linear layers over 512 rows, and "
         f"PyTorch and ONNX Runtime keep AVX-512)" if os.environ.get("BENCH_ISA") else ""))
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
    exp = load(work / "onnx_export.json") if (work / "onnx_export.json").exists() else None
    sides = ["candle", "torch"] + (["ort", "ort8"] if exp else [])
    name = {"candle": "candle", "torch": "PyTorch", "ort": "ORT fp32", "ort8": "ORT int8"}
    p("## 2. Inference texts/s and peak RSS, tokenization included")
    p("")
    p(f"The classifier directory candle trained in section 1 at {first_tok} tokens (config.json, "
      "model.safetensors, tokenizer.json), loaded from disk by every side: `Classifier::load` + `predict` "
      "against `AutoModelForSequenceClassification.from_pretrained` + softmax"
      + (" and ONNX Runtime on the same model exported once by `torch.onnx.export` (opset 17, dynamic "
         "batch and sequence axes; `scripts/bench/ort_bench.py`), run with every graph optimisation "
         "(`ORT_ENABLE_ALL`), the CPU provider, the same intra-op threads and one inter-op thread: fp32, "
         "and int8 from `quantize_dynamic` (QInt8 per-channel weights, activations quantized per call)" if exp else "")
      + f". The first {infer_any['texts']} texts, in calls of `batch` texts after one warm-up call; "
      f"every measurement in a fresh process (peak RSS is that process's `VmHWM` / `ru_maxrss`, "
      f"the PyTorch figure includes the ~0.7 GiB of the torch libraries). {a.rounds} rounds, the sides "
      "taking turns to go first; texts/s is the median over rounds.")
    if exp:
        p("")
        p(f"Export: onnxruntime {exp['onnxruntime']}, onnx {exp['onnx']}, torch {exp['torch']}; model.onnx "
          f"{mib(exp['fp32_bytes'])}, model.int8.onnx {mib(exp['int8_bytes'])}; largest logit difference of the "
          f"exported graph against PyTorch on a probe batch {exp['export_max_logit_diff']:.1e}.")
    p("")
    med = {}
    for side in sides:
        for tok in (128, 512):
            for b in (1, 32):
                runs = [load(f) for f in sorted(work.glob(f"infer_{side}_{tok}_{b}_*.json"))]
                med[(side, tok, b)] = (statistics.median(x["texts_per_s"] for x in runs), runs)
    p("| tokens | batch | " + " | ".join(f"{name[s]} texts/s" for s in sides) + " | candle / PyTorch"
      + (" | candle / ORT fp32 | candle / ORT int8" if exp else "") + " | candle peak RSS | "
      + " | ".join(f"{name[s]} peak RSS" for s in sides[1:]) + " |")
    p("|---:|---:|" + "---:|" * (len(sides) + 1 + (2 if exp else 0) + len(sides)))
    ratios = {}
    for tok in (128, 512):
        for b in (1, 32):
            v = {s: med[(s, tok, b)][0] for s in sides}
            rss = {s: max(x["peak_rss"] for x in med[(s, tok, b)][1]) for s in sides}
            bar = "ort" if exp else "torch"
            ratios[(tok, b)] = v["candle"] / v[bar]
            cells = [f"{v[s]:.1f}" for s in sides] + [f"{v['candle'] / v['torch']:.2f}×"]
            if exp:
                cells += [f"**{v['candle'] / v['ort']:.2f}×**", f"{v['candle'] / v['ort8']:.2f}×"]
            cells += [mib(rss[s]) for s in sides]
            p(f"| {tok} | {b} | " + " | ".join(cells) + " |")
    p("")
    p("Agreement with candle (labels that agree / texts; largest probability difference):")
    p("")
    p("| tokens | batch | " + " | ".join(name[s] for s in sides[1:]) + " |")
    p("|---:|---:|" + "---|" * (len(sides) - 1))
    for tok in (128, 512):
        for b in (1, 32):
            pc = load(work / f"probs_candle_{tok}_{b}.json")
            cells = []
            for s in sides[1:]:
                po = load(work / f"probs_{s}_{tok}_{b}.json")
                assert pc["ids"] == po["ids"] and pc["labels"] == po["labels"], s
                agree = sum(argmax(x) == argmax(y) for x, y in zip(pc["probs"], po["probs"]))
                diff = max(abs(u - w) for x, y in zip(pc["probs"], po["probs"]) for u, w in zip(x, y))
                cells.append(f"{agree}/{len(pc['probs'])}, {diff:.1e}")
            p(f"| {tok} | {b} | " + " | ".join(cells) + " |")
    p("")
    p("Rounds (texts/s, " + " / ".join(name[s] for s in sides) + "): " + "; ".join(
        f"{tok}×{b}: " + ", ".join(
            "/".join(f"{x['texts_per_s']:.1f}" for x in run)
            for run in zip(*(med[(s, tok, b)][1] for s in sides)))
        for tok in (128, 512) for b in (1, 32)) + ".")
    p("")
    met = [k for k, r in ratios.items() if r >= GOAL]
    bar = "ONNX Runtime fp32" if exp else "PyTorch"
    p(f"**Goal** (at least 1.0× {bar}'s throughput, fp32): met in {len(met)} of {len(ratios)} configurations "
      f"(ratios {min(ratios.values()):.2f}× to {max(ratios.values()):.2f}×)."
      + (" candle has no int8 path yet: the ORT int8 column is the bar the int8 work must reach." if exp else ""))
    p("")
    roofline(p, work, first_tok, toks, infer_any["texts"], med, sides, name, infer_any.get("threads") or 2)

    # 512-token training memory (when the run measured it).
    if a.train512.split():
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
