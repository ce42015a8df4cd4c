//! The HTTP heartbeat: `GET /api/system/heartbeat`, `GET /healthz`. Nothing else is
//! served and nothing writes. Bounded: request head size, header count, time to read the
//! head, and number of connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::core::health::Overall;
use crate::core::status::Snapshot;
use crate::core::time::{rfc3339_millis, Micros};
use crate::sys::clock::now_micros;

/// Largest request head accepted (hyper's minimum buffer).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 32;
/// Time allowed to send a request head, also between keep-alive requests.
pub const HEAD_TIMEOUT_SECS: u64 = 10;
/// Most connections served at once; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 256;
/// Longest life of one connection: a client that sends requests but never reads the
/// answers cannot hold a connection slot for longer than this.
pub const CONNECTION_LIFETIME_SECS: u64 = 60;
/// Grace for an answer in flight when a connection's life or vigild ends.
const CLOSE_GRACE_SECS: u64 = 5;

/// The exact heartbeat body of the contract.
pub fn heartbeat_body(snap: &Snapshot, now: Micros) -> String {
    // Written by hand to keep the key order and shape of the contract exactly.
    format!(
        "{{\"status\":\"{}\",\"uptime\":{},\"version\":\"{}\",\"timestamp\":\"{}\"}}",
        snap.status,
        now.saturating_sub(snap.started_at) / 1_000_000,
        crate::VERSION,
        rfc3339_millis(now),
    )
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Answers one request from the current snapshot.
pub fn handle(method: &Method, path: &str, snap: &Snapshot, now: Micros) -> Response<Full<Bytes>> {
    let known = matches!(path, "/api/system/heartbeat" | "/healthz");
    if !known {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/api/system/heartbeat" => respond(
            StatusCode::OK,
            "application/json",
            heartbeat_body(snap, now),
        ),
        _ => {
            if snap.status == Overall::Critical {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "critical\n",
                )
            } else {
                respond(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    format!("{}\n", snap.status),
                )
            }
        }
    }
}

/// Listeners handed over by systemd (`LISTEN_FDS`), if any.
pub fn systemd_listeners() -> std::io::Result<Vec<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    let fds: Vec<_> = sd_notify::listen_fds()?.collect();
    let mut out = Vec::new();
    for fd in fds {
        // SAFETY: systemd passed us this descriptor and nothing else owns it.
        let l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        l.set_nonblocking(true)?;
        out.push(l);
    }
    Ok(out)
}

/// Binds the configured addresses.
pub async fn bind(addrs: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(
            TcpListener::bind(a)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))?,
        );
    }
    Ok(out)
}

/// Serves until `shutdown` fires.
pub async fn serve(
    listeners: Vec<TcpListener>,
    snap: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(
            listener,
            snap.clone(),
            permits.clone(),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(
    listener: TcpListener,
    snap: watch::Receiver<Arc<Snapshot>>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closes"),
            _ = shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => { backoff = Duration::from_millis(10); v }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!("heartbeat accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let snap = snap.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let s = snap.borrow().clone();
                let r = handle(req.method(), req.uri().path(), &s, now_micros());
                async move { Ok::<_, Infallible>(r) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(HEAD_TIMEOUT_SECS))
                .max_buf_size(MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let lifetime = tokio::time::sleep(Duration::from_secs(CONNECTION_LIFETIME_SECS));
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r { debug!("heartbeat connection from {peer}: {e}") }
                    return;
                }
                _ = lifetime => debug!("heartbeat connection from {peer}: closing after {CONNECTION_LIFETIME_SECS}s"),
                _ = shutdown.cancelled() => {}
            }
            // Finish the answer in flight, then close; a peer that does not read is dropped.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(CLOSE_GRACE_SECS), conn).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_has_exactly_the_contract_shape() {
        let mut s = Snapshot::starting(1_000_000);
        s.status = Overall::Ok;
        let body = heartbeat_body(&s, 1_771_322_400_000_000);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 4);
        assert!(
            body.starts_with("{\"status\":\"ok\",\"uptime\":1771322399,\"version\":\""),
            "{body}"
        );
        assert!(
            body.ends_with(",\"timestamp\":\"2026-02-17T10:00:00.000Z\"}"),
            "{body}"
        );
    }

    #[test]
    fn routes_and_methods() {
        let mut s = Snapshot::starting(0);
        s.status = Overall::Degraded;
        assert_eq!(
            handle(&Method::GET, "/healthz", &s, 0).status(),
            StatusCode::OK
        );
        s.status = Overall::Critical;
        assert_eq!(
            handle(&Method::GET, "/healthz", &s, 0).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            handle(&Method::GET, "/", &s, 0).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            handle(&Method::POST, "/nope", &s, 0).status(),
            StatusCode::NOT_FOUND
        );
        let r = handle(&Method::POST, "/api/system/heartbeat", &s, 0);
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        assert_eq!(
            handle(&Method::HEAD, "/api/system/heartbeat", &s, 0).status(),
            StatusCode::OK
        );
    }
}
