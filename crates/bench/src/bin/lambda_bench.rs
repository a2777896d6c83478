//! The ingest Lambda binary under a fake Lambda Runtime API: time from process start to
//! ready (its first `GET .../invocation/next`), time to handle one S3-notification event for
//! one file stored in moto (cold: the first event; warm: a second file in the same process),
//! and peak RSS (`VmHWM`, read when it asks for a third event, just before it is stopped).
//!
//! Usage: lambda_bench INGEST_BINARY FILE_JSON [--starts N]
//! Prints one JSON object. Needs `moto_server` (see moto-harness).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bench::median;
use serde_json::json;
use store::{Condition, ObjectStore};

const WAIT: Duration = Duration::from_secs(60);
const DATE_FOLDER: &str = "2022/06/22";

/// What the fake Runtime API saw, with when.
enum Seen {
    Next(Instant),
    Response(Instant, String, String),
    Error(String, String),
}

/// The fake Runtime API: connection threads report requests on `seen` and take the next
/// event (or `None`: close the connection) from `events`.
struct RuntimeApi {
    addr: String,
    seen: Receiver<Seen>,
    events: Sender<Option<(String, String)>>,
}

impl RuntimeApi {
    fn start() -> anyhow::Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let (seen_tx, seen) = mpsc::channel();
        let (events, events_rx) = mpsc::channel::<Option<(String, String)>>();
        let events_rx = Arc::new(Mutex::new(events_rx));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = seen_tx.clone();
                let events = events_rx.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &seen, &events);
                });
            }
        });
        Ok(RuntimeApi { addr, seen, events })
    }

    fn expect_next(&self) -> anyhow::Result<Instant> {
        match self
            .seen
            .recv_timeout(WAIT)
            .context("no GET .../invocation/next")?
        {
            Seen::Next(t) => Ok(t),
            Seen::Response(..) => bail!("a response where a GET next was expected"),
            Seen::Error(path, body) => bail!("the runtime reported an error at {path}: {body}"),
        }
    }

    fn expect_response(&self, id: &str) -> anyhow::Result<(Instant, String)> {
        match self.seen.recv_timeout(WAIT).context("no response POSTed")? {
            Seen::Response(t, got, body) => {
                ensure!(got == id, "response for {got}, expected {id}");
                Ok((t, body))
            }
            Seen::Next(_) => bail!("a GET next where a response was expected"),
            Seen::Error(path, body) => bail!("the handler failed ({path}): {body}"),
        }
    }
}

fn serve(
    conn: TcpStream,
    seen: &Sender<Seen>,
    events: &Mutex<Receiver<Option<(String, String)>>>,
) -> anyhow::Result<()> {
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let now = Instant::now();

        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            seen.send(Seen::Next(now))?;
            let next = events.lock().expect("event lock").recv()?;
            let Some((id, event)) = next else {
                return Ok(());
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis()
                + 900_000;
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Lambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:ingest\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\
                 Content-Length: {}\r\n\r\n{event}",
                event.len()
            )?;
        } else {
            if path.ends_with("/response") {
                let id = path.rsplit('/').nth(1).unwrap_or_default().to_string();
                seen.send(Seen::Response(now, id, body))?;
            } else {
                seen.send(Seen::Error(path, body))?;
            }
            write!(
                out,
                "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{{\"status\":\"OK\"}}"
            )?;
        }
        out.flush()?;
    }
}

/// An S3 notification naming `key` (URL-encoded, as S3 sends it) in `bucket`.
fn s3_event(bucket: &str, key: &str, size: usize) -> String {
    let encoded = key.replace(':', "%3A");
    json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2022-06-22T17:05:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": { "s3SchemaVersion": "1.0", "configurationId": "bench",
            "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": { "key": encoded, "size": size } } }] })
    .to_string()
}

/// Peak and current RSS in KiB from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} missing"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("no value")?
            .parse()?)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

struct Run {
    ready_s: f64,
    cold_event_s: f64,
    warm_event_s: f64,
    peak_rss_kib: u64,
}

/// A copy of the file under another contact id, and its analysis key.
fn variant(body: &[u8], contact_id: &str, n: usize) -> (Vec<u8>, String) {
    let new_id = format!("{}{:04}", &contact_id[..contact_id.len() - 4], n);
    let text = String::from_utf8_lossy(body).replace(contact_id, &new_id);
    let key = format!("Analysis/Voice/{DATE_FOLDER}/{new_id}_analysis_2022-06-22T16:55:00Z.json");
    (text.into_bytes(), key)
}

fn one_start(
    api: &RuntimeApi,
    binary: &PathBuf,
    endpoint: &str,
    bucket: &str,
    files: [(&str, usize); 2],
    n: usize,
) -> anyhow::Result<Run> {
    let t0 = Instant::now();
    let mut child: Child = Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("CALLTYPE_BUCKET", bucket)
        .env("CALLTYPE_COPY", "raw")
        .env("AWS_ENDPOINT_URL_S3", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_LAMBDA_FUNCTION_NAME", "ingest")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ingest")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let result = (|| {
        let ready = api.expect_next()?;
        let mut handle = Vec::new();
        for (i, (key, size)) in files.iter().enumerate() {
            if i > 0 {
                api.expect_next()?;
            }
            let id = format!("req-{n}-{i}");
            let sent = Instant::now();
            api.events
                .send(Some((id.clone(), s3_event(bucket, key, *size))))?;
            let (done, body) = api.expect_response(&id)?;
            ensure!(
                body.contains("\"appended\":1"),
                "the event did not append one row: {body}"
            );
            handle.push(done.duration_since(sent).as_secs_f64());
        }
        api.expect_next()?;
        let (peak, _) = rss_kib(child.id())?;
        Ok(Run {
            ready_s: ready.duration_since(t0).as_secs_f64(),
            cold_event_s: handle[0],
            warm_event_s: handle[1],
            peak_rss_kib: peak,
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    // Releases the connection thread still waiting for an event (if it got that far).
    let _ = api.events.send(None);
    result
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let binary = PathBuf::from(
        args.next()
            .context("usage: lambda_bench INGEST FILE_JSON")?,
    );
    let file = PathBuf::from(
        args.next()
            .context("usage: lambda_bench INGEST FILE_JSON")?,
    );
    let mut starts = 10usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--starts" => starts = args.next().context("--starts N")?.parse()?,
            other => bail!("unexpected argument {other}"),
        }
    }
    let body = std::fs::read(&file).with_context(|| file.display().to_string())?;
    let doc: serde_json::Value = serde_json::from_slice(&body)?;
    let contact_id = doc["CustomerMetadata"]["ContactId"]
        .as_str()
        .context("the file has no CustomerMetadata.ContactId")?
        .to_string();

    let rt = tokio::runtime::Runtime::new()?;
    let moto = moto_harness::MotoServer::start();
    let api = RuntimeApi::start()?;
    let mut runs = Vec::new();
    for n in 0..starts {
        let (bucket, keys) = rt.block_on(async {
            let store = moto.fresh_bucket("bench-ingest").await;
            let mut keys = Vec::new();
            for i in 0..2 {
                let (bytes, key) = variant(&body, &contact_id, n * 2 + i);
                store.put(&key, bytes, Condition::None).await?;
                keys.push(key);
            }
            anyhow::Ok((store.bucket().to_string(), keys))
        })?;
        let files = [
            (keys[0].as_str(), body.len()),
            (keys[1].as_str(), body.len()),
        ];
        let run = one_start(&api, &binary, &moto.endpoint(), &bucket, files, n)
            .with_context(|| format!("start {n}"))?;
        eprintln!(
            "  start {n}: ready {:.1} ms, cold event {:.1} ms, warm event {:.1} ms, peak RSS {} KiB",
            run.ready_s * 1e3,
            run.cold_event_s * 1e3,
            run.warm_event_s * 1e3,
            run.peak_rss_kib
        );
        runs.push(run);
    }
    let col = |f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let peak: Vec<f64> = col(|r| r.peak_rss_kib as f64);
    println!(
        "{}",
        json!({
            "starts": starts,
            "file_bytes": body.len(),
            "binary_bytes": std::fs::metadata(&binary)?.len(),
            "ready_s": median(&col(|r| r.ready_s)),
            "cold_event_s": median(&col(|r| r.cold_event_s)),
            "warm_event_s": median(&col(|r| r.warm_event_s)),
            "peak_rss_kib_median": median(&peak),
            "peak_rss_kib_max": peak.iter().cloned().fold(0.0, f64::max),
            "ready_s_all": col(|r| r.ready_s),
            "cold_event_s_all": col(|r| r.cold_event_s),
        })
    );
    Ok(())
}
