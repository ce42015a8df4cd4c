//! An Ollama stand-in: a real HTTP/1.1 server on 127.0.0.1 (hyper) that answers the parts
//! of Ollama's API vigil uses, with the field names and shapes of Ollama's docs/api.md:
//! `GET /`, `GET /api/version`, `GET /api/tags`, `GET /api/ps`, `POST /api/generate`
//! (one token; with an empty prompt it loads the model, and with `keep_alive: 0` it unloads
//! it, answering `"done_reason": "unload"` as Ollama does).
//!
//! It runs on its own thread with its own tokio runtime, so sync and async tests alike
//! use it, and the test steers it: healthy, slow, hanging (accepts the connection, reads
//! the request and never answers, keeping the socket open), failing with 500, generation
//! hanging while everything else answers, models loaded and unloaded.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// How the stand-in behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Answers at once.
    Healthy,
    /// Answers every request after this delay.
    Slow(Duration),
    /// Accepts connections and reads requests, never answers.
    Hang,
    /// Answers every `/api/*` request with 500 and Ollama's `{"error": …}`.
    Fail500,
    /// `/api/generate` never answers; everything else is healthy.
    GenerateHangs,
}

/// A model on the stand-in's disk (`/api/tags`).
#[derive(Debug, Clone)]
struct Model {
    name: String,
    size: u64,
    digest: String,
    parameter_size: String,
    family: String,
}

/// A model in memory (`/api/ps`).
#[derive(Debug, Clone)]
struct Loaded {
    name: String,
    size_vram: u64,
    expires_at: SystemTime,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Option<Value>,
}

struct State {
    mode: Mode,
    version: String,
    models: Vec<Model>,
    loaded: Vec<Loaded>,
    seen: Vec<Seen>,
}

/// A running stand-in; stops (closing every connection) on drop.
pub struct Standin {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    hanging: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The models every stand-in has pulled (sizes of the real tags).
pub const LLAMA: &str = "llama3.2:3b";
pub const LLAMA_SIZE: u64 = 3_338_801_664;
pub const QWEN: &str = "qwen2.5:0.5b";
pub const QWEN_SIZE: u64 = 994_118_144;

impl Standin {
    /// A healthy stand-in, Ollama 0.5.7, with two models pulled and none loaded.
    pub fn start() -> Standin {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Healthy,
            version: "0.5.7".into(),
            models: vec![
                Model {
                    name: LLAMA.into(),
                    size: LLAMA_SIZE,
                    digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"
                        .into(),
                    parameter_size: "3.2B".into(),
                    family: "llama".into(),
                },
                Model {
                    name: QWEN.into(),
                    size: QWEN_SIZE,
                    digest: "a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67"
                        .into(),
                    parameter_size: "494.03M".into(),
                    family: "qwen2".into(),
                },
            ],
            loaded: Vec::new(),
            seen: Vec::new(),
        }));
        let hanging = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let hg = hanging.clone();
        let thread = std::thread::Builder::new()
            .name("ollama-standin".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(serve(std_listener, st, hg, stop_rx));
                // Dropping the runtime drops every connection, hanging ones included.
            })
            .unwrap();
        Standin {
            addr,
            state,
            hanging,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Loads a pulled model fully into VRAM, as a generate request would.
    pub fn load(&self, name: &str) {
        let size = self.size_of(name);
        self.load_with_vram(name, size);
    }

    /// Loads a pulled model with only `size_vram` of it on the GPU (the rest in RAM).
    pub fn load_with_vram(&self, name: &str, size_vram: u64) {
        let mut s = self.state.lock().unwrap();
        s.loaded.retain(|l| l.name != name);
        s.loaded.push(Loaded {
            name: name.into(),
            size_vram,
            expires_at: SystemTime::now() + Duration::from_secs(300),
        });
    }

    pub fn unload(&self, name: &str) {
        self.state.lock().unwrap().loaded.retain(|l| l.name != name);
    }

    /// Names of the loaded models.
    pub fn loaded(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.loaded.iter().map(|l| l.name.clone()).collect()
    }

    /// The size of a pulled model.
    pub fn size_of(&self, name: &str) -> u64 {
        let s = self.state.lock().unwrap();
        s.models
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("the stand-in has no model {name}"))
            .size
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests seen for one path.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// Requests being held without an answer right now (hanging modes).
    pub fn hanging(&self) -> usize {
        self.hanging.load(Ordering::SeqCst)
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    hanging: Arc<AtomicUsize>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        let hanging = hanging.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let hanging = hanging.clone();
                async move { Ok::<_, Infallible>(handle(req, state, hanging).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Counts a held request while it is held.
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn hang(hanging: Arc<AtomicUsize>) -> ! {
    hanging.fetch_add(1, Ordering::SeqCst);
    let _held = Held(hanging);
    std::future::pending::<()>().await;
    unreachable!()
}

fn json_response(status: StatusCode, v: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn error(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    json_response(status, json!({ "error": msg }))
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    hanging: Arc<AtomicUsize>,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let mode = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            body: parsed.clone(),
        });
        s.mode
    };
    match mode {
        Mode::Healthy => {}
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Hang => hang(hanging).await,
        Mode::GenerateHangs if path == "/api/generate" => hang(hanging).await,
        Mode::GenerateHangs => {}
        Mode::Fail500 if path.starts_with("/api/") => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "llama runner process has terminated: exit status 0xc0000409",
            )
        }
        Mode::Fail500 => {}
    }
    let mut s = state.lock().unwrap();
    s.loaded.retain(|l| l.expires_at > SystemTime::now());
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/") => Response::builder()
            .header("content-type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(b"Ollama is running")))
            .unwrap(),
        (&Method::GET, "/api/version") => {
            json_response(StatusCode::OK, json!({ "version": s.version }))
        }
        (&Method::GET, "/api/tags") => {
            let models: Vec<Value> = s
                .models
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "model": m.name,
                        "modified_at": "2026-11-20T09:12:44.211432583Z",
                        "size": m.size,
                        "digest": m.digest,
                        "details": details(m),
                    })
                })
                .collect();
            json_response(StatusCode::OK, json!({ "models": models }))
        }
        (&Method::GET, "/api/ps") => {
            let models: Vec<Value> = s
                .loaded
                .iter()
                .map(|l| {
                    let m = s.models.iter().find(|m| m.name == l.name).unwrap();
                    json!({
                        "name": m.name,
                        "model": m.name,
                        "size": m.size,
                        "digest": m.digest,
                        "details": details(m),
                        "expires_at": rfc3339(l.expires_at),
                        "size_vram": l.size_vram,
                    })
                })
                .collect();
            json_response(StatusCode::OK, json!({ "models": models }))
        }
        (&Method::POST, "/api/generate") => generate(&mut s, parsed, &body),
        (_, "/api/version" | "/api/tags" | "/api/ps" | "/api/generate") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"404 page not found")))
            .unwrap(),
    }
}

fn details(m: &Model) -> Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": m.family,
        "families": [m.family],
        "parameter_size": m.parameter_size,
        "quantization_level": "Q4_K_M",
    })
}

/// `keep_alive` as Ollama reads it: a number of seconds or a duration string.
fn keep_alive_is_zero(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => matches!(s.as_str(), "0" | "0s" | "0m" | "0h"),
        _ => false,
    }
}

fn generate(s: &mut State, req: Option<Value>, raw: &[u8]) -> Response<Full<Bytes>> {
    let Some(req) = req else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("invalid request body: {}", String::from_utf8_lossy(raw)),
        );
    };
    let Some(name) = req.get("model").and_then(Value::as_str).map(str::to_string) else {
        return error(StatusCode::BAD_REQUEST, "model is required");
    };
    let Some(model) = s.models.iter().find(|m| m.name == name).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("model \"{name}\" not found, try pulling it first"),
        );
    };
    let prompt = req.get("prompt").and_then(Value::as_str).unwrap_or("");
    let unload = keep_alive_is_zero(req.get("keep_alive"));
    let now = rfc3339(SystemTime::now());
    if prompt.is_empty() && unload {
        s.loaded.retain(|l| l.name != name);
        return json_response(
            StatusCode::OK,
            json!({"model": name, "created_at": now, "response": "", "done": true, "done_reason": "unload"}),
        );
    }
    let was_loaded = s.loaded.iter().any(|l| l.name == name);
    if !was_loaded {
        s.loaded.push(Loaded {
            name: name.clone(),
            size_vram: model.size,
            expires_at: SystemTime::now() + Duration::from_secs(300),
        });
    }
    let load_duration: u64 = if was_loaded { 2_310_000 } else { 1_204_000_000 };
    if prompt.is_empty() {
        return json_response(
            StatusCode::OK,
            json!({"model": name, "created_at": now, "response": "", "done": true, "done_reason": "load"}),
        );
    }
    if unload {
        s.loaded.retain(|l| l.name != name);
    }
    let num_predict = req
        .pointer("/options/num_predict")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    let done_reason = if num_predict == 1 { "length" } else { "stop" };
    let last = json!({
        "model": name,
        "created_at": now,
        "response": if req.get("stream") == Some(&Value::Bool(false)) { "Ok" } else { "" },
        "done": true,
        "done_reason": done_reason,
        "context": [128006, 882, 128007, 271, 564, 128009, 128006, 78191, 128007, 271, 11839],
        "total_duration": load_duration + 31_000_000,
        "load_duration": load_duration,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 21_000_000,
        "eval_count": 1,
        "eval_duration": 1_000_000,
    });
    if req.get("stream") == Some(&Value::Bool(false)) {
        return json_response(StatusCode::OK, last);
    }
    // Streaming (the default): one object per line, the token first.
    let first = json!({"model": name, "created_at": now, "response": "Ok", "done": false});
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Full::new(Bytes::from(format!("{first}\n{last}\n"))))
        .unwrap()
}

/// RFC 3339 in UTC with nanoseconds, as Go's time.Time marshals (`2026-11-23T12:00:00.123456789Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}
