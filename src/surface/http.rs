//! The HTTP heartbeat: `GET /api/system/heartbeat`, `GET /healthz`, `GET /metrics`
//! (Prometheus text, [`crate::surface::metrics`]), and `GET /` when the status page is on
//! ([`crate::surface::status_page`]). Nothing else is
//! served and nothing writes. Bounded: request head size, header count, time to read the
//! head, life of a connection, and number of connections. The listener keeps accepting: at
//! the cap, the oldest connections that have not sent a byte yet are closed to make room, so
//! idle connections cannot lock out a client that asks.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::control::Pulse;
use crate::core::health::Overall;
use crate::core::status::Snapshot;
use crate::core::time::{rfc3339_millis, Now};
use crate::surface::{metrics, status_page};
use crate::sys::clock;

/// Largest request head accepted (hyper's minimum buffer).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 32;
/// Time allowed to send a request head, also between keep-alive requests.
pub const HEAD_TIMEOUT_SECS: u64 = 10;
/// Most connections open at once. Beyond it the oldest that have not sent a byte yet are
/// closed; only when every open one has sent something do new ones wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 256;
/// Time to send a first byte while the listener is crowded (at least three quarters of
/// `MAX_CONNECTIONS` open); otherwise `HEAD_TIMEOUT_SECS` applies.
pub const CROWDED_FIRST_BYTE_SECS: u64 = 2;
/// Longest life of one connection: a client that sends requests but never reads the
/// answers cannot hold a connection slot for longer than this.
pub const CONNECTION_LIFETIME_SECS: u64 = 60;
/// Connections the kernel may hold before vigild accepts them (std's 128 overflows in a
/// burst, and a dropped SYN costs the client a second). systemd's socket sets its own.
const LISTEN_BACKLOG: u32 = 1024;
/// Grace for an answer in flight when a connection's life or vigild ends.
const CLOSE_GRACE_SECS: u64 = 5;

/// The exact heartbeat body of the contract.
pub fn heartbeat_body(snap: &Snapshot, now: Now) -> String {
    // Written by hand to keep the key order and shape of the contract exactly.
    format!(
        "{{\"status\":\"{}\",\"uptime\":{},\"version\":\"{}\",\"timestamp\":\"{}\"}}",
        snap.status,
        snap.uptime_secs(now),
        crate::VERSION,
        rfc3339_millis(now.wall),
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

/// Answers one request from the current snapshot, without the status page.
pub fn handle(method: &Method, path: &str, snap: &Snapshot, now: Now) -> Response<Full<Bytes>> {
    answer(method, path, snap, now, false)
}

/// Answers one request; `GET /` is the status page when `page` is on, else 404.
pub fn answer(m: &Method, path: &str, s: &Snapshot, now: Now, page: bool) -> Response<Full<Bytes>> {
    let (method, snap, page) = (m, s, page && path == "/");
    let known = page || matches!(path, "/api/system/heartbeat" | "/healthz" | "/metrics");
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
        _ if page => status_page::response(snap, now),
        "/api/system/heartbeat" => respond(
            StatusCode::OK,
            "application/json",
            heartbeat_body(snap, now),
        ),
        "/metrics" => respond(StatusCode::OK, metrics::CONTENT_TYPE, metrics::render(snap)),
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

pub use super::http_listen::systemd_listeners;

/// Binds the configured addresses, with a backlog of `LISTEN_BACKLOG`.
pub async fn bind(addrs: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    let listen = |a: &SocketAddr| {
        let socket = match a {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(*a)?;
        socket.listen(LISTEN_BACKLOG)
    };
    let mut out = Vec::new();
    for a in addrs {
        out.push(
            listen(a)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))?,
        );
    }
    Ok(out)
}

/// One open connection as the shedding policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    /// Time since it was accepted.
    pub age: Duration,
    /// It has not sent a byte yet: vigild read from it and found nothing. A connection not
    /// read from yet may have bytes waiting, so it is not silent.
    pub silent: bool,
}

/// Whether `open` connections crowd a listener of `cap`: three quarters of it or more.
pub fn crowded(open: usize, cap: usize) -> bool {
    open * 4 >= cap * 3
}

/// The connections to close among `open` ones, given oldest first (a newcomer last): while
/// crowded, each silent one older than `CROWDED_FIRST_BYTE_SECS`; then the oldest silent
/// ones until at most `cap` remain. Only silent ones are chosen, so no request is cut in the
/// middle. Ids come oldest first; the walk stops at the first silent one kept.
pub fn to_shed(open: usize, oldest_first: impl IntoIterator<Item = Peer>, cap: usize) -> Vec<u64> {
    let crowded = crowded(open, cap);
    let deadline = Duration::from_secs(CROWDED_FIRST_BYTE_SECS);
    let mut out = Vec::new();
    for p in oldest_first.into_iter().filter(|p| p.silent) {
        let over = open - out.len() > cap;
        let stale = crowded && p.age >= deadline;
        if !(over || stale) {
            break; // every later one is younger
        }
        out.push(p.id);
    }
    out
}

/// Accepted, not read from yet.
const NEW: u8 = 0;
/// Read from, nothing there yet.
const SILENT: u8 = 1;
/// Sent a byte: never shed.
const SPOKE: u8 = 2;
/// Shed by the tracker: never served.
const SHED: u8 = 3;

/// What a connection's task and the tracker share: its state, and the signal to close.
struct Conn {
    state: AtomicU8,
    shed: CancellationToken,
}

impl Conn {
    fn silent(&self) -> bool {
        self.state.load(Ordering::Acquire) == SILENT
    }

    /// A read found nothing to read; true the first time.
    fn waited(&self) -> bool {
        (self.state)
            .compare_exchange(NEW, SILENT, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Marks the first byte; false if the connection was shed first.
    fn spoke(&self) -> bool {
        let first = |s| (s == NEW || s == SILENT).then_some(SPOKE);
        match (self.state).fetch_update(Ordering::AcqRel, Ordering::Acquire, first) {
            Ok(_) => true,
            Err(s) => s == SPOKE,
        }
    }

    /// Sheds a connection that is still silent; false if it has spoken.
    fn try_shed(&self) -> bool {
        let shed = self
            .state
            .compare_exchange(SILENT, SHED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if shed {
            self.shed.cancel();
        }
        shed
    }
}

struct Open {
    since: Instant,
    conn: Arc<Conn>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    /// Oldest first: ids grow with each accept.
    open: BTreeMap<u64, Open>,
    /// Shedding has been logged and the listener has not calmed down since.
    shedding: bool,
}

/// The open connections of all listeners, and the shedding policy applied to them.
struct Tracker {
    cap: usize,
    registry: Mutex<Registry>,
    freed: Notify,
}

/// A connection's place in the tracker, given back on drop (which wakes a waiting accept).
struct Slot {
    tracker: Arc<Tracker>,
    id: u64,
    conn: Arc<Conn>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut r = self.tracker.lock();
        r.open.remove(&self.id);
        if r.open.len() * 2 < self.tracker.cap {
            r.shedding = false;
        }
        drop(r);
        self.tracker.freed.notify_waiters();
    }
}

impl Tracker {
    fn new(cap: usize) -> Arc<Tracker> {
        Arc::new(Tracker {
            cap,
            registry: Mutex::new(Registry::default()),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Room for one more: below the cap, or a silent connection to shed.
    fn has_room(&self) -> bool {
        let r = self.lock();
        r.open.len() < self.cap || r.open.values().any(|o| o.conn.silent())
    }

    /// Waits until one more connection can be taken; until then new ones stay queued.
    async fn room(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.has_room() {
                return;
            }
            freed.await;
        }
    }

    /// Registers a new connection and sheds what the policy says to make it fit. Only when a
    /// silent one spoke between `room` and here is the cap passed, by one, until one closes.
    fn admit(self: &Arc<Self>) -> Slot {
        let conn = Arc::new(Conn {
            state: AtomicU8::new(NEW),
            shed: CancellationToken::new(),
        });
        let mut r = self.lock();
        let id = r.next;
        r.next += 1;
        let since = Instant::now();
        let open = Open {
            since,
            conn: conn.clone(),
        };
        r.open.insert(id, open);
        self.shed(&mut r, since);
        drop(r);
        Slot {
            tracker: self.clone(),
            id,
            conn,
        }
    }

    /// Applies the policy now (a silent connection's first-byte deadline while crowded).
    fn sweep(&self) {
        let mut r = self.lock();
        self.shed(&mut r, Instant::now());
    }

    fn shed(&self, r: &mut Registry, now: Instant) {
        let mut closed = 0;
        loop {
            let view = r.open.iter().map(|(&id, o)| Peer {
                id,
                age: now.saturating_duration_since(o.since),
                silent: o.conn.silent(),
            });
            let mut raced = false;
            for id in to_shed(r.open.len(), view, self.cap) {
                if r.open.get(&id).is_some_and(|o| o.conn.try_shed()) {
                    r.open.remove(&id);
                    closed += 1;
                } else {
                    raced = true; // it spoke meanwhile: look again
                }
            }
            if !raced {
                break;
            }
        }
        if closed > 0 && !r.shedding {
            r.shedding = true;
            warn!(
                "heartbeat listener crowded ({} connections open, at most {}): closing idle ones",
                r.open.len(),
                self.cap
            );
        }
    }
}

/// The stream as hyper reads it: a read that waits marks the connection silent, the first
/// byte read marks it spoken.
struct Watched<S> {
    stream: S,
    conn: Arc<Conn>,
    tracker: Arc<Tracker>,
    spoke: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if read.is_pending() && !this.spoke && this.conn.waited() {
            this.tracker.freed.notify_waiters(); // one more that could make room
        }
        ready!(read)?;
        if !this.spoke && buf.filled().len() > before {
            if this.conn.spoke() {
                this.spoke = true;
            } else {
                buf.set_filled(before); // shed just before: read as the end of the stream
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Serves until `shutdown` fires; `page`: whether `GET /` is the status page.
pub async fn serve(
    listeners: Vec<TcpListener>,
    snap: watch::Receiver<Arc<Snapshot>>,
    pulse: Arc<Pulse>,
    page: bool,
    shutdown: CancellationToken,
) {
    let tracker = Tracker::new(MAX_CONNECTIONS);
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(
            listener,
            snap.clone(),
            pulse.clone(),
            (tracker.clone(), page),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(
    listener: TcpListener,
    snap: watch::Receiver<Arc<Snapshot>>,
    pulse: Arc<Pulse>,
    (tracker, page): (Arc<Tracker>, bool),
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        tokio::select! {
            _ = tracker.room() => {}
            _ = shutdown.cancelled() => return,
        }
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
        let slot = tracker.admit();
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            slot,
            snap.clone(),
            (pulse.clone(), page),
            shutdown.clone(),
        ));
        // One accept per turn of the scheduler: under a flood of connections, the
        // connections already open (a request waiting on one) run between two accepts
        // instead of after a burst of them.
        tokio::task::yield_now().await;
    }
}

/// Serves one connection over any byte stream exactly as the listener serves an accepted
/// one (the same `connection`: limits, timeouts, answers), with a tracker of its own; the
/// fuzz target `http_head` feeds it an in-memory stream.
pub async fn serve_io<S>(
    stream: S,
    snap: watch::Receiver<Arc<Snapshot>>,
    pulse: Arc<Pulse>,
    page: bool,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slot = Tracker::new(1).admit();
    let peer = SocketAddr::from(([0, 0, 0, 0], 0));
    connection(stream, peer, slot, snap, (pulse, page), shutdown).await;
}

/// Serves one connection until it ends, is shed while silent, outlives its life, or vigild stops.
async fn connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    slot: Slot,
    snap: watch::Receiver<Arc<Snapshot>>,
    (pulse, page): (Arc<Pulse>, bool),
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let now = clock::now();
        let mut s = snap.borrow().clone();
        if pulse.stalled(now.mono) {
            // The loop that evaluates has stopped: what the snapshot says is stale.
            let mut stale = Snapshot::clone(&s);
            stale.status = Overall::Critical;
            s = Arc::new(stale);
        }
        let r = answer(req.method(), req.uri().path(), &s, now, page);
        async move { Ok::<_, Infallible>(r) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(HEAD_TIMEOUT_SECS))
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let io = Watched {
        stream,
        conn: slot.conn.clone(),
        tracker: slot.tracker.clone(),
        spoke: false,
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let lifetime = tokio::time::sleep(Duration::from_secs(CONNECTION_LIFETIME_SECS));
    let first_byte = tokio::time::sleep(Duration::from_secs(CROWDED_FIRST_BYTE_SECS));
    tokio::pin!(lifetime, first_byte);
    let mut swept = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r { debug!("heartbeat connection from {peer}: {e}") }
                return;
            }
            // Nothing was read from it, so nothing is cut: just close.
            _ = slot.conn.shed.cancelled() => {
                debug!("heartbeat connection from {peer}: closed while idle to make room");
                return;
            }
            _ = &mut first_byte, if !swept => {
                swept = true;
                if slot.conn.silent() {
                    slot.tracker.sweep();
                }
            }
            _ = &mut lifetime => {
                debug!("heartbeat connection from {peer}: closing after {CONNECTION_LIFETIME_SECS}s");
                break;
            }
            _ = shutdown.cancelled() => {
                if slot.conn.try_shed() {
                    return;
                }
                break;
            }
        }
    }
    // Finish the answer in flight, then close; a peer that does not read is dropped.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(CLOSE_GRACE_SECS), conn).await;
}

#[cfg(test)]
mod tests;
