//! What the pushes send: the push heartbeat's document and how each monitor's protocol
//! carries it (`vigil`, `healthchecks`, `uptime-kuma`). Pure: documents in, requests out.

use serde_json::{json, Value};

use crate::config::PushFormat;
use crate::core::health::{Overall, Status};
use crate::core::status::Snapshot;
use crate::core::time::{rfc3339_millis, Now};

/// Most failing checks named in one heartbeat document; the rest are counted.
pub const FAILING_LISTED_MAX: usize = 50;
/// Longest detail of a failing check in the document.
pub const DETAIL_MAX_CHARS: usize = 200;
/// The body healthchecks keeps by default (self-hosted `PING_BODY_LIMIT`; healthchecks.io
/// keeps 100 kB and says so in its `Ping-Body-Limit` answer header, which is believed up
/// to [`HEALTHCHECKS_BODY_LIMIT_MAX`]).
pub const HEALTHCHECKS_BODY_LIMIT: usize = 10_000;
/// The largest `Ping-Body-Limit` believed.
pub const HEALTHCHECKS_BODY_LIMIT_MAX: usize = 100_000;
/// Longest `msg` sent to Uptime Kuma.
pub const KUMA_MSG_MAX_CHARS: usize = 250;

/// Who sends: the hostname and the salted hash of the machine id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub hostname: String,
    pub machine: Option<String>,
}

/// `scheme://host[:port]` of a URL: where, without the path that is often the secret.
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(a bad URL)".into(),
    }
}

/// One HTTP request of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    pub url: String,
    /// JSON, when there is a body.
    pub body: Option<String>,
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The heartbeat document of the push: the contract's heartbeat (`status`, `uptime`,
/// `version`, `timestamp`) plus who sends and what fails. `kind` is `beat` (the interval)
/// or `change` (a state change, queued until delivered).
pub fn heartbeat_document(snap: &Snapshot, now: Now, id: &Identity, kind: &str) -> Value {
    let failing: Vec<_> = snap
        .checks
        .iter()
        .filter(|c| c.status != Status::Ok)
        .collect();
    let listed: Vec<Value> = failing
        .iter()
        .take(FAILING_LISTED_MAX)
        .map(|c| {
            json!({
                "name": c.name,
                "probe": c.probe,
                "status": c.status.as_str(),
                "since": rfc3339_millis(c.since),
                "detail": cut(&c.detail, DETAIL_MAX_CHARS),
            })
        })
        .collect();
    json!({
        "status": snap.status.as_str(),
        "uptime": snap.uptime_secs(now),
        "version": crate::VERSION,
        "timestamp": rfc3339_millis(now.wall),
        "hostname": id.hostname,
        "machine": id.machine,
        "kind": kind,
        "summary": snap.summary_line(),
        "failing": listed,
        "failing_more": failing.len().saturating_sub(FAILING_LISTED_MAX),
        "open_incidents": snap.open_incidents,
    })
}

/// What of a snapshot is a state change for the heartbeat: the overall status, the failing
/// checks with their statuses, and the number of open incidents.
pub fn state_key(snap: &Snapshot) -> (Overall, Vec<(String, Status)>, u32) {
    let failing = snap
        .checks
        .iter()
        .filter(|c| c.status != Status::Ok)
        .map(|c| (c.name.clone(), c.status))
        .collect();
    (snap.status, failing, snap.open_incidents)
}

/// The request that carries a heartbeat document in `format` to `url`. `seq` is the
/// queue's number for a state change; `body_limit` is healthchecks' (see
/// [`HEALTHCHECKS_BODY_LIMIT`]); `ping_ms` the round trip of the last push, for Kuma.
pub fn heartbeat_request(
    format: PushFormat,
    url: &str,
    doc: &Value,
    seq: Option<u64>,
    body_limit: usize,
    ping_ms: Option<u64>,
) -> PushRequest {
    let status = doc.get("status").and_then(Value::as_str).unwrap_or("");
    let critical = status == Overall::Critical.as_str();
    match format {
        PushFormat::Vigil => {
            let mut doc = doc.clone();
            if let (Some(seq), Some(o)) = (seq, doc.as_object_mut()) {
                o.insert("seq".into(), seq.into());
            }
            PushRequest {
                method: "POST",
                url: url.to_string(),
                body: Some(doc.to_string()),
            }
        }
        PushFormat::Healthchecks => {
            let base = url.trim_end_matches('/');
            PushRequest {
                method: "POST",
                url: if critical {
                    format!("{base}/fail")
                } else {
                    base.to_string()
                },
                body: Some(within(doc, body_limit)),
            }
        }
        PushFormat::UptimeKuma => {
            let msg = doc.get("summary").and_then(Value::as_str).unwrap_or(status);
            let ping = ping_ms.map(|p| p.to_string()).unwrap_or_default();
            PushRequest {
                method: "GET",
                url: kuma_url(
                    url,
                    if critical { "down" } else { "up" },
                    &cut(msg, KUMA_MSG_MAX_CHARS),
                    &ping,
                ),
                body: None,
            }
        }
    }
}

/// `url` with `status`, `msg` and `ping` set (replacing those of the URL Kuma shows,
/// `…?status=up&msg=OK&ping=`); other query parameters stay.
pub fn kuma_url(url: &str, status: &str, msg: &str, ping: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return url.to_string();
    };
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !matches!(k.as_ref(), "status" | "msg" | "ping"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("status", status)
        .append_pair("msg", msg)
        .append_pair("ping", ping);
    u.to_string()
}

/// The document as JSON of at most `limit` bytes: failing checks are left out from the
/// end (and counted in `failing_more`) until it fits; then the summary is cut.
pub fn within(doc: &Value, limit: usize) -> String {
    let mut text = doc.to_string();
    if text.len() <= limit {
        return text;
    }
    let mut doc = doc.clone();
    while text.len() > limit {
        let Some(o) = doc.as_object_mut() else {
            break;
        };
        let popped = o
            .get_mut("failing")
            .and_then(Value::as_array_mut)
            .and_then(Vec::pop)
            .is_some();
        if popped {
            let more = o.get("failing_more").and_then(Value::as_u64).unwrap_or(0);
            o.insert("failing_more".into(), (more + 1).into());
        } else if let Some(s) = o.get("summary").and_then(Value::as_str) {
            if s.is_empty() {
                break;
            }
            let shorter = cut(s, s.chars().count() / 2);
            o.insert("summary".into(), shorter.into());
        } else {
            break;
        }
        text = doc.to_string();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::health::CheckState;

    fn snap(n: usize, status: Status) -> Snapshot {
        let mut s = Snapshot::starting(0);
        s.status = if status == Status::Crit {
            Overall::Critical
        } else {
            Overall::Ok
        };
        s.checks = (0..n)
            .map(|i| {
                Arc::new(CheckState {
                    name: format!("check-{i}"),
                    probe: "disk".into(),
                    status,
                    since: 0,
                    detail: "x".repeat(500),
                    metrics: Default::default(),
                    last_probe: None,
                })
            })
            .collect();
        s
    }

    fn now() -> Now {
        Now {
            wall: 1_771_322_400_000_000,
            mono: 5_000_000,
        }
    }

    #[test]
    fn each_format_carries_the_document_its_way() {
        let id = Identity {
            hostname: "box".into(),
            machine: Some("ab".repeat(32)),
        };
        let doc = heartbeat_document(&snap(2, Status::Crit), now(), &id, "change");
        assert_eq!(doc["status"], "critical");
        assert_eq!(doc["failing"][0]["name"], "check-0");
        assert_eq!(doc["timestamp"], "2026-02-17T10:00:00.000Z");
        let v = heartbeat_request(PushFormat::Vigil, "http://m/hb", &doc, Some(7), 0, None);
        let body: Value = serde_json::from_str(v.body.as_deref().unwrap()).unwrap();
        assert_eq!((v.method, body["seq"].as_u64()), ("POST", Some(7)));
        let h = heartbeat_request(
            PushFormat::Healthchecks,
            "https://hc/u/",
            &doc,
            None,
            10_000,
            None,
        );
        assert_eq!(h.url, "https://hc/u/fail");
        let ok = heartbeat_document(&snap(1, Status::Ok), now(), &id, "beat");
        let h = heartbeat_request(
            PushFormat::Healthchecks,
            "https://hc/u",
            &ok,
            None,
            10_000,
            None,
        );
        assert_eq!(h.url, "https://hc/u");
        let k = heartbeat_request(
            PushFormat::UptimeKuma,
            "https://kuma/api/push/T?status=up&msg=OK&ping=",
            &doc,
            None,
            0,
            Some(12),
        );
        assert_eq!(k.method, "GET");
        assert!(
            k.url
                .starts_with("https://kuma/api/push/T?status=down&msg=critical"),
            "{}",
            k.url
        );
        assert!(k.url.ends_with("&ping=12"), "{}", k.url);
        assert!(k.body.is_none());
    }

    #[test]
    fn healthchecks_bodies_stay_within_the_limit_and_stay_json() {
        let doc = heartbeat_document(
            &snap(400, Status::Crit),
            now(),
            &Identity::default(),
            "beat",
        );
        assert_eq!(doc["failing"].as_array().unwrap().len(), FAILING_LISTED_MAX);
        assert_eq!(doc["failing_more"], 350);
        let text = within(&doc, HEALTHCHECKS_BODY_LIMIT);
        assert!(text.len() <= HEALTHCHECKS_BODY_LIMIT, "{}", text.len());
        let back: Value = serde_json::from_str(&text).unwrap();
        let listed = back["failing"].as_array().unwrap().len() as u64;
        assert_eq!(listed + back["failing_more"].as_u64().unwrap(), 400);
        assert_eq!(back["status"], "critical");
    }
}
