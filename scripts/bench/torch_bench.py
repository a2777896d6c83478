#!/usr/bin/env python3
"""The PyTorch + transformers side of the model benchmark, step for step what
`model_bench infer|train` does in candle (see crates/bench/src/bin/model_bench.rs).

Runs in the bench-only venv (scripts/bench/model-venv.sh), never in `make test`'s.

  torch_bench.py infer --model DIR --texts FILE.jsonl --max-tokens N --batch N [--limit N]
      [--dump FILE.json] [--attn sdpa|eager]
  torch_bench.py train --backbone DIR --texts FILE.jsonl --split NAME --max-tokens N --batch N
      [--grad-accum N] [--epochs N] [--limit N]

Inputs are the same token ids as candle's (scripts/bench/bench_text.py). Batches are padded on the right to their longest sequence. The model is
AutoModelForSequenceClassification in eager PyTorch (no torch.compile, no TorchScript), float32,
torch.inference_mode() for inference. Threads: torch.set_num_threads(BENCH_THREADS, default 2).
Tokenization is inside the timed region on both sides. Prints one JSON object.
"""
import argparse
import contextlib
import json
import os
import sys
import time

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("MKL_NUM_THREADS", str(THREADS))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_text  # noqa: E402
from bench_text import by_length, peak_rss, read_texts  # noqa: E402

torch.set_num_threads(THREADS)
torch.set_num_interop_threads(1)


class Encoder(bench_text.Encoder):
    """bench_text's token ids, batched as torch tensors."""

    def batch(self, seqs):
        t = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), t), self.pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), t), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        return ids, mask


def infer(a):
    rows = read_texts(a.texts)[: a.limit or None]
    texts = [r["text"] for r in rows]
    t_load = time.perf_counter()
    enc = Encoder(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        a.model, attn_implementation=a.attn, dtype=torch.float32
    )
    model.eval()
    load_s = time.perf_counter() - t_load
    rss_loaded = peak_rss()

    def predict(chunk):
        # As Classifier::predict: sort by length, batches of `batch`, pad to the longest.
        seqs = enc.encode(chunk, a.max_tokens)
        probs = [None] * len(seqs)
        for idx in by_length(seqs, a.batch):
            ids, mask = enc.batch([seqs[j] for j in idx])
            with torch.inference_mode():
                p = torch.softmax(model(input_ids=ids, attention_mask=mask).logits, dim=-1)
            for j, row in zip(idx, p.tolist()):
                probs[j] = row
        return probs

    predict(texts[: a.batch])  # warm-up, as candle's
    started = time.perf_counter()
    probs = []
    for k in range(0, len(texts), a.batch):
        probs.extend(predict(texts[k : k + a.batch]))
    seconds = time.perf_counter() - started
    if a.dump:
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        with open(a.dump, "w") as f:
            json.dump({"labels": labels, "ids": [r["id"] for r in rows], "probs": probs}, f)
    return {
        "side": "pytorch",
        "max_tokens": a.max_tokens,
        "batch": a.batch,
        "texts": len(texts),
        "seconds": seconds,
        "texts_per_s": len(texts) / seconds,
        "load_s": load_s,
        "rss_after_load": rss_loaded,
        "peak_rss": peak_rss(),
        "threads": torch.get_num_threads(),
        "attn_implementation": model.config._attn_implementation,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }


def train(a):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    rows = [r for r in read_texts(a.texts) if r["split"] == a.split][: a.limit or None]
    labels = sorted({r["label"] for r in rows})
    label_id = {l: i for i, l in enumerate(labels)}
    enc = Encoder(a.backbone)
    seqs = enc.encode([r["text"] for r in rows], a.max_tokens)
    data = [
        {"input_ids": s, "attention_mask": [1] * len(s), "labels": label_id[r["label"]]}
        for s, r in zip(seqs, rows)
    ]
    model = AutoModelForSequenceClassification.from_pretrained(
        a.backbone,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label_id,
        attn_implementation=a.attn,
        dtype=torch.float32,
    )

    def collate(items):
        ids, mask = enc.batch([it["input_ids"] for it in items])
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": torch.tensor([it["labels"] for it in items], dtype=torch.long),
        }

    class Steps(TrainerCallback):
        """Per-step wall time; the first step (warm-up) is not counted."""

        def __init__(self):
            self.times = []
            self.last = None

        def on_step_begin(self, args, state, control, **kw):
            if self.last is None:
                self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            now = time.perf_counter()
            self.times.append(now - self.last)
            self.last = now

        def on_epoch_end(self, args, state, control, **kw):
            self.last = None

    steps_cb = Steps()
    per_step = a.batch * a.grad_accum
    n = len(data)
    steps_per_epoch = -(-(-(-n // a.batch)) // a.grad_accum)
    total_steps = steps_per_epoch * a.epochs
    args = TrainingArguments(
        output_dir=os.path.join(os.environ.get("TMPDIR", "/tmp"), "torch-bench-train"),
        per_device_train_batch_size=a.batch,
        gradient_accumulation_steps=a.grad_accum,
        num_train_epochs=a.epochs,
        learning_rate=5e-5,
        weight_decay=0.01,
        warmup_steps=int(-(-total_steps * 0.1 // 1)),
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        use_cpu=True,
        dataloader_num_workers=0,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to=[],
        seed=42,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[steps_cb])
    started = time.perf_counter()
    # The Trainer prints its final metrics on stdout; stdout is this script's JSON answer.
    with contextlib.redirect_stdout(sys.stderr):
        result = trainer.train()
    total_s = time.perf_counter() - started
    # Examples per step: full steps except each epoch's last.
    ex = []
    for _ in range(a.epochs):
        ex += [per_step] * (steps_per_epoch - 1) + [n - per_step * (steps_per_epoch - 1)]
    times = steps_cb.times
    # Skip the first step of the run (warm-up), as candle's side does; later epochs count whole.
    timed = list(zip(times, ex))[1:]
    timed_s = sum(t for t, _ in timed)
    timed_ex = sum(e for _, e in timed)
    return {
        "side": "pytorch",
        "max_tokens": a.max_tokens,
        "batch": a.batch,
        "grad_accum": a.grad_accum,
        "epochs": a.epochs,
        "examples": n,
        "timed_steps": len(timed),
        "timed_examples": timed_ex,
        "timed_s": timed_s,
        "examples_per_s": timed_ex / timed_s if timed_s else 0.0,
        "step_s": times[1:],
        "total_s": total_s,
        "train_loss": result.training_loss,
        "trainer_samples_per_s": result.metrics.get("train_samples_per_second"),
        "peak_rss": peak_rss(),
        "threads": torch.get_num_threads(),
        "attn_implementation": model.config._attn_implementation,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["infer", "train"])
    p.add_argument("--model")
    p.add_argument("--backbone")
    p.add_argument("--texts", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--max-tokens", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--dump")
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    a = p.parse_args()
    out = infer(a) if a.cmd == "infer" else train(a)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
