//! `ollama`: liveness and readiness of an Ollama server over its HTTP API.
//!
//! One reading, all of it within the check's `timeout`:
//! 1. `GET /api/version` — liveness. A hung Ollama accepts TCP connections and never
//!    answers; that, a refused connection or an error status is `crit`.
//! 2. `GET /api/ps` — the models loaded, their sizes and `size_vram`.
//! 3. With `probe_model`: `POST /api/generate` asking that model for one token — readiness.
//!    Ollama can answer `/api/version` while generation hangs (a wedged runner, a GPU gone
//!    bad); a generation that does not finish in time, or fails, is `crit`.
//!
//! Field names follow Ollama's API documentation (docs/api.md in the ollama repository).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use super::api::Probe;
use crate::core::health::Status;
use crate::core::metric::{human_bytes, Metrics, Reading};
use crate::sys::http::{self as h, Failure};

/// Largest answer read from Ollama; its answers to these calls are a few KiB.
const BODY_CAP: usize = 1 << 20;

/// `GET /api/version`.
#[derive(Debug, Deserialize)]
struct Version {
    version: String,
}

/// `GET /api/ps`.
#[derive(Debug, Deserialize)]
struct Ps {
    #[serde(default)]
    models: Option<Vec<Running>>,
}

/// One entry of `/api/ps`.
#[derive(Debug, Deserialize)]
struct Running {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    size_vram: u64,
}

/// `POST /api/generate` with `"stream": false`.
#[derive(Debug, Deserialize)]
struct Generated {
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
}

/// Ollama's error answers: `{"error": "…"}`.
#[derive(Debug, Deserialize)]
struct ApiError {
    error: String,
}

/// Watches one Ollama server.
pub struct OllamaProbe {
    url: String,
    probe_model: Option<String>,
    timeout: Duration,
    client: h::LazyClient,
}

impl OllamaProbe {
    /// A probe of the Ollama at `url` (e.g. `http://127.0.0.1:11434`); with `probe_model`,
    /// also a one-token generation with that model. Everything within `timeout`.
    pub fn new(url: String, probe_model: Option<String>, timeout: Duration) -> Self {
        let url = url.trim_end_matches('/').to_string();
        OllamaProbe {
            url,
            probe_model,
            timeout,
            client: h::LazyClient::new(timeout),
        }
    }

    /// One call: status checked, body read and parsed, all before `deadline`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        path: &str,
        deadline: Instant,
    ) -> Result<T, String> {
        let fut = async {
            let resp = req.send().await?;
            let status = resp.status();
            let body = h::body_capped(resp, BODY_CAP).await?;
            Ok((status, body))
        };
        let (status, body) = match h::until(deadline, fut).await {
            Ok(v) => v,
            Err(Failure::Timeout) => {
                return Err(format!(
                    "Ollama at {} does not answer {path} within {}",
                    self.url,
                    h::human(self.timeout)
                ))
            }
            Err(Failure::Error(why)) => {
                return Err(format!(
                    "Ollama at {} does not answer {path}: {why}",
                    self.url
                ))
            }
        };
        if !status.is_success() {
            let why = serde_json::from_slice::<ApiError>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| h::excerpt(&body, 200));
            let mut msg = format!("Ollama at {} answered {path} with {status}", self.url);
            if !why.is_empty() {
                msg.push_str(&format!(": {why}"));
            }
            return Err(msg);
        }
        serde_json::from_slice(&body).map_err(|e| {
            format!(
                "Ollama at {} answered {path} with something that is not Ollama's API ({e}): {}",
                self.url,
                h::excerpt(&body, 120)
            )
        })
    }
}

fn crit(detail: String, metrics: Metrics) -> Reading {
    Reading::Value {
        status: Some(Status::Crit),
        detail,
        metrics,
    }
}

/// `llama3.2:3b 2.0 GiB (1.8 GiB in VRAM)`.
fn describe_model(m: &Running) -> String {
    let name = if m.name.is_empty() { &m.model } else { &m.name };
    let size = human_bytes(m.size as f64);
    if m.size_vram == m.size {
        format!("{name} {size} in VRAM")
    } else {
        format!(
            "{name} {size} ({} in VRAM)",
            human_bytes(m.size_vram as f64)
        )
    }
}

#[async_trait]
impl Probe for OllamaProbe {
    async fn read(&mut self) -> Reading {
        let deadline = Instant::now() + h::budget(self.timeout);
        let client = match self.client.get().await {
            Ok(c) => c,
            Err(e) => return Reading::Unknown(e),
        };
        let start = Instant::now();
        let mut m = Metrics::new();

        // Liveness.
        let req = client.get(format!("{}/api/version", self.url));
        let version: Version = match self.call(req, "/api/version", deadline).await {
            Ok(v) => v,
            Err(e) => return crit(e, m),
        };
        m.insert("version_ms".into(), h::ms_since(start));

        // What is loaded.
        let req = client.get(format!("{}/api/ps", self.url));
        let ps: Ps = match self.call(req, "/api/ps", deadline).await {
            Ok(v) => v,
            Err(e) => return crit(format!("{e} (it answers /api/version)"), m),
        };
        let models = ps.models.unwrap_or_default();
        m.insert("models_loaded".into(), models.len() as f64);
        m.insert(
            "vram_bytes".into(),
            models.iter().map(|x| x.size_vram as f64).sum(),
        );
        let loaded = if models.is_empty() {
            "no model loaded".to_string()
        } else {
            format!(
                "{} loaded: {}",
                if models.len() == 1 {
                    "1 model".to_string()
                } else {
                    format!("{} models", models.len())
                },
                models
                    .iter()
                    .map(describe_model)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut detail = format!(
            "Ollama {} at {}, {loaded}",
            version.version.trim(),
            self.url
        );

        // Readiness.
        if let Some(model) = &self.probe_model {
            let gen_start = Instant::now();
            let req = client
                .post(format!("{}/api/generate", self.url))
                .json(&serde_json::json!({
                    "model": model,
                    "prompt": "ok",
                    "stream": false,
                    "options": {"num_predict": 1},
                }));
            match self
                .call::<Generated>(req, "/api/generate", deadline)
                .await
            {
                Ok(g) if g.done => {
                    let ms = h::ms_since(gen_start);
                    m.insert("generate_ms".into(), ms);
                    detail.push_str(&format!("; {model} generated a token in {ms:.0} ms"));
                }
                Ok(g) => {
                    return crit(
                        format!(
                            "Ollama at {} did not finish a one-token generation with {model} (done: false, done_reason: {})",
                            self.url,
                            g.done_reason.as_deref().unwrap_or("none")
                        ),
                        m,
                    )
                }
                Err(e) => {
                    return crit(
                        format!("{e} for a one-token generation with {model} (it answers /api/version: generation is not working); {loaded}"),
                        m,
                    )
                }
            }
        }
        Reading::metrics(detail, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_ps_answer() {
        // The example of "List Running Models" in Ollama's docs/api.md.
        let ps: Ps = serde_json::from_str(
            r#"{"models":[{"name":"mistral:latest","model":"mistral:latest","size":5137025024,
            "digest":"2ae6f6dd7a3dd734790bbbf58b8909a606e0e7e97e94b7604e0aa7ae4490e6d8",
            "details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],
            "parameter_size":"7.2B","quantization_level":"Q4_0"},
            "expires_at":"2024-06-04T14:38:31.83753-07:00","size_vram":5137025024}]}"#,
        )
        .unwrap();
        let models = ps.models.unwrap();
        assert_eq!(models[0].size_vram, 5137025024);
        assert_eq!(describe_model(&models[0]), "mistral:latest 4.8 GiB in VRAM");
        // Go encodes an empty list as null in some versions.
        let ps: Ps = serde_json::from_str(r#"{"models":null}"#).unwrap();
        assert!(ps.models.unwrap_or_default().is_empty());
    }

    #[test]
    fn partly_offloaded_models_say_so() {
        let m = Running {
            name: "llama3.2:3b".into(),
            model: String::new(),
            size: 4 << 30,
            size_vram: 3 << 30,
        };
        assert_eq!(describe_model(&m), "llama3.2:3b 4.0 GiB (3.0 GiB in VRAM)");
    }
}
