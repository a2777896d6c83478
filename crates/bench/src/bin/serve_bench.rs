//! Rows per second labeled through `serve` over HTTP against the same model in-process, and
//! what one HTTP request costs on top of inference.
//!
//! The server is the real one (`serve::serve_on` on 127.0.0.1:0, its own copy of the model,
//! in this process's tokio runtime), spoken to by the real `aws-sdk-sagemakerruntime` client
//! at `/endpoints/{name}/invocations`, as the classify Lambda does. For each batch size the
//! texts are labeled in calls of that many texts, once in-process (`Classifier::predict`) and
//! once over HTTP (one JSON request per call), alternately within each round; labels must
//! agree. The classify Lambda's own adapter (`EndpointClassifier`, its defaults: 16 texts per
//! request, 4 requests in flight) labels all texts once per round as well.
//!
//! Per-request overhead, measured three ways, each request alternating with its in-process
//! counterpart: `{"inputs": []}` (no model call) over a raw keep-alive HTTP/1.1 connection and
//! through the SDK; one short text through the SDK against `predict` of that text; and for each
//! batch size the paired difference (HTTP − in-process) of the same call.
//!
//! Usage: serve_bench --model DIR --texts FILE.jsonl [--limit N] [--batches 1,8,32]
//!        [--rounds N] [--overhead-requests N]
//! Prints one JSON object.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use aws_sdk_sagemakerruntime::config::retry::RetryConfig;
use aws_sdk_sagemakerruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sagemakerruntime::primitives::Blob;
use bench::median;
use classify::{Classifier as _, EndpointClassifier, EndpointOptions, WireFormat};
use model::Classifier;
use serde_json::{json, Value};

const SHORT_TEXT: &str = "CUSTOMER: hi, I'd like to cancel my card please";

/// A minimal HTTP/1.1 client on one keep-alive connection (answers must carry
/// `Content-Length`, as axum's do for whole bodies).
struct RawClient {
    stream: TcpStream,
    addr: SocketAddr,
}

impl RawClient {
    fn connect(addr: SocketAddr) -> anyhow::Result<RawClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(RawClient { stream, addr })
    }

    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        self.stream.write_all(&req)?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 8192];
        let split = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = self.stream.read(&mut chunk)?;
            ensure!(n > 0, "connection closed before the answer's head");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buf[..split])?;
        let status: u16 = head.split(' ').nth(1).context("status line")?.parse()?;
        let len: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .context("an answer without Content-Length")?
            .1
            .trim()
            .parse()?;
        let mut body = buf[split + 4..].to_vec();
        while body.len() < len {
            let n = self.stream.read(&mut chunk)?;
            ensure!(n > 0, "connection closed inside the answer's body");
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
        Ok((status, body))
    }
}

struct Opts {
    model: PathBuf,
    texts: PathBuf,
    limit: usize,
    batches: Vec<usize>,
    rounds: usize,
    overhead_requests: usize,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        model: PathBuf::new(),
        texts: PathBuf::new(),
        limit: 64,
        batches: vec![1, 8, 32],
        rounds: 3,
        overhead_requests: 100,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--model" => o.model = v.into(),
            "--texts" => o.texts = v.into(),
            "--limit" => o.limit = v.parse()?,
            "--batches" => o.batches = v.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--rounds" => o.rounds = v.parse()?,
            "--overhead-requests" => o.overhead_requests = v.parse()?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    ensure!(
        !o.model.as_os_str().is_empty() && !o.texts.as_os_str().is_empty(),
        "usage: serve_bench --model DIR --texts FILE.jsonl [--limit N] [--batches 1,8,32] [--rounds N] [--overhead-requests N]"
    );
    Ok(o)
}

fn read_texts(path: &PathBuf, limit: usize) -> anyhow::Result<Vec<String>> {
    let data = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut out = Vec::new();
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)?;
        out.push(
            v["text"]
                .as_str()
                .context("a line without text")?
                .to_string(),
        );
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}

fn labels_of(body: &[u8]) -> anyhow::Result<Vec<String>> {
    let v: Value = serde_json::from_slice(body)?;
    v.as_array()
        .context("an answer that is not a JSON array")?
        .iter()
        .map(|a| Ok(a["label"].as_str().context("no label")?.to_string()))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let o = opts()?;
    let texts = read_texts(&o.texts, o.limit)?;
    ensure!(!texts.is_empty(), "no texts in {}", o.texts.display());
    let clf = Arc::new(Classifier::load(&o.model)?);
    let settings = *clf.settings();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let model_dir = o.model.clone();
    rt.spawn(async move {
        if let Err(e) = serve::serve_on(listener, model_dir, serve::Limits::default()).await {
            eprintln!("serve_bench: the server stopped: {e}");
            std::process::exit(1);
        }
    });
    let mut raw = RawClient::connect(addr)?;
    let ready = Instant::now();
    loop {
        if raw.request("GET", "/ping", b"")?.0 == 200 {
            break;
        }
        ensure!(ready.elapsed() < Duration::from_secs(120), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    let sdk_config = rt.block_on(
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
            .endpoint_url(format!("http://{addr}"))
            .retry_config(RetryConfig::disabled())
            .load(),
    );
    let client = aws_sdk_sagemakerruntime::Client::new(&sdk_config);
    let invoke = |body: Vec<u8>| -> anyhow::Result<Vec<u8>> {
        let out = rt.block_on(
            client
                .invoke_endpoint()
                .endpoint_name("bench")
                .content_type("application/json")
                .accept("application/json")
                .body(Blob::new(body))
                .send(),
        )?;
        Ok(out.body().map(|b| b.as_ref().to_vec()).unwrap_or_default())
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    // Warm-up of both paths (thread pools, allocator, connection).
    let warm = &refs[..refs.len().min(8)];
    clf.predict(warm)?;
    invoke(WireFormat::Json.encode_request(warm))?;

    // Rows/s by batch size, in-process and over HTTP alternately.
    let mut per_batch = Vec::new();
    let mut inproc_rps: Vec<Vec<f64>> = vec![Vec::new(); o.batches.len()];
    let mut http_rps: Vec<Vec<f64>> = vec![Vec::new(); o.batches.len()];
    let mut inproc_call: Vec<Vec<f64>> = vec![Vec::new(); o.batches.len()];
    let mut http_call: Vec<Vec<f64>> = vec![Vec::new(); o.batches.len()];
    let mut paired: Vec<Vec<f64>> = vec![Vec::new(); o.batches.len()];
    let mut disagree = vec![0usize; o.batches.len()];
    let mut lambda_rps = Vec::new();
    let mut lambda_inproc_rps = Vec::new();
    let endpoint = EndpointClassifier::new(
        client.clone(),
        EndpointOptions::new("bench", WireFormat::Json),
    );
    let lambda_batch = endpoint.options().max_batch_texts;
    for round in 0..o.rounds {
        for (bi, &b) in o.batches.iter().enumerate() {
            eprintln!(
                "serve_bench: round {}/{}, {b} text(s) per call",
                round + 1,
                o.rounds
            );
            let chunks: Vec<&[&str]> = refs.chunks(b).collect();
            let run_inproc = |labels: &mut Vec<Vec<String>>| -> anyhow::Result<Vec<f64>> {
                let mut times = Vec::new();
                for c in &chunks {
                    let t = Instant::now();
                    let p = clf.predict(c)?;
                    times.push(t.elapsed().as_secs_f64());
                    labels.push(p.into_iter().map(|p| p.label).collect());
                }
                Ok(times)
            };
            let run_http = |labels: &mut Vec<Vec<String>>| -> anyhow::Result<Vec<f64>> {
                let mut times = Vec::new();
                for c in &chunks {
                    let t = Instant::now();
                    let body = invoke(WireFormat::Json.encode_request(c))?;
                    let l = labels_of(&body)?;
                    times.push(t.elapsed().as_secs_f64());
                    labels.push(l);
                }
                Ok(times)
            };
            let (mut li, mut lh) = (Vec::new(), Vec::new());
            // Alternate which side goes first, so that drift in machine load falls on both.
            let (ti, th) = if round % 2 == 0 {
                let ti = run_inproc(&mut li)?;
                (ti, run_http(&mut lh)?)
            } else {
                let th = run_http(&mut lh)?;
                (run_inproc(&mut li)?, th)
            };
            let n = refs.len() as f64;
            inproc_rps[bi].push(n / ti.iter().sum::<f64>());
            http_rps[bi].push(n / th.iter().sum::<f64>());
            paired[bi].extend(ti.iter().zip(&th).map(|(i, h)| h - i));
            inproc_call[bi].extend(&ti);
            http_call[bi].extend(&th);
            disagree[bi] += li
                .iter()
                .flatten()
                .zip(lh.iter().flatten())
                .filter(|(a, b)| a != b)
                .count();
        }
        // The Lambda's adapter on all texts, and in-process at its batch size.
        let t = Instant::now();
        let got = rt.block_on(endpoint.classify(&texts))?;
        lambda_rps.push(texts.len() as f64 / t.elapsed().as_secs_f64());
        ensure!(got.len() == texts.len(), "the adapter lost texts");
        let t = Instant::now();
        for c in refs.chunks(lambda_batch) {
            clf.predict(c)?;
        }
        lambda_inproc_rps.push(texts.len() as f64 / t.elapsed().as_secs_f64());
    }
    for (bi, &b) in o.batches.iter().enumerate() {
        let ri = median(&inproc_rps[bi]);
        let rh = median(&http_rps[bi]);
        per_batch.push(json!({
            "batch": b,
            "requests_per_round": refs.len().div_ceil(b),
            "inproc_rows_per_s": ri,
            "http_rows_per_s": rh,
            "inproc_rows_per_s_rounds": inproc_rps[bi],
            "http_rows_per_s_rounds": http_rps[bi],
            "inproc_call_median_s": median(&inproc_call[bi]),
            "http_request_median_s": median(&http_call[bi]),
            "paired_overhead_median_s": median(&paired[bi]),
            "label_disagreements": disagree[bi],
        }));
    }

    // Per-request overhead.
    eprintln!("serve_bench: per-request overhead");
    let empty = WireFormat::Json.encode_request(&[]);
    let short = WireFormat::Json.encode_request(&[SHORT_TEXT]);
    let (mut raw_empty, mut sdk_empty, mut sdk_short, mut inproc_short, mut raw_ping) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..o.overhead_requests {
        let t = Instant::now();
        let (status, body) = raw.request("POST", "/invocations", &empty)?;
        raw_empty.push(t.elapsed().as_secs_f64());
        ensure!(
            status == 200 && body == b"[]",
            "empty request answered {status}"
        );
        let t = Instant::now();
        let (status, _) = raw.request("GET", "/ping", b"")?;
        raw_ping.push(t.elapsed().as_secs_f64());
        ensure!(status == 200, "ping answered {status}");
        let t = Instant::now();
        invoke(empty.clone())?;
        sdk_empty.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        clf.predict(&[SHORT_TEXT])?;
        inproc_short.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let l = labels_of(&invoke(short.clone())?)?;
        sdk_short.push(t.elapsed().as_secs_f64());
        ensure!(l.len() == 1, "one label expected");
    }

    let out = json!({
        "model_dir": o.model,
        "texts": refs.len(),
        "mean_chars": refs.iter().map(|t| t.len()).sum::<usize>() as f64 / refs.len() as f64,
        "max_tokens": settings.max_tokens,
        "model_batch_size": settings.batch_size,
        "rounds": o.rounds,
        "threads": candle_core::utils::get_num_threads(),
        "batches": per_batch,
        "lambda_adapter": {
            "texts_per_request": lambda_batch,
            "in_flight": endpoint.options().max_in_flight,
            "http_rows_per_s": median(&lambda_rps),
            "inproc_rows_per_s": median(&lambda_inproc_rps),
            "http_rows_per_s_rounds": lambda_rps,
            "inproc_rows_per_s_rounds": lambda_inproc_rps,
        },
        "overhead": {
            "requests": o.overhead_requests,
            "raw_ping_median_s": median(&raw_ping),
            "raw_empty_median_s": median(&raw_empty),
            "sdk_empty_median_s": median(&sdk_empty),
            "sdk_short_median_s": median(&sdk_short),
            "inproc_short_median_s": median(&inproc_short),
            "short_text_chars": SHORT_TEXT.len(),
        },
    });
    println!("{out}");
    Ok(())
}
