#!/usr/bin/env python3
"""The ONNX Runtime side of the model benchmark: what a user who wants CPU speed runs instead
of PyTorch eager. Same texts, token ids and truncation as `model_bench infer` and
torch_bench.py (bench_text.py), same JSON out; `infer` never imports torch.

Runs in the bench-only venv (scripts/bench/model-venv.sh), never in `make test`'s.

  ort_bench.py export --model DIR --out DIR
      DIR/model.onnx: the classifier exported by torch.onnx.export (input_ids and
      attention_mask with dynamic batch and sequence axes, logits out), and DIR/model.int8.onnx:
      onnxruntime.quantization.quantize_dynamic of it (QInt8 weights, per-channel). Prints one
      JSON object (sizes, versions, the largest logit difference of the export against PyTorch).
  ort_bench.py infer --onnx FILE --model DIR --texts FILE.jsonl --max-tokens N --batch N
      [--limit N] [--dump FILE.json] [--side NAME]
      One InferenceSession on the CPU provider, every graph optimisation on
      (ORT_ENABLE_ALL), BENCH_THREADS intra-op threads (default 2), one inter-op thread,
      sequential execution. `--model` gives the tokenizer and the labels. Tokenization is in
      the timed region, as on the other sides.
"""
import argparse
import json
import os
import sys
import time

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def export(a):
    import numpy as np
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(THREADS)
    os.makedirs(a.out, exist_ok=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        a.model, attn_implementation="eager", dtype=torch.float32
    )
    model.eval()
    # A probe batch of two sequences, the first padded: ids within the model's vocabulary.
    ids = torch.arange(7, 17).reshape(2, 5) % model.config.vocab_size
    mask = torch.ones_like(ids)
    mask[0, 3:] = 0

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

    fp32 = os.path.join(a.out, "model.onnx")
    with torch.inference_mode():
        torch.onnx.export(
            Logits(model).eval(),
            (ids, mask),
            fp32,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "logits": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
        want = model(input_ids=ids, attention_mask=mask).logits.numpy()
    onnx.checker.check_model(fp32)
    int8 = os.path.join(a.out, "model.int8.onnx")
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
    import onnxruntime as ort

    got = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"]).run(
        None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    )[0]
    return {
        "fp32": fp32,
        "int8": int8,
        "fp32_bytes": os.path.getsize(fp32),
        "int8_bytes": os.path.getsize(int8),
        "export_max_logit_diff": float(np.abs(got - want).max()),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def infer(a):
    import numpy as np
    import onnxruntime as ort

    from bench_text import Encoder, by_length, peak_rss, read_texts

    rows = read_texts(a.texts)[: a.limit or None]
    texts = [r["text"] for r in rows]
    t_load = time.perf_counter()
    enc = Encoder(a.model)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
    with open(os.path.join(a.model, "config.json")) as f:
        id2label = json.load(f)["id2label"]
    labels = [id2label[str(i)] for i in range(len(id2label))]
    load_s = time.perf_counter() - t_load
    rss_loaded = peak_rss()

    def predict(chunk):
        # As Classifier::predict: sort by length, batches of `batch`, pad to the longest.
        seqs = enc.encode(chunk, a.max_tokens)
        probs = [None] * len(seqs)
        for idx in by_length(seqs, a.batch):
            t = max(len(seqs[j]) for j in idx)
            ids = np.full((len(idx), t), enc.pad, dtype=np.int64)
            mask = np.zeros((len(idx), t), dtype=np.int64)
            for r, j in enumerate(idx):
                ids[r, : len(seqs[j])] = seqs[j]
                mask[r, : len(seqs[j])] = 1
            logits = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            for j, row in zip(idx, (e / e.sum(axis=-1, keepdims=True)).tolist()):
                probs[j] = row
        return probs

    predict(texts[: a.batch])  # warm-up, as the other sides
    started = time.perf_counter()
    probs = []
    for k in range(0, len(texts), a.batch):
        probs.extend(predict(texts[k : k + a.batch]))
    seconds = time.perf_counter() - started
    if a.dump:
        with open(a.dump, "w") as f:
            json.dump({"labels": labels, "ids": [r["id"] for r in rows], "probs": probs}, f)
    return {
        "side": a.side,
        "max_tokens": a.max_tokens,
        "batch": a.batch,
        "texts": len(texts),
        "seconds": seconds,
        "texts_per_s": len(texts) / seconds,
        "load_s": load_s,
        "rss_after_load": rss_loaded,
        "peak_rss": peak_rss(),
        "threads": THREADS,
        "onnxruntime": ort.__version__,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["export", "infer"])
    p.add_argument("--model", required=True)
    p.add_argument("--out")
    p.add_argument("--onnx")
    p.add_argument("--texts")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--dump")
    p.add_argument("--side", default="ort")
    a = p.parse_args()
    out = export(a) if a.cmd == "export" else infer(a)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
