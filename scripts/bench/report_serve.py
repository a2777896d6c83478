"""Section 4 of BENCHMARKS.md: labeling through `serve` over HTTP against in-process, from the
JSON `serve_bench` writes (WORK/serve.json). Imported by report.py."""
import json
from pathlib import Path


def _ms(s):
    return f"{s * 1e3:,.1f} ms"


def _us(s):
    return f"{s * 1e6:,.0f} µs"


def section(work, cmd):
    path = Path(work) / "serve.json"
    if not path.exists():
        return []
    s = json.loads(path.read_text())
    o = s["overhead"]
    la = s["lambda_adapter"]
    w = []
    p = w.append
    p("## 4. Rows/s labeled through `serve` over HTTP against in-process")
    p("")
    p(f"`serve_bench` (`{cmd}` runs it): the real server (`serve::serve_on` on 127.0.0.1, its own "
      "copy of the model, in the bench process's tokio runtime) answering the real "
      "`aws-sdk-sagemakerruntime` client at `/endpoints/bench/invocations` (JSON, one request per "
      "call, one at a time), against `Classifier::predict` on the same texts in calls of the same "
      f"size. Model: all-MiniLM-L6-v2 with a seeded 6-label head (`model_bench make-classifier`), "
      f"default inference settings ({s['max_tokens']} tokens, head+tail, {s['model_batch_size']} "
      f"sequences per forward pass), {s['threads']} threads. Texts: the first {s['texts']} sample "
      f"calls (`samples/calls`, mean {s['mean_chars']:,.0f} characters) as ingest extracts them. "
      f"{s['rounds']} rounds, in-process and HTTP alternating which goes first; rows/s is the median "
      "of the rounds, per-call times are medians over every call.")
    p("")
    p("| texts per request | in-process rows/s | HTTP rows/s | HTTP / in-process | in-process per call | HTTP per request | overhead per request (paired median) | labels differ |")
    p("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in s["batches"]:
        p(f"| {b['batch']} | {b['inproc_rows_per_s']:.2f} | {b['http_rows_per_s']:.2f} | "
          f"{b['http_rows_per_s'] / b['inproc_rows_per_s']:.3f} | {_ms(b['inproc_call_median_s'])} | "
          f"{_ms(b['http_request_median_s'])} | {_ms(b['paired_overhead_median_s'])} | "
          f"{b['label_disagreements']} |")
    p(f"| {la['texts_per_request']}, {la['in_flight']} in flight (the classify Lambda's `EndpointClassifier`, defaults) | "
      f"{la['inproc_rows_per_s']:.2f} (calls of {la['texts_per_request']}) | {la['http_rows_per_s']:.2f} | "
      f"{la['http_rows_per_s'] / la['inproc_rows_per_s']:.3f} | | | | |")
    p("")
    p(f"Per-request overhead, {o['requests']} requests of each kind, interleaved (medians):")
    p("")
    p("| request | time |")
    p("|---|---:|")
    p(f"| `GET /ping`, raw HTTP/1.1 keep-alive client | {_us(o['raw_ping_median_s'])} |")
    p(f"| `POST /invocations` `{{\"inputs\": []}}` (no model call), raw keep-alive client | {_us(o['raw_empty_median_s'])} |")
    p(f"| the same through the SDK client (`InvokeEndpoint`: SigV4 signing, its HTTP stack) | {_us(o['sdk_empty_median_s'])} |")
    p(f"| one short text ({o['short_text_chars']} characters) through the SDK | {_ms(o['sdk_short_median_s'])} |")
    p(f"| the same text in-process (`predict`) | {_ms(o['inproc_short_median_s'])} |")
    p(f"| difference (HTTP − in-process, one short text) | {_us(o['sdk_short_median_s'] - o['inproc_short_median_s'])} |")
    p("")
    big = max(s["batches"], key=lambda b: b["batch"])
    p(f"- The fixed cost of a request is about {_us(o['sdk_empty_median_s'])} through the SDK "
      f"({_us(o['raw_empty_median_s'])} of it the server's own routing, parsing and answer on a raw "
      f"connection); one forward pass of a single short text is {_ms(o['inproc_short_median_s'])}, so HTTP "
      f"adds {o['sdk_empty_median_s'] / o['inproc_short_median_s']:.1%} even to the cheapest real "
      f"request, and at {big['batch']} texts per request HTTP runs at "
      f"{big['http_rows_per_s'] / big['inproc_rows_per_s']:.1%} of in-process rows/s.")
    ratios = [b["http_rows_per_s"] / b["inproc_rows_per_s"] for b in s["batches"]]
    p(f"- At real batch sizes HTTP ran at {min(ratios):.1%} to {max(ratios):.1%} of in-process rows/s: "
      "the paired per-request differences are within the noise of inference itself on this shared "
      "2-core machine (negative ones included), so the empty-request and short-text rows are the "
      "overhead figures to quote.")
    r = la["http_rows_per_s"] / la["inproc_rows_per_s"]
    p(f"- The Lambda adapter with {la['in_flight']} requests in flight ran at {r:.1%} of in-process "
      f"rows/s at the same {la['texts_per_request']} texts per call: the server runs one inference at "
      "a time (a forward pass already uses every core), so requests in flight only queue; "
      "their value is hiding network latency to a remote endpoint, not adding compute.")
    p("")
    return w
