//! The Docker Engine client probes and actuators share: one way to reach `[docker] host`,
//! one request timeout, one way to say what went wrong.

use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::Docker;
use tracing::info;

/// The Docker host used when `[docker] host` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Timeout of one Engine API request (connect and response headers).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `[docker] host`, or the standard socket when it is not set (or empty).
pub fn host_or_default(host: Option<&str>) -> String {
    host.filter(|h| !h.is_empty())
        .unwrap_or(DEFAULT_HOST)
        .to_string()
}

/// A Docker client for `host` (`[docker] host`; the standard socket when `None`), as the
/// probes use it. Actuators call this too.
pub fn client_for(host: Option<&str>) -> Result<Docker, String> {
    let host = host.filter(|h| !h.is_empty()).unwrap_or(DEFAULT_HOST);
    connect(host).map_err(|e| format!("Docker engine at {host}: {}", error_text(&e)))
}

pub fn connect(host: &str) -> Result<Docker, DockerError> {
    let d = if host.starts_with('/') {
        Docker::connect_with_unix(
            host,
            REQUEST_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )?
    } else {
        Docker::connect_with_host(host)?
    };
    Ok(d.with_timeout(REQUEST_TIMEOUT))
}

/// A client for one host whose API version is negotiated with the engine on first use and
/// then kept (each request opens its own connection, so a restarted dockerd is reached again).
pub struct DockerConn {
    host: String,
    client: tokio::sync::Mutex<Option<Docker>>,
}

impl DockerConn {
    /// A connection to `host`, made on first use.
    pub fn new(host: &str) -> DockerConn {
        DockerConn {
            host: host.to_string(),
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// The host it talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The negotiated client, or why the engine cannot be reached.
    pub async fn client(&self) -> Result<Docker, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = connect(&self.host)
            .map_err(|e| self.unreachable(&e))?
            .negotiate_version()
            .await
            .map_err(|e| self.unreachable(&e))?;
        info!(
            vigil_event = "docker",
            "connected to the Docker engine at {} (API {})",
            self.host,
            c.client_version()
        );
        *slot = Some(c.clone());
        Ok(c)
    }

    /// What to tell an operator when the engine does not answer.
    pub fn unreachable(&self, e: &DockerError) -> String {
        format!(
            "Docker engine at {} unreachable: {} (is dockerd running? `[docker] host` sets the address)",
            self.host,
            error_text(e)
        )
    }
}

pub fn error_text(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => format!("HTTP {status_code}: {message}"),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                let t = inner.to_string();
                if !s.contains(&t) {
                    s.push_str(": ");
                    s.push_str(&t);
                }
                src = inner.source();
            }
            s
        }
    }
}

pub fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
