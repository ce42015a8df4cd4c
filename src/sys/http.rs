//! The HTTP client plumbing probes and actuators share: one way to build a client, one
//! deadline per request, one way to say what went wrong.
//!
//! Clients keep no pool, ignore proxy settings from the environment (a health check talks
//! to the server itself) and follow no redirects.

use std::time::{Duration, Instant};

/// How much of a failing answer's body goes into a detail.
pub const BODY_EXCERPT: usize = 200;

/// The share of the check's `timeout` a probe may spend: what is left is for handing the
/// reading over before the daemon's bound on the whole reading fires.
pub fn budget(timeout: Duration) -> Duration {
    let margin = (timeout / 10).clamp(Duration::from_millis(20), Duration::from_millis(250));
    timeout.saturating_sub(margin).max(timeout / 2)
}

/// `300ms`, `3s`, `1m 30s`: the check's timeout as the operator wrote it.
pub fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Milliseconds since `start`, with microsecond resolution.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_micros() as f64 / 1000.0
}

/// Makes ring the process's TLS provider (for clients built without [`tls_config`]).
/// Idempotent; vigild calls it at start.
pub fn install_tls_provider() {
    // Only fails when a provider is installed already, which is what is wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS set-up every client shares: ring, and the system's certificate store read and
/// parsed once for the process, not once per client (each copy of the roots is ~150 KiB of
/// heap, and every HTTP check has its own client).
pub fn tls_config() -> Result<rustls::ClientConfig, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    static SHARED: std::sync::OnceLock<Result<rustls::ClientConfig, String>> =
        std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            install_tls_provider();
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("cannot set up TLS: {e}"))?
                .with_platform_verifier()
                .map_err(|e| format!("cannot read the system's certificate store: {e}"))?
                .with_no_client_auth();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(cfg)
        })
        .clone()
}

/// An HTTP client for probes: no pool, no proxy, no redirects, bounded by `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up an HTTP client: {}", chain(&e)))
}

/// A probe's HTTP client, built on first use on the blocking pool: building one reads the
/// system's certificate store, which takes tens of milliseconds that must not block the
/// runtime.
pub struct LazyClient {
    timeout: Duration,
    built: Option<Result<reqwest::Client, String>>,
    building: crate::sys::blocking::Blocking<Result<reqwest::Client, String>>,
}

impl LazyClient {
    pub fn new(timeout: Duration) -> Self {
        LazyClient {
            timeout,
            built: None,
            building: Default::default(),
        }
    }

    /// The client, or why there is none.
    pub async fn get(&mut self) -> Result<reqwest::Client, String> {
        if let Some(c) = &self.built {
            return c.clone();
        }
        let timeout = self.timeout;
        let c = self
            .building
            .run(move || client(timeout))
            .await
            .and_then(|c| c);
        self.built = Some(c.clone());
        c
    }
}

/// An error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// What went wrong with a request, for people: `connection refused`, … .
pub fn describe(e: &reqwest::Error) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return "connection refused (nothing listens there)".into(),
                ConnectionReset => return "the connection was reset".into(),
                TimedOut => return "timed out".into(),
                _ => {}
            }
        }
        cur = c.source();
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    // The innermost cause says what happened ("connection closed before message
    // completed", "invalid peer certificate: UnknownIssuer"); the outer ones repeat the URL.
    let mut what = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        what = c.to_string();
        cur = c.source();
    }
    if e.is_connect() {
        format!("cannot connect: {what}")
    } else {
        what
    }
}

/// Why a request under a deadline failed.
pub enum Failure {
    /// The deadline passed.
    Timeout,
    /// The request failed, described.
    Error(String),
}

/// Runs `fut` (a request and its body) until `deadline`.
pub async fn until<T>(
    deadline: Instant,
    fut: impl std::future::Future<Output = Result<T, reqwest::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout_at(deadline.into(), fut).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(e)) if e.is_timeout() => Err(Failure::Timeout),
        Ok(Err(e)) => Err(Failure::Error(describe(&e))),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Reads at most `cap` bytes of a body (the rest is dropped unread).
pub async fn body_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= cap {
            break;
        }
    }
    Ok(out)
}

/// A body as one short line.
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > max {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_leave_room_for_the_daemon() {
        assert_eq!(budget(Duration::from_secs(5)), Duration::from_millis(4750));
        assert_eq!(budget(Duration::from_secs(1)), Duration::from_millis(900));
        assert_eq!(
            budget(Duration::from_millis(300)),
            Duration::from_millis(270)
        );
        assert_eq!(budget(Duration::from_millis(20)), Duration::from_millis(10));
    }

    #[test]
    fn a_client_builds_with_its_tls_provider() {
        // reqwest's `rustls` feature brings its own crypto provider: building must not panic.
        client(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b"  a\n b\r\n\tc ", 10), "a b c");
        assert_eq!(excerpt("é".repeat(30).as_bytes(), 3), "ééé…");
    }
}
