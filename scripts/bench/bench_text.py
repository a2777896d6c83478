"""What every Python side of the model benchmark shares, without importing torch: the texts,
peak RSS, and the token ids (our length handling over the model's tokenizer.json).

Inputs are the same token ids as candle's: the tokenizer from the model's tokenizer.json
(special tokens off, no truncation), then head+tail truncation (first half of the content
budget and the rest from the end, as `model::tokenize::head_tail`), then [CLS] ... [SEP].
"""
import json
import os
import resource

from tokenizers import Tokenizer


def peak_rss():
    """Peak RSS of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Encoder:
    """tokenizer.json with our length handling: head+tail truncation, [CLS] ... [SEP]."""

    def __init__(self, model_dir):
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        # The MiniLM package bakes truncation and padding into tokenizer.json: switch both off.
        self.tok.no_truncation()
        self.tok.no_padding()
        vocab = self.tok.get_vocab()
        self.cls = vocab["[CLS]"]
        self.sep = vocab["[SEP]"]
        self.pad = vocab["[PAD]"]

    def encode(self, texts, max_tokens, head_fraction=0.5):
        budget = max(max_tokens - 2, 1)
        out = []
        for enc in self.tok.encode_batch(texts, add_special_tokens=False):
            ids = enc.ids
            if len(ids) > budget:
                # Rust rounds half away from zero; budget * 0.5 is a whole number or x.5.
                head = min(int(budget * head_fraction + 0.5), budget)
                ids = ids[:head] + ids[len(ids) - (budget - head):]
            out.append([self.cls] + ids + [self.sep])
        return out


def by_length(seqs, batch):
    """As Classifier::predict: the indices of `seqs` sorted by length, in batches of `batch`
    (each padded to its longest by the caller)."""
    order = sorted(range(len(seqs)), key=lambda j: len(seqs[j]))
    return [order[k : k + batch] for k in range(0, len(order), batch)]
