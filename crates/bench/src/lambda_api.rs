//! A fake Lambda Runtime API on 127.0.0.1 for starting our Lambda binaries as Lambda would:
//! it hands out events on `GET .../invocation/next` and records the responses, with when, so a
//! benchmark can time start to ready and each event (used by `lambda_bench` and
//! `classify_bench`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

/// How long to wait for the function before giving up.
pub const WAIT: Duration = Duration::from_secs(600);

/// What the fake Runtime API saw, with when.
pub enum Seen {
    Next(Instant),
    Response(Instant, String, String),
    Error(String, String),
}

/// The fake Runtime API: connection threads report requests on `seen` and take the next
/// event (or `None`: close the connection) from `events`.
pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub addr: String,
    pub seen: Receiver<Seen>,
    /// The next event `(request id, JSON)`, or `None` to close the waiting connection.
    pub events: Sender<Option<(String, String)>>,
}

impl RuntimeApi {
    pub fn start() -> anyhow::Result<RuntimeApi> {
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

    pub fn expect_next(&self) -> anyhow::Result<Instant> {
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

    pub fn expect_response(&self, id: &str) -> anyhow::Result<(Instant, String)> {
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
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
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

/// Peak and current RSS in KiB from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
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

/// A command that starts `binary` as Lambda would for `function` with `memory_mb`: a clean
/// environment holding the Runtime API, the function's variables, dummy credentials and
/// `s3_endpoint` for S3 (moto); stdin and stdout closed, stderr inherited. Add the function's
/// own variables, then [`Command::spawn`].
pub fn lambda_command(
    binary: &Path,
    api: &RuntimeApi,
    function: &str,
    memory_mb: u32,
    s3_endpoint: &str,
) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_ENDPOINT_URL_S3", s3_endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// Stops a started function and releases the connection thread still waiting for its next
/// event (if it got that far).
pub fn stop(api: &RuntimeApi, mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
    let _ = api.events.send(None);
}
