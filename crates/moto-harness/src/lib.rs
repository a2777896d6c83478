//! A local S3 for tests: [`MotoServer`] starts `moto_server` (PyPI `moto[server]`) on a free
//! port of 127.0.0.1, waits until it answers, hands out SDK clients and [`store_s3::S3Store`]s
//! pointed at it, and kills it when dropped.
//!
//! ```no_run
//! # async fn demo() {
//! let moto = moto_harness::MotoServer::start();
//! let store = moto.bucket("test-bucket").await;
//! # let _ = store;
//! # }
//! ```
//!
//! The binary is found in this order: `$MOTO_SERVER`, `<workspace>/.venv/bin/moto_server`,
//! `moto_server` on `PATH`; `make test-deps` installs it into `.venv`.
//!
//! Architecture invariant: a dev-dependency only; nothing shipped depends on it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use store_s3::S3Store;

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    /// Kills moto when this test process goes away without dropping us (a static, SIGKILL).
    watchdog: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl MotoServer {
    /// Starts a fresh server on a free port and waits (at most ~10 s) until it answers HTTP.
    ///
    /// Panics with instructions if `moto_server` cannot be found or does not come up.
    pub fn start() -> MotoServer {
        let bin = find_binary().unwrap_or_else(|| {
            panic!(
                "moto_server not found: set MOTO_SERVER, or run `make test-deps` \
                 (it installs moto[server] into {})",
                workspace_root().join(".venv").display()
            )
        });
        let mut last_err = String::new();
        // A free port can be taken between our probe and moto's bind: try a few.
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(server) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("moto_server ({}) did not start: {last_err}", bin.display());
    }

    /// One server for the whole test binary, started on first use. Tests sharing it should
    /// use their own buckets ([`MotoServer::fresh_bucket`]). It is stopped by its watchdog
    /// when the test process exits.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(MotoServer::start)
    }

    fn try_start(bin: &Path) -> Result<MotoServer, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let log = std::env::temp_dir().join(format!("moto-{}-{port}.log", std::process::id()));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        let watchdog = spawn_watchdog(child.id());
        let mut server = MotoServer {
            child,
            watchdog,
            port,
            log,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "exited with {status}; log: {}",
                    tail_of(&server.log)
                ));
            }
            if answers_http(port) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on port {port} within {READY_TIMEOUT:?}; log: {}",
                    tail_of(&server.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An S3 client for this server: dummy credentials (test/test), us-east-1, path-style.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(Credentials::new("test", "test", None, None, "moto-harness"))
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            // The SDK's 3.1 s connect timeout is for the internet; moto is one Python process
            // on this machine, and with 200 clients connecting on a loaded 2-core machine its
            // accept backlog makes connects wait for SYN retries (1 s, 3 s, ...).
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Creates bucket `name` (if it does not exist yet) and returns a store over it.
    pub async fn bucket(&self, name: &str) -> S3Store {
        let client = self.client().await;
        if let Err(e) = client.create_bucket().bucket(name).send().await {
            let exists = e.as_service_error().is_some_and(|se| {
                se.is_bucket_already_owned_by_you() || se.is_bucket_already_exists()
            });
            assert!(
                exists,
                "creating bucket {name}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            );
        }
        S3Store::new(client, name)
    }

    /// Creates a bucket with a name not used before in this process: `<prefix>-<n>`.
    pub async fn fresh_bucket(&self, prefix: &str) -> S3Store {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.bucket(&format!("{prefix}-{}-{n}", std::process::id()))
            .await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn workspace_root() -> PathBuf {
    // crates/moto-harness -> the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the harness lives two levels below the workspace root")
        .to_path_buf()
}

fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = workspace_root().join(".venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.is_file())
    })
}

fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// A shell loop that kills `moto_pid` once this process is gone. Best effort: without `sh`,
/// only `Drop` stops the server.
fn spawn_watchdog(moto_pid: u32) -> Option<Child> {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill {moto_pid} 2>/dev/null",
        parent = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// True when something on `port` answers an HTTP request with a status line.
fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
    let req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf[..got].starts_with(b"HTTP/")
}

fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_holds_the_root_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("crates").is_dir());
    }
}
