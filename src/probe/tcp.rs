//! `tcp`: a connect to `HOST:PORT`, closed again at once.
//!
//! The name is resolved and the connection made within the check's `timeout`; refused,
//! unresolvable or too slow is `crit`.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::api::Probe;
use crate::core::health::Status;
use crate::core::metric::{Metrics, Reading};
use crate::sys::http::{budget, human, ms_since};

/// Connects to one address.
pub struct TcpProbe {
    address: String,
    timeout: Duration,
}

impl TcpProbe {
    /// A probe connecting to `address` (`HOST:PORT`) within `timeout`.
    pub fn new(address: String, timeout: Duration) -> Self {
        TcpProbe { address, timeout }
    }
}

fn crit(detail: String) -> Reading {
    Reading::Value {
        status: Some(Status::Crit),
        detail,
        metrics: Metrics::new(),
    }
}

/// What a failed connect means, for people.
fn describe(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused (nothing listens there)".into(),
        HostUnreachable | NetworkUnreachable => format!("unreachable ({e})"),
        _ => e.to_string(),
    }
}

#[async_trait]
impl Probe for TcpProbe {
    async fn read(&mut self) -> Reading {
        let start = Instant::now();
        let deadline = start + budget(self.timeout);
        let addrs: Vec<std::net::SocketAddr> =
            match tokio::time::timeout_at(deadline.into(), tokio::net::lookup_host(&self.address))
                .await
            {
                Err(_) => {
                    return crit(format!(
                        "cannot resolve {} within {}",
                        self.address,
                        human(self.timeout)
                    ))
                }
                Ok(Err(e)) => return crit(format!("cannot resolve {}: {e}", self.address)),
                Ok(Ok(a)) => a.collect(),
            };
        if addrs.is_empty() {
            return crit(format!("{} resolves to no address", self.address));
        }
        // Every address in turn, as a client would, until one connects.
        let mut last = String::new();
        for addr in &addrs {
            match tokio::time::timeout_at(deadline.into(), tokio::net::TcpStream::connect(addr))
                .await
            {
                Err(_) => {
                    return crit(format!(
                        "connect to {} ({addr}) did not complete within {}",
                        self.address,
                        human(self.timeout)
                    ))
                }
                Ok(Ok(stream)) => {
                    let ms = ms_since(start);
                    drop(stream);
                    return Reading::metrics(
                        format!("connected to {} ({addr}) in {ms:.1} ms", self.address),
                        Metrics::from([("latency_ms".to_string(), ms)]),
                    );
                }
                Ok(Err(e)) => last = format!("{addr}: {}", describe(&e)),
            }
        }
        crit(format!("cannot connect to {}: {last}", self.address))
    }
}
