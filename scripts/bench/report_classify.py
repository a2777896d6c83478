"""Section 5 of BENCHMARKS.md: the classify Lambda in embedded mode (the model inside the
function), from the JSON `classify_bench` writes (WORK/classify.json): cold start with the model
read from S3 (moto) and from a directory, labeling time per long call, peak memory. Imported by
report.py."""
import json
from pathlib import Path


def section(work, cmd):
    path = Path(work) / "classify.json"
    if not path.exists():
        return []
    c = json.loads(path.read_text())
    s3, d = c["sources"]["s3"], c["sources"]["dir"]
    lt = c["long_text"]
    if lt.get("kind") == "windows":
        reading = f"overlapping windows of {c['max_tokens']} tokens ({lt['overlap']} shared), {lt.get('pool', 'mean')} pooling"
    else:
        reading = f"head+tail at {c['max_tokens']} tokens"
    w = []
    p = w.append
    p("## 5. The classify Lambda in embedded mode: cold start, time per call, memory")
    p("")
    p(f"`classify_bench` (`{cmd}` runs it): the release `classify` binary started as Lambda starts "
      "it, under a fake Runtime API on 127.0.0.1, with `CALLTYPE_MODE=embedded` and "
      f"`AWS_LAMBDA_FUNCTION_MEMORY_SIZE={c['memory_mb']}` ({c['threads']} threads). **Ready** is "
      "process start to its first `GET .../invocation/next`: configuration read, model read "
      f"({c['archive_bytes'] / 1e6:.1f} MB `model.tar.gz` from moto, or a directory), unpacked to "
      "`/tmp` and loaded. Then one scheduled run labels a master CSV of "
      f"{c['calls']} calls of at least {c['words_per_call']:,} words each (sample calls joined; "
      f"{c.get('mean_words', 0):,.0f} on average), read as "
      f"{reading}. Model: all-MiniLM-L6-v2 with a seeded 6-label head. {c['starts']} starts per "
      "source; ready is their median; the last start labels.")
    p("")
    p("| model from | ready (median) | ready, every start | labeling: whole run | per call | peak RSS loaded | peak RSS labeling |")
    p("|---|---:|---|---:|---:|---:|---:|")
    for name, r in (("S3 (moto), `CALLTYPE_MODEL_S3_URI`", s3), ("directory, `CALLTYPE_MODEL_DIR`", d)):
        every = ", ".join(f"{x * 1e3:.0f}" for x in r["ready_s_all"])
        p(f"| {name} | {r['ready_s'] * 1e3:,.0f} ms | {every} ms | {r['label_s']:.2f} s | "
          f"{r['per_call_s'] * 1e3:,.0f} ms | {r['peak_rss_kib_loaded'] / 1024:,.0f} MiB | "
          f"{r['peak_rss_kib'] / 1024:,.0f} MiB |")
    p("")
    p(f"Goal (issue 19): ready within 2 s from S3 on 2 cores: **{'met' if s3['ready_s'] <= 2.0 else 'not met'}** "
      f"({s3['ready_s']:.2f} s). moto is a Python server on the same 2 cores, so the S3 read is "
      "an upper bound on what S3 in-region gives. The per-call time is what the cost arithmetic in "
      "README.md (\"What embedded mode costs\") starts from; binary size "
      f"{c['binary_bytes'] / 1e6:.1f} MB (x86-64 release, stripped).")
    p("")
    return w
