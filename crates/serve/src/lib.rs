//! The SageMaker inference-container contract over [`model::Classifier`].
//!
//! Main items:
//! - [`serve`] (and [`serve_on`] for a listener already bound): binds, answers at once, loads
//!   the model in the background and serves until the process ends.
//! - [`router`] over a [`ServerState`]: the HTTP routes, for running in-process in tests.
//! - [`wire`]: the Hugging Face inference-toolkit JSON and JSON Lines formats, as pure functions.
//!
//! Routes:
//! - `GET /ping`: 200 once the model is loaded, 503 while it loads. The server listens before
//!   the model is loaded so that SageMaker's health check sees a live container; a model that
//!   fails to load makes [`serve`] return the error, so the container exits and the deployment
//!   fails loudly.
//! - `POST /invocations` and `POST /endpoints/{name}/invocations` (the runtime API's path, so
//!   the real `aws-sdk-sagemakerruntime` client can be pointed at this server): a body in
//!   `application/json` (one `{"inputs": ..., "parameters": ...}`) or `application/jsonlines`
//!   (one such object per line, as batch transform sends with `BatchStrategy=MultiRecord`),
//!   answered in the format `Accept` asks for, else the request's. Shapes are in [`wire`].
//!   All texts of a request go to the model in one call, which groups them by length and
//!   applies its long-call strategy. An empty `"inputs": []` is answered `[]` (the pipeline's
//!   answer to an empty batch); an empty body is a 400.
//! - `GET /execution-parameters`: batch transform's optional question, answered with
//!   `MULTI_RECORD`, one concurrent transform and the payload limit.
//!
//! Errors are JSON `{"error": reason}`: 400 malformed input, 413 a body over
//! [`Limits::max_body_bytes`], 415/406 an unsupported `Content-Type`/`Accept`, 503 while the
//! model loads, 500 a model failure. No body makes the server panic or stop. Inference runs on
//! blocking threads, one request at a time (a forward pass already uses every core), so
//! `/ping` stays responsive during long batches. Logs carry counts, sizes and timings, never
//! text.
//!
//! Architecture invariant: no AWS SDK here, and no pipeline or store types; this crate only
//! knows HTTP, the wire format and [`model::Classifier`].

pub mod wire;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use model::{Classifier, ModelError};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::wire::{Format, WireError};

/// SageMaker real-time inference's payload limit: 6 MB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body in bytes; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Accepting connections failed.
    #[error("the server stopped")]
    Io(#[source] std::io::Error),
    /// The model directory could not be loaded.
    #[error("cannot load the model from {dir}")]
    Load {
        /// The model directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: ModelError,
    },
    /// Loading the model panicked.
    #[error("loading the model from {dir} panicked")]
    LoadPanicked {
        /// The model directory.
        dir: PathBuf,
    },
}

/// What the routes share: the model once loaded, the limits, and the inference gate.
#[derive(Clone)]
pub struct ServerState {
    inner: Arc<Inner>,
}

struct Inner {
    model: OnceLock<Arc<Classifier>>,
    limits: Limits,
    /// One inference at a time: a forward pass already uses every core.
    gate: Arc<Semaphore>,
}

impl ServerState {
    /// A state whose model is still loading: `/ping` and invocations answer 503.
    pub fn loading(limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                model: OnceLock::new(),
                limits,
                gate: Arc::new(Semaphore::new(1)),
            }),
        }
    }

    /// A state serving `classifier` at once.
    pub fn ready(classifier: Classifier, limits: Limits) -> Self {
        let state = Self::loading(limits);
        state.set_model(classifier);
        state
    }

    /// Makes the server ready with `classifier`; false (and no change) when one is set already.
    pub fn set_model(&self, classifier: Classifier) -> bool {
        self.inner.model.set(Arc::new(classifier)).is_ok()
    }

    /// Whether the model is loaded.
    pub fn is_ready(&self) -> bool {
        self.inner.model.get().is_some()
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }
}

/// The routes of the container contract (see the crate doc) over `state`.
pub fn router(state: ServerState) -> Router {
    let limit = state.limits().max_body_bytes;
    Router::new()
        .route("/ping", get(ping))
        .route("/invocations", post(invocations))
        .route("/endpoints/{name}/invocations", post(invocations))
        .route("/execution-parameters", get(execution_parameters))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route".into()) })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Binds `addr`, loads `model_dir` in the background and serves until the process ends.
///
/// `/ping` answers 503 until the model is loaded. Returns only on failure: the address
/// cannot be bound, the model cannot be loaded, or accepting connections fails.
pub async fn serve(model_dir: PathBuf, addr: SocketAddr, limits: Limits) -> Result<(), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    serve_on(listener, model_dir, limits).await
}

/// [`serve`] on a listener already bound (port 0 in tests).
pub async fn serve_on(
    listener: TcpListener,
    model_dir: PathBuf,
    limits: Limits,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    let state = ServerState::loading(limits);
    info!(%addr, model = %model_dir.display(), max_body_bytes = limits.max_body_bytes, "listening; loading the model");
    let dir = model_dir.clone();
    let load = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        Classifier::load(&dir).map(|c| (c, started.elapsed()))
    });
    let mut server = std::pin::pin!(axum::serve(listener, router(state.clone())).into_future());
    tokio::select! {
        stopped = &mut server => return stopped.map_err(ServeError::Io),
        loaded = load => match loaded {
            Ok(Ok((classifier, took))) => {
                info!(labels = classifier.labels().len(), ms = took.as_millis() as u64, "model loaded; ready");
                state.set_model(classifier);
            }
            Ok(Err(source)) => return Err(ServeError::Load { dir: model_dir, source }),
            Err(_) => return Err(ServeError::LoadPanicked { dir: model_dir }),
        },
    }
    server.await.map_err(ServeError::Io)
}

async fn ping(State(state): State<ServerState>) -> Response {
    if state.is_ready() {
        json_response(
            StatusCode::OK,
            Format::Json,
            br#"{"status":"ready"}"#.to_vec(),
        )
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is still loading".into(),
        )
    }
}

async fn execution_parameters(State(state): State<ServerState>) -> Response {
    let mb = (state.limits().max_body_bytes / (1024 * 1024)).max(1);
    let body = format!(
        r#"{{"MaxConcurrentTransforms":1,"BatchStrategy":"MULTI_RECORD","MaxPayloadInMB":{mb}}}"#
    );
    json_response(StatusCode::OK, Format::Json, body.into_bytes())
}

async fn invocations(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    match invoke(&state, &headers, body).await {
        Ok((status, format, bytes, records, texts)) => {
            info!(
                records,
                texts,
                response_bytes = bytes.len(),
                ms = started.elapsed().as_millis() as u64,
                "invocation"
            );
            json_response(status, format, bytes)
        }
        Err((status, reason)) => {
            // Reasons are built here and never quote request text.
            warn!(status = status.as_u16(), %reason, ms = started.elapsed().as_millis() as u64, "invocation refused");
            error(status, reason)
        }
    }
}

type Answered = (StatusCode, Format, Vec<u8>, usize, usize);

async fn invoke(
    state: &ServerState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Answered, (StatusCode, String)> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body over the limit of {} bytes",
                    state.limits().max_body_bytes
                ),
            )
        } else {
            (rejection.status(), rejection.body_text())
        }
    })?;
    let Some(model) = state.inner.model.get().cloned() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is still loading".into(),
        ));
    };
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let request = Format::from_content_type(header(CONTENT_TYPE)).map_err(wire_status)?;
    let answer = Format::from_accept(header(ACCEPT), request).map_err(wire_status)?;
    let records = wire::parse_body(&body, request).map_err(wire_status)?;
    drop(body);

    let permit = state
        .inner
        .gate
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server is closing".into(),
            )
        })?;
    let worker_model = model.clone();
    let (records, probs) = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let texts: Vec<&str> = records.iter().flat_map(|r| r.texts()).collect();
        let probs = if texts.is_empty() {
            Ok(Vec::new())
        } else {
            worker_model.probabilities(&texts)
        };
        (records, probs)
    })
    .await
    .map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "inference panicked".to_string(),
        )
    })?;
    let probs = probs.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("model: {e}")))?;

    let texts: usize = records.iter().map(|r| r.texts().len()).sum();
    if probs.len() != texts {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("model: {} results for {texts} texts", probs.len()),
        ));
    }
    let labels = model.labels();
    let mut rest = probs.as_slice();
    let mut answers = Vec::with_capacity(records.len());
    for record in &records {
        let (mine, tail) = rest.split_at(record.texts().len());
        answers.push(wire::answer(record, labels, mine));
        rest = tail;
    }
    let bytes = wire::encode(&answers, request, answer);
    Ok((StatusCode::OK, answer, bytes, records.len(), texts))
}

fn wire_status(e: WireError) -> (StatusCode, String) {
    let status = match e {
        WireError::BadRequest(_) => StatusCode::BAD_REQUEST,
        WireError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        WireError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
    };
    (status, e.to_string())
}

fn json_response(status: StatusCode, format: Format, body: Vec<u8>) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    response
}

fn error(status: StatusCode, reason: String) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "error": reason }))
        .expect("a string always serializes");
    json_response(status, Format::Json, body)
}
