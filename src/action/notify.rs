//! `notify`: POST a JSON description of the incident to every configured webhook, with a
//! bearer token from systemd credentials, retried with back-off.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::outcome::Outcome;
use crate::config::Webhook;

/// Attempts per webhook.
const ATTEMPTS: u32 = 3;
/// Timeout of one attempt.
const ATTEMPT_TIMEOUT_SECS: u64 = 10;

/// The body of a notification.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Notification {
    pub event: String,
    pub incident: u64,
    pub rule: String,
    pub check: String,
    pub status: String,
    pub detail: String,
    pub host: String,
    pub time: String,
}

/// `scheme://host[:port]` of a URL: enough to say where, without the path that for many
/// services (Slack, Teams) is itself the secret.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(a webhook with a bad URL)".into(),
    }
}

/// Sends to every webhook; done when all took it.
pub async fn send(hooks: &[Webhook], creds: Option<&Path>, note: &Notification) -> Outcome {
    if hooks.is_empty() {
        return Outcome::Skipped("no [[notify.webhook]] in vigil.toml".into());
    }
    // The probes' client: no proxy, no redirects (one could carry the token elsewhere).
    let client = match crate::sys::http::client(Duration::from_secs(ATTEMPT_TIMEOUT_SECS)) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for hook in hooks {
        let bearer = match &hook.token_credential {
            Some(name) => match crate::sys::identity::credential(creds, name) {
                Ok(t) => Some(t),
                Err(e) => {
                    failed.push(format!("{}: {e}", shown(&hook.url)));
                    continue;
                }
            },
            None => None,
        };
        let mut last = String::new();
        let mut delivered = false;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
            }
            let mut req = client.post(&hook.url).json(note);
            for (k, v) in &hook.headers {
                req = req.header(k, v);
            }
            if let Some(t) = &bearer {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    delivered = true;
                    break;
                }
                Ok(r) => last = format!("answered {}", r.status()),
                Err(e) => last = crate::sys::http::describe(&e.without_url()),
            }
        }
        if delivered {
            ok.push(shown(&hook.url));
        } else {
            failed.push(format!(
                "{}: {last} (after {ATTEMPTS} attempts)",
                shown(&hook.url)
            ));
        }
    }
    if failed.is_empty() {
        Outcome::Done(format!("notified {}", ok.join(", ")))
    } else {
        Outcome::Failed(format!(
            "notified [{}]; not {}",
            ok.join(", "),
            failed.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    /// A real HTTP server on loopback that records requests and answers with `codes` in turn.
    fn server(codes: Vec<u16>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for code in codes {
                let (s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                seen.push(format!("{head}\n{}", String::from_utf8_lossy(&body)));
                let mut s = s;
                write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
            }
            seen
        });
        (url, h)
    }

    #[tokio::test]
    async fn posts_json_with_the_credential_and_retries() {
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("alert-token"), "s3cret\n").unwrap();
        let (url, h) = server(vec![503, 200]);
        let hooks = vec![Webhook {
            url: url.clone(),
            headers: [("X-Site".to_string(), "plant-7".to_string())].into(),
            token_credential: Some("alert-token".into()),
        }];
        let note = Notification {
            event: "incident".into(),
            incident: 7,
            rule: "heal".into(),
            check: "ollama".into(),
            ..Default::default()
        };
        let out = send(&hooks, Some(creds.path()), &note).await;
        let host = url.trim_end_matches("/hook").to_string();
        assert_eq!(
            out,
            Outcome::Done(format!("notified {host}")),
            "the path is never shown"
        );
        let seen = h.join().unwrap();
        assert_eq!(seen.len(), 2, "one retry after the 503");
        let lower = seen[1].to_ascii_lowercase();
        assert!(
            lower.contains("authorization: bearer s3cret"),
            "{}",
            seen[1]
        );
        assert!(lower.contains("x-site: plant-7"));
        let body: serde_json::Value =
            serde_json::from_str(seen[1].split("\n\n").last().unwrap().trim()).unwrap();
        assert_eq!(body["incident"], 7);
        assert_eq!(body["check"], "ollama");
    }

    #[tokio::test]
    async fn missing_credential_or_dead_endpoint_is_a_clear_failure() {
        let hooks = vec![Webhook {
            url: "http://127.0.0.1:1/hook".into(),
            headers: Default::default(),
            token_credential: Some("t".into()),
        }];
        let out = send(&hooks, None, &Notification::default()).await;
        assert!(
            matches!(out, Outcome::Failed(ref s) if s.contains("no $CREDENTIALS_DIRECTORY")),
            "{out:?}"
        );
        assert!(matches!(
            send(&[], None, &Notification::default()).await,
            Outcome::Skipped(_)
        ));
        // The package ships each credential file empty: that is "not set", not a token.
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("t"), "\n").unwrap();
        let out = send(&hooks, Some(creds.path()), &Notification::default()).await;
        assert!(
            matches!(out, Outcome::Failed(ref s) if s.contains("\"t\" is empty")),
            "{out:?}"
        );
    }
}
