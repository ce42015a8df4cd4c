//! One request: decided by the allow-list, then forwarded to dockerd over a connection of
//! its own with both bodies streamed, or answered 403 (502 when dockerd cannot be reached).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST,
    TRANSFER_ENCODING,
};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use super::allow::{decide, Refusal};
use super::refusals::RefusalLog;

/// A response body: dockerd's, streamed, or one of the proxy's own.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Time to connect to dockerd's socket and hand it the request head.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(10);
/// The most of a target that goes into a log line.
const LOGGED_TARGET_LEN: usize = 200;

/// Headers that belong to one connection, never forwarded (RFC 9110 7.6.1), and `Expect`
/// (the proxy answers `100-continue` itself).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// The forwarder's state: where dockerd is and what was logged.
pub struct Forwarder {
    upstream: PathBuf,
    log: Mutex<RefusalLog>,
    journal: bool,
}

impl Forwarder {
    /// A forwarder to the Docker socket at `upstream`.
    pub fn new(upstream: PathBuf) -> Forwarder {
        Forwarder {
            upstream,
            log: Mutex::new(RefusalLog::new(Instant::now())),
            // Under systemd, stderr goes to the journal, which reads a `<N>` priority prefix.
            journal: std::env::var_os("JOURNAL_STREAM").is_some(),
        }
    }

    /// The socket requests go to.
    pub fn upstream(&self) -> &std::path::Path {
        &self.upstream
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        // The raw request target: origin-form as hyper keeps it; anything else in full, so
        // that the allow-list sees (and refuses) it.
        let target = match (req.uri().scheme(), req.uri().authority()) {
            (None, None) => req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().to_string(), |p| p.as_str().to_string()),
            _ => req.uri().to_string(),
        };
        let method = req.method().as_str().to_string();
        match decide(&method, &target) {
            Ok(_) => Ok(self.forward(req, &target).await),
            Err(why) => {
                self.log_refusal(&method, &target, why);
                Ok(refused(&method, &target))
            }
        }
    }

    async fn forward(&self, req: Request<Incoming>, target: &str) -> Response<ProxyBody> {
        let uri: Uri = match target.parse() {
            Ok(u) => u,
            Err(_) => return refused(req.method().as_str(), target),
        };
        let (mut parts, body) = req.into_parts();
        // A chunked body is sent on as hyper frames it; a Content-Length beside it (a
        // smuggling attempt) must not go with it.
        if parts.headers.contains_key(TRANSFER_ENCODING) {
            parts.headers.remove(CONTENT_LENGTH);
        }
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .entry(HOST)
            .or_insert(HeaderValue::from_static("docker"));
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        let up = Request::from_parts(parts, body);
        match self.send(up).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                self.line(3, &format!("cannot reach the Docker engine: {e}"));
                message(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "vigil-docker-proxy: cannot reach the Docker engine at {}: {e}",
                        self.upstream.display()
                    ),
                )
            }
        }
    }

    /// Sends `req` to dockerd over a new connection, driven by a task of its own until the
    /// response body is read (or dropped).
    async fn send(&self, req: Request<Incoming>) -> Result<Response<Incoming>, String> {
        let connect = async {
            let stream = tokio::net::UnixStream::connect(&self.upstream)
                .await
                .map_err(|e| e.to_string())?;
            hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())
        };
        let (mut sender, conn) = tokio::time::timeout(UPSTREAM_CONNECT, connect)
            .await
            .map_err(|_| format!("no connection within {UPSTREAM_CONNECT:?}"))??;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender.send_request(req).await.map_err(|e| e.to_string())
    }

    fn log_refusal(&self, method: &str, target: &str, why: Refusal) {
        let path = target.split('?').next().unwrap_or(target);
        let key = format!("{} {}", printable(method), printable(path));
        let admitted = match self.log.lock() {
            Ok(mut log) => log.admit(&key, Instant::now()),
            Err(_) => None,
        };
        if let Some(left_out) = admitted {
            let more = match left_out {
                0 => String::new(),
                n => format!(" ({n} more refusals not logged)"),
            };
            self.line(
                4,
                &format!(
                    "refused {} {}: {}{more}",
                    printable(method),
                    printable(target),
                    why.describe()
                ),
            );
        }
    }

    /// One line on stderr, with its journal priority when stderr is the journal.
    pub fn line(&self, priority: u8, text: &str) {
        if self.journal {
            eprintln!("<{priority}>{text}");
        } else {
            eprintln!("vigil-docker-proxy: {text}");
        }
    }
}

/// The 403 a refused request gets; Docker clients show its `message`.
pub fn refused(method: &str, target: &str) -> Response<ProxyBody> {
    let path = target.split('?').next().unwrap_or(target);
    message(
        StatusCode::FORBIDDEN,
        &format!(
            "vigil-docker-proxy: {} {} is not allowed",
            printable(method),
            printable(path)
        ),
    )
}

fn message(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "message": text }).to_string();
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Removes the hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
}

/// `s` as it may go into a log line or message: visible ASCII, shortened.
fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(LOGGED_TARGET_LEN)
        .flat_map(|c| c.escape_default())
        .collect();
    if s.chars().count() > LOGGED_TARGET_LEN {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "Upgrade, X-Secret"),
            ("upgrade", "tcp"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("expect", "100-continue"),
            ("content-type", "application/x-tar"),
            ("content-length", "10"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        left.sort();
        assert_eq!(left, ["content-length", "content-type"]);
    }

    #[test]
    fn refusals_name_method_and_path_as_json() {
        let r = refused("POST", "/containers/x/exec?a=1");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(printable("a\"b\n"), "a\\\"b\\n");
        assert!(printable(&"x".repeat(500)).ends_with('…'));
    }
}
