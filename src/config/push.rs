//! `[heartbeat.push]` and `[push.metrics]`: the push heartbeat and the sensor push, checked
//! with located errors and resolved to [`PushTarget`]s with their defaults.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::policy::diag::{Diagnostic, Source};

/// `[heartbeat.push]`: the push heartbeat, for boxes a monitor cannot reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatPush {
    pub url: Spanned<String>,
    /// Default [`HEARTBEAT_PUSH_EVERY_SECS`].
    pub every: Option<Spanned<String>>,
    /// Time for one push; default [`PUSH_TIMEOUT_SECS`], never more than `every`.
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub format: PushFormat,
    /// The systemd credential (`LoadCredential=`) holding the bearer token.
    pub token_credential: Option<Spanned<String>>,
}

/// `[heartbeat.push] format`: whose protocol the push speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PushFormat {
    /// A POST of vigil's heartbeat document.
    #[default]
    Vigil,
    /// healthchecks.io ping URLs: the URL when ok, `URL/fail` when critical.
    Healthchecks,
    /// Uptime Kuma push monitors: `URL?status=up|down&msg=…&ping=`.
    UptimeKuma,
}

impl PushFormat {
    /// The name in `vigil.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            PushFormat::Vigil => "vigil",
            PushFormat::Healthchecks => "healthchecks",
            PushFormat::UptimeKuma => "uptime-kuma",
        }
    }
}

/// `[push]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSection {
    pub metrics: Option<MetricsPush>,
}

/// `[push.metrics]`: the sensor push, a metrics snapshot POSTed to a backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsPush {
    pub url: Spanned<String>,
    /// Default [`METRICS_PUSH_EVERY_SECS`].
    pub every: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub token_credential: Option<Spanned<String>>,
}

/// Default interval of the push heartbeat: a monitor that misses two marks the box down.
pub const HEARTBEAT_PUSH_EVERY_SECS: u64 = 30;
/// Default interval of the sensor push.
pub const METRICS_PUSH_EVERY_SECS: u64 = 300;
/// Default time for one push (capped at the interval).
pub const PUSH_TIMEOUT_SECS: u64 = 10;
/// The shortest interval a push may have.
pub const PUSH_EVERY_MIN_MS: u64 = 1000;

/// A push as vigild runs it: settings resolved, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub url: String,
    pub every: Duration,
    pub timeout: Duration,
    pub format: PushFormat,
    pub token_credential: Option<String>,
}

impl HeartbeatPush {
    /// The push as vigild runs it; None when a value is bad (refused by [`check`] first).
    pub fn target(&self) -> Option<PushTarget> {
        let t = (
            &self.url,
            &self.every,
            &self.timeout,
            &self.token_credential,
        );
        let mut target = resolve(t, HEARTBEAT_PUSH_EVERY_SECS).ok()?;
        target.format = self.format;
        Some(target)
    }
}

impl MetricsPush {
    /// The push as vigild runs it; None when a value is bad (refused by [`check`] first).
    pub fn target(&self) -> Option<PushTarget> {
        let t = (
            &self.url,
            &self.every,
            &self.timeout,
            &self.token_credential,
        );
        resolve(t, METRICS_PUSH_EVERY_SECS).ok()
    }
}

/// Checks both push tables, pointing at the first bad value.
pub fn check(
    src: &Source<'_>,
    heartbeat: Option<&HeartbeatPush>,
    metrics: Option<&MetricsPush>,
) -> Result<(), Diagnostic> {
    if let Some(p) = heartbeat {
        let t = (&p.url, &p.every, &p.timeout, &p.token_credential);
        push_target(src, "heartbeat.push", t, HEARTBEAT_PUSH_EVERY_SECS)?;
    }
    if let Some(p) = metrics {
        let t = (&p.url, &p.every, &p.timeout, &p.token_credential);
        push_target(src, "push.metrics", t, METRICS_PUSH_EVERY_SECS)?;
    }
    Ok(())
}

/// The keys a push table shares: `url`, `every`, `timeout`, `token_credential`.
type PushKeys<'a> = (
    &'a Spanned<String>,
    &'a Option<Spanned<String>>,
    &'a Option<Spanned<String>>,
    &'a Option<Spanned<String>>,
);

/// Why a push table's value is bad, and where (the value's span).
type PushError = (std::ops::Range<usize>, String);

/// A push table resolved to a [`PushTarget`], or the value that is wrong and why.
fn resolve(keys: PushKeys<'_>, every_default: u64) -> Result<PushTarget, PushError> {
    let (url, every, timeout, token) = keys;
    // Kept as parsed, which is what the client requests: the URL standard reads
    // "https:/host/x" and "HTTP://Host" as https://host/x and http://host/, so the text
    // written is not always the address contacted, and status and logs show the latter.
    let u = match reqwest::Url::parse(url.get_ref()) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => {
            String::from(p)
        }
        _ => {
            return Err((
                url.span(),
                "url: not an http:// or https:// URL with a host".to_string(),
            ))
        }
    };
    let duration = |v: &Spanned<String>, key: &str| {
        humantime::parse_duration(v.get_ref()).map_err(|e| {
            (
                v.span(),
                format!("{key}: {e} (write it as \"30s\", \"5m\")"),
            )
        })
    };
    let every = match every {
        Some(e) => {
            let d = duration(e, "every")?;
            if d < Duration::from_millis(PUSH_EVERY_MIN_MS) {
                return Err((e.span(), "every: at least 1s".into()));
            }
            d
        }
        None => Duration::from_secs(every_default),
    };
    let timeout = match timeout {
        Some(t) => {
            let d = duration(t, "timeout")?;
            if d.is_zero() || d > every {
                return Err((t.span(), "timeout: more than 0 and at most `every`".into()));
            }
            d
        }
        None => Duration::from_secs(PUSH_TIMEOUT_SECS).min(every),
    };
    if let Some(t) = token {
        let n = t.get_ref();
        if n.is_empty() || n.contains('/') || n == "." || n == ".." {
            return Err((
                t.span(),
                "token_credential: the name of a credential (LoadCredential=NAME:…), not a path"
                    .into(),
            ));
        }
    }
    Ok(PushTarget {
        url: u,
        every,
        timeout,
        format: PushFormat::Vigil,
        token_credential: token.as_ref().map(|t| t.get_ref().clone()),
    })
}

/// Checks a push table, naming `table` and pointing at the bad value.
fn push_target(
    src: &Source<'_>,
    table: &str,
    keys: PushKeys<'_>,
    every_default: u64,
) -> Result<(), Diagnostic> {
    resolve(keys, every_default)
        .map(drop)
        .map_err(|(span, msg)| src.at(&span, format!("{table}.{msg}")))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Settings;

    #[test]
    fn pushes_resolve_with_defaults_and_bad_values_are_located() {
        let text = "[heartbeat.push]\nurl = \"https://hc-ping.com/abc\"\nformat = \"healthchecks\"\n\n[push.metrics]\nurl = \"http://10.0.0.1:8080/api/monitoring/metrics\"\ntoken_credential = \"metrics-token\"\n";
        let s = Settings::parse(Path::new("v.toml"), text).unwrap();
        let hb = s.heartbeat_push().unwrap();
        assert_eq!(hb.format, PushFormat::Healthchecks);
        assert_eq!(hb.every, Duration::from_secs(30));
        assert_eq!(hb.timeout, Duration::from_secs(10));
        let m = s.metrics_push().unwrap();
        assert_eq!(m.every, Duration::from_secs(300));
        assert_eq!(m.token_credential.as_deref(), Some("metrics-token"));
        assert_eq!(Settings::default().heartbeat_push(), None);
        // Found by the settings fuzz target: a URL the standard repairs is kept repaired,
        // as the client will request it.
        for (written, used) in [
            ("https:/ring/metrics", "https://ring/metrics"),
            ("HTTP://Box.Local:8080", "http://box.local:8080/"),
        ] {
            let text = format!("[heartbeat.push]\nurl = \"{written}\"\n");
            let s = Settings::parse(Path::new("v.toml"), &text).unwrap();
            assert_eq!(s.heartbeat_push().unwrap().url, used);
        }
        let found = include_str!("../../fuzz/regressions/settings-1");
        let s = Settings::parse(Path::new("v.toml"), found).unwrap();
        assert_eq!(s.heartbeat_push().unwrap().url, "https://ring/metrics");
        let bad = [
            (
                "[heartbeat.push]\nurl = \"ftp://x/y\"\n",
                (2, 7),
                "heartbeat.push.url",
            ),
            (
                "[heartbeat.push]\nurl = \"http://x\"\nevery = \"often\"\n",
                (3, 9),
                "heartbeat.push.every",
            ),
            (
                "[heartbeat.push]\nurl = \"http://x\"\nevery = \"100ms\"\n",
                (3, 9),
                "at least 1s",
            ),
            (
                "[heartbeat.push]\nurl = \"http://x\"\nevery = \"5s\"\ntimeout = \"6s\"\n",
                (4, 11),
                "heartbeat.push.timeout",
            ),
            (
                "[heartbeat.push]\nurl = \"http://x\"\nformat = \"nagios\"\n",
                (3, 10),
                "unknown variant",
            ),
            (
                "[push.metrics]\nurl = \"http://x\"\ntoken_credential = \"/etc/x\"\n",
                (3, 20),
                "push.metrics.token_credential",
            ),
            (
                "[push.metrics]\nurl = \"http://x\"\nbody = 1\n",
                (3, 1),
                "unknown field",
            ),
        ];
        for (text, at, says) in bad {
            let e = Settings::parse(Path::new("v.toml"), text).unwrap_err();
            assert_eq!((e.line, e.column), at, "{text}: {e}");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }
}
