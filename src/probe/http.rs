//! `http`: a GET with an expected status.
//!
//! Every request runs under a deadline a little shorter than the check's `timeout`, so a
//! server that accepts the connection and never answers turns the check `crit` with that
//! reason before the daemon's own bound on the whole reading (which would only say
//! `unknown`) is reached. Connections are not pooled: each reading opens a fresh one, so a
//! keep-alive connection the server closed meanwhile never reads as a failure, and each
//! reading tests the server's accept path too. Proxy settings from the environment are
//! ignored: a health check talks to the server itself. Redirects are not followed: the
//! status compared with `expect_status` is the one the URL itself answers.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::api::Probe;
use crate::core::health::Status;
use crate::core::metric::{Metrics, Reading};
use crate::sys::http::{
    body_capped, budget, excerpt, human, ms_since, until, Failure, LazyClient, BODY_EXCERPT,
};

/// GETs a URL and compares the status with the expected ones.
pub struct HttpProbe {
    url: String,
    expect: Vec<u16>,
    timeout: Duration,
    client: LazyClient,
}

impl HttpProbe {
    /// A probe of `url` expecting one of `expect_status` (200 when empty) within `timeout`.
    pub fn new(url: String, expect_status: Vec<u16>, timeout: Duration) -> Self {
        let expect = if expect_status.is_empty() {
            vec![200]
        } else {
            expect_status
        };
        HttpProbe {
            url,
            expect,
            timeout,
            client: LazyClient::new(timeout),
        }
    }

    fn expected(&self) -> String {
        let codes: Vec<String> = self.expect.iter().map(|c| c.to_string()).collect();
        match codes.len() {
            1 => codes[0].clone(),
            _ => format!("one of {}", codes.join(", ")),
        }
    }
}

fn crit(detail: String, metrics: Metrics) -> Reading {
    Reading::Value {
        status: Some(Status::Crit),
        detail,
        metrics,
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn read(&mut self) -> Reading {
        let deadline = Instant::now() + budget(self.timeout);
        let client = match self.client.get().await {
            Ok(c) => c,
            Err(e) => return Reading::Unknown(e),
        };
        let start = Instant::now();
        let resp = match until(deadline, client.get(&self.url).send()).await {
            Ok(r) => r,
            Err(Failure::Timeout) => {
                return crit(
                    format!(
                        "GET {} gave no answer within {}",
                        self.url,
                        human(self.timeout)
                    ),
                    Metrics::new(),
                )
            }
            Err(Failure::Error(why)) => {
                return crit(format!("GET {} failed: {why}", self.url), Metrics::new())
            }
        };
        let latency = ms_since(start);
        let code = resp.status().as_u16();
        let metrics = Metrics::from([
            ("status_code".to_string(), code as f64),
            ("latency_ms".to_string(), latency),
        ]);
        if self.expect.contains(&code) {
            return Reading::metrics(
                format!("GET {} answered {code} in {latency:.1} ms", self.url),
                metrics,
            );
        }
        // Say what the server said, as far as it says it in time.
        let body = tokio::time::timeout_at(deadline.into(), body_capped(resp, BODY_EXCERPT * 4))
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|b| excerpt(&b, BODY_EXCERPT))
            .unwrap_or_default();
        let mut detail = format!(
            "GET {} answered {code}, expected {}",
            self.url,
            self.expected()
        );
        if !body.is_empty() {
            detail.push_str(&format!(": {body}"));
        }
        crit(detail, metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_codes_read_well() {
        let p = HttpProbe::new("http://x".into(), vec![], Duration::from_secs(1));
        assert_eq!(p.expected(), "200");
        let p = HttpProbe::new("http://x".into(), vec![200, 204], Duration::from_secs(1));
        assert_eq!(p.expected(), "one of 200, 204");
    }
}
