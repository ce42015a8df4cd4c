//! `unload-models CHECK`: ask the Ollama behind an `ollama` check to unload every loaded
//! model (`POST /api/generate {"model": M, "keep_alive": 0}` per model in `/api/ps`).

use std::time::Duration;

use super::outcome::Outcome;

/// Time for each request.
const REQUEST_TIMEOUT_SECS: u64 = 10;

/// Unloads every model loaded in the Ollama at `url`.
pub async fn unload_all(url: &str) -> Outcome {
    let client = match crate::sys::http::client(Duration::from_secs(REQUEST_TIMEOUT_SECS)) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    let base = url.trim_end_matches('/');
    let ps: serde_json::Value = match client.get(format!("{base}/api/ps")).send().await {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(v) => v,
            Err(e) => return Outcome::Failed(format!("{base}/api/ps: not Ollama's answer: {e}")),
        },
        Ok(r) => return Outcome::Failed(format!("{base}/api/ps answered {}", r.status())),
        Err(e) => {
            return Outcome::Failed(format!(
                "Ollama at {base} does not answer: {}",
                crate::sys::http::describe(&e)
            ))
        }
    };
    let models: Vec<String> = ps["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["model"].as_str().or(m["name"].as_str()).map(String::from))
        .collect();
    if models.is_empty() {
        return Outcome::Skipped(format!("no model loaded in Ollama at {base}"));
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for m in &models {
        let body = serde_json::json!({ "model": m, "keep_alive": 0 });
        match client
            .post(format!("{base}/api/generate"))
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => done.push(m.clone()),
            Ok(r) => failed.push(format!("{m}: {}", r.status())),
            Err(e) => failed.push(format!("{m}: {}", crate::sys::http::describe(&e))),
        }
    }
    if failed.is_empty() {
        Outcome::Done(format!("unloaded {}", done.join(", ")))
    } else {
        Outcome::Failed(format!(
            "unloaded [{}]; not {}",
            done.join(", "),
            failed.join("; ")
        ))
    }
}
