//! Sending one push request: the bearer token from systemd credentials (read for each
//! request, never from vigil.toml), the push's timeout, the bytes it took, and its result
//! in the push's [`PushStatus`]. Failures are logged when they start and when they end,
//! not at every retry.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::PushTarget;
use crate::core::status::PushStatus;
use crate::surface::push_format::{
    self, PushRequest, HEALTHCHECKS_BODY_LIMIT, HEALTHCHECKS_BODY_LIMIT_MAX,
};
use crate::sys::{clock, http, identity};

/// How a request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Ok,
    Failed(String),
}

/// Sends a push's requests and keeps its status.
pub struct Sender {
    name: &'static str,
    target: PushTarget,
    credentials: Option<PathBuf>,
    client: Result<reqwest::Client, String>,
    status: Arc<watch::Sender<Vec<PushStatus>>>,
    index: usize,
    /// healthchecks' body limit, as its last answer said (`Ping-Body-Limit`).
    pub body_limit: usize,
    /// Round trip of the last push taken, in ms (Uptime Kuma's `ping`).
    pub last_ping_ms: Option<u64>,
    failing: bool,
}

/// The bytes of a request as HTTP/1.1 sends it: request line, the headers reqwest writes
/// (host, user agent, accept, content type and length, authorization) and the body.
pub fn request_bytes(req: &PushRequest, token: Option<&str>) -> u64 {
    let Ok(u) = reqwest::Url::parse(&req.url) else {
        return 0;
    };
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let host = match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_string(),
    };
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nuser-agent: vigil/{}\r\naccept: */*\r\nhost: {host}\r\n",
        req.method,
        crate::VERSION
    );
    if let Some(t) = token {
        head.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    let body = req.body.as_deref().unwrap_or("");
    if req.body.is_some() {
        head.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    (head.len() + body.len()) as u64
}

impl Sender {
    pub fn new(
        name: &'static str,
        target: PushTarget,
        credentials: Option<PathBuf>,
        status: Arc<watch::Sender<Vec<PushStatus>>>,
        index: usize,
    ) -> Sender {
        // The client every HTTP user of vigild shares the set-up of (TLS, no proxy from the
        // environment, no redirects). It keeps no connection between pushes: one every 30 s
        // costs a handshake, but never meets a connection a NAT dropped meanwhile.
        let client = http::client(target.timeout);
        Sender {
            name,
            target,
            credentials,
            client,
            status,
            index,
            body_limit: HEALTHCHECKS_BODY_LIMIT,
            last_ping_ms: None,
            failing: false,
        }
    }

    fn update(&self, f: impl FnOnce(&mut PushStatus)) {
        self.status.send_modify(|v| {
            if let Some(s) = v.get_mut(self.index) {
                f(s)
            }
        });
    }

    /// What waits in the queue, and how many were dropped.
    pub fn set_counts(&self, queued: u64, dropped: u64) {
        self.update(|s| {
            s.queued = queued;
            s.dropped = dropped;
        });
    }

    /// Sends `req` and records how it went.
    pub async fn send(&mut self, req: PushRequest) -> Sent {
        let token = match &self.target.token_credential {
            Some(name) => match identity::credential(self.credentials.as_deref(), name) {
                Ok(t) => Some(t),
                Err(e) => return self.record(Sent::Failed(e), 0, None, false),
            },
            None => None,
        };
        let bytes = request_bytes(&req, token.as_deref());
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(e) => return self.record(Sent::Failed(e.clone()), 0, None, false),
        };
        let method = if req.method == "GET" {
            reqwest::Method::GET
        } else {
            reqwest::Method::POST
        };
        let mut rb = client
            .request(method, &req.url)
            .timeout(self.target.timeout);
        if let Some(t) = &token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = req.body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let start = Instant::now();
        let mut answered = false;
        let result = match rb.send().await {
            Ok(resp) => {
                answered = true;
                if let Some(limit) = resp
                    .headers()
                    .get("ping-body-limit")
                    .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
                {
                    self.body_limit = limit.min(HEALTHCHECKS_BODY_LIMIT_MAX);
                }
                let code = resp.status();
                // Read the (small) answer so the connection can be used again.
                let _ = tokio::time::timeout(self.target.timeout, resp.bytes()).await;
                if code.is_success() {
                    Sent::Ok
                } else {
                    Sent::Failed(format!("HTTP {}", code.as_u16()))
                }
            }
            Err(e) if e.is_timeout() => Sent::Failed(format!(
                "no answer within {}",
                http::human(self.target.timeout)
            )),
            Err(e) => Sent::Failed(http::chain(&e)),
        };
        let ms = start.elapsed().as_millis() as u64;
        self.record(result, bytes, Some(ms), answered)
    }

    /// Records a request of `bytes`; only those `answered` count as sent.
    fn record(&mut self, result: Sent, bytes: u64, ms: Option<u64>, answered: bool) -> Sent {
        let at = clock::now_micros();
        let ok = result == Sent::Ok;
        let line = match &result {
            Sent::Ok => "ok".to_string(),
            Sent::Failed(e) => format!("failed: {e}"),
        };
        if ok {
            self.last_ping_ms = ms;
        }
        self.update(|s| {
            s.last_at = Some(at);
            s.last_ok = ok;
            s.last_result = line.clone();
            s.last_bytes = bytes;
            if answered {
                s.bytes_total += bytes;
            }
            if ok {
                s.ok_total += 1;
                s.last_ok_at = Some(at);
            } else {
                s.failed_total += 1;
            }
        });
        match (&result, self.failing) {
            (Sent::Failed(e), false) => {
                self.failing = true;
                warn!(
                    vigil_event = "push",
                    "{} push to {} failing: {e}; retrying with back-off, state kept in the queue",
                    self.name,
                    push_format::shown(&self.target.url)
                );
            }
            (Sent::Ok, true) => {
                self.failing = false;
                info!(
                    vigil_event = "push",
                    "{} push to {} answering again",
                    self.name,
                    push_format::shown(&self.target.url)
                );
            }
            _ => {}
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_count_the_head_and_body() {
        let req = PushRequest {
            method: "POST",
            url: "http://127.0.0.1:8080/hb".into(),
            body: Some("{}".into()),
        };
        let n = request_bytes(&req, Some("tok"));
        let head = format!(
            "POST /hb HTTP/1.1\r\nuser-agent: vigil/{}\r\naccept: */*\r\nhost: 127.0.0.1:8080\r\nauthorization: Bearer tok\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n",
            crate::VERSION
        );
        assert_eq!(n, head.len() as u64 + 2);
    }
}
