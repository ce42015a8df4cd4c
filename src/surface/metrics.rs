//! `GET /metrics`: the snapshot in Prometheus's text format (0.0.4), written with the
//! `prometheus-client` crate. Names follow Prometheus's conventions: the `vigil_` prefix,
//! base units (ratios, bytes, seconds, celsius, watts, hertz), `_total` on counters, and
//! `vigil_build_info`. Every probe metric of docs/metrics.md is exported under
//! `vigil_<probe>_<metric>_<unit>{check="…"}` ([`probe_families`]); docs/monitoring.md
//! lists them all.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::core::health::{CheckState, Overall, Status};
use crate::core::metric::{MetricSpec, Unit};
use crate::core::probe_kind::ProbeKind;
use crate::core::status::Snapshot;
use crate::core::update::UpdateState;

/// The `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Whether a family is a gauge or a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One exported family of probe metrics.
#[derive(Debug, Clone)]
pub struct ProbeFamily {
    /// Without `vigil_` and, for counters, without `_total` (the encoder adds both).
    pub name: String,
    pub help: String,
    pub kind: Kind,
    /// The probe metric it exports.
    pub metric: &'static str,
    /// Factor from the probe's unit to the base unit.
    pub scale: f64,
}

/// The family a probe metric is exported as; None for one that is only derived (a
/// per-reading difference of a counter that is exported itself).
fn family(prefix: &str, spec: &MetricSpec) -> Option<ProbeFamily> {
    let n = spec.name;
    let (base, kind, scale, unit) = match (n, spec.unit) {
        ("oom_kills_new" | "media_errors_new", _) => return None,
        ("hours_to_full", _) => (
            "time_to_full_seconds".into(),
            Kind::Gauge,
            3600.0,
            "seconds",
        ),
        ("freq_mhz", _) => ("frequency_hertz".into(), Kind::Gauge, 1e6, "hertz"),
        ("restart_count" | "n_restarts", _) => ("restarts".into(), Kind::Counter, 1.0, ""),
        ("oom_kills" | "xid_errors" | "ecc_errors" | "media_errors", _) => {
            (n.into(), Kind::Counter, 1.0, "")
        }
        (_, Unit::Percent) => (format!("{n}_ratio"), Kind::Gauge, 0.01, "ratio 0-1"),
        (_, Unit::Bytes) if n.ends_with("_bytes") => (n.into(), Kind::Gauge, 1.0, "bytes"),
        (_, Unit::Bytes) => (format!("{n}_bytes"), Kind::Gauge, 1.0, "bytes"),
        (_, Unit::Celsius) => (format!("{n}_celsius"), Kind::Gauge, 1.0, "celsius"),
        (_, Unit::BytesPerSecond) => (
            format!("{n}_bytes_per_second"),
            Kind::Gauge,
            1.0,
            "bytes per second",
        ),
        (_, Unit::Milliseconds) => (
            format!("{}_seconds", n.trim_end_matches("_ms")),
            Kind::Gauge,
            0.001,
            "seconds",
        ),
        (_, Unit::Watts) => (
            format!("{}_watts", n.trim_end_matches("_w")),
            Kind::Gauge,
            1.0,
            "watts",
        ),
        (_, Unit::Hours) => (
            format!("{}_seconds", n.trim_end_matches("_hours")),
            Kind::Gauge,
            3600.0,
            "seconds",
        ),
        (_, Unit::Count | Unit::Number) => (n.into(), Kind::Gauge, 1.0, ""),
    };
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" ({unit})")
    };
    Some(ProbeFamily {
        name: format!("{prefix}_{base}"),
        help: format!("{}{unit}; probe metric {n}", spec.help),
        kind,
        metric: n,
        scale,
    })
}

/// The name families of a probe kind start with (`container` for both container kinds).
pub fn prefix(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Containers => "container",
        k => k.as_str(),
    }
}

/// Every family of probe metrics, by name prefix, in the order of [`ProbeKind::ALL`].
pub fn probe_families() -> &'static [(&'static str, Vec<ProbeFamily>)] {
    static TABLE: OnceLock<Vec<(&'static str, Vec<ProbeFamily>)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut out: Vec<(&'static str, Vec<ProbeFamily>)> = Vec::new();
        for kind in ProbeKind::ALL {
            let p = prefix(*kind);
            if out.iter().any(|(q, _)| *q == p) {
                continue;
            }
            let fams = kind.metrics().iter().filter_map(|s| family(p, s)).collect();
            out.push((p, fams));
        }
        out
    })
}

/// The numeric code of a check's status in `vigil_check_status`.
pub fn status_code(s: Status) -> u8 {
    match s {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Crit => 2,
        Status::Unknown => 3,
    }
}

fn overall_code(o: Overall) -> u8 {
    match o {
        Overall::Ok => 0,
        Overall::Degraded => 1,
        Overall::Critical => 2,
    }
}

/// Renders the snapshot.
pub fn render(snap: &Snapshot) -> String {
    let mut registry = Registry::with_prefix("vigil");
    registry.register_collector(Box::new(SnapshotCollector(Arc::new(snap.clone()))));
    let mut out = String::with_capacity(256 + snap.checks.len() * 400);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("writing into a String does not fail");
    out
}

#[derive(Debug)]
struct SnapshotCollector(Arc<Snapshot>);

/// Writes a gauge family: `samples` of (labels, value).
fn gauges<'a, L, V>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> std::fmt::Result
where
    L: prometheus_client::encoding::EncodeLabelSet + 'a,
    V: prometheus_client::encoding::EncodeGaugeValue + std::fmt::Debug,
{
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a counter family (the encoder adds `_total`).
fn counters<L>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> std::fmt::Result
where
    L: prometheus_client::encoding::EncodeLabelSet,
{
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &*self.0;
        let none: [(&str, &str); 0] = [];
        gauges(
            &mut enc,
            "build_info",
            "vigild's version; always 1",
            [([("version", crate::VERSION)], 1u8 as i64)],
        )?;
        gauges(
            &mut enc,
            "start_time_seconds",
            "when vigild started, seconds since the epoch",
            [(none, secs(s.started_at))],
        )?;
        gauges(
            &mut enc,
            "status",
            "overall status: 0 ok, 1 degraded, 2 critical",
            [(none, overall_code(s.status) as i64)],
        )?;
        gauges(
            &mut enc,
            "maintenance",
            "1 while maintenance mode is on",
            [(none, s.maintenance as i64)],
        )?;
        let c = s.counts;
        gauges(
            &mut enc,
            "checks",
            "checks by status",
            [
                ("ok", c.ok),
                ("warn", c.warn),
                ("crit", c.crit),
                ("unknown", c.unknown),
            ]
            .map(|(st, n)| ([("status", st)], n as i64)),
        )?;
        gauges(
            &mut enc,
            "check_status",
            "status of each check: 0 ok, 1 warn, 2 crit, 3 unknown",
            s.checks.iter().map(|c| {
                (
                    [("check", c.name.as_str()), ("probe", c.probe.as_str())],
                    status_code(c.status) as i64,
                )
            }),
        )?;
        probe_metrics(&mut enc, &s.checks)?;
        let i = s.incidents;
        gauges(
            &mut enc,
            "incidents_open",
            "incidents going on, by state (exhausted: the rule reached its limit)",
            [
                ("open", i.open),
                ("acting", i.acting),
                ("exhausted", i.exhausted),
            ]
            .map(|(st, n)| ([("state", st)], n as i64)),
        )?;
        counters(
            &mut enc,
            "actions",
            "actions taken since vigild started, by rule, action and result (done, skipped, failed, observed)",
            s.actions.iter().map(|((rule, action, result), n)| {
                (
                    [
                        ("rule", rule.as_str()),
                        ("action", action.as_str()),
                        ("result", result.as_str()),
                    ],
                    *n,
                )
            }),
        )?;
        gauges(
            &mut enc,
            "update_state",
            "1 for the state of the current or last update run, 0 for the others",
            UpdateState::ALL
                .iter()
                .map(|u| ([("state", u.as_str())], (*u == s.update_state) as i64)),
        )?;
        gauges(
            &mut enc,
            "store_records_waiting",
            "records kept in memory because the store cannot write them",
            [(none, s.store.waiting as i64)],
        )?;
        counters(
            &mut enc,
            "store_records_dropped",
            "records dropped because too many were waiting",
            [(none, s.store.dropped)],
        )?;
        push_metrics(&mut enc, s)
    }
}

fn probe_metrics(enc: &mut DescriptorEncoder, checks: &[Arc<CheckState>]) -> std::fmt::Result {
    let mut by_prefix: HashMap<&str, Vec<&CheckState>> = HashMap::new();
    for c in checks {
        if let Some(k) = ProbeKind::parse(&c.probe) {
            by_prefix.entry(prefix(k)).or_default().push(c);
        }
    }
    for (p, fams) in probe_families() {
        let Some(checks) = by_prefix.get(p) else {
            continue;
        };
        for f in fams {
            let samples = checks.iter().filter_map(|c| {
                let v = *c.metrics.get(f.metric)?;
                (!v.is_nan()).then_some(([("check", c.name.as_str())], v * f.scale))
            });
            match f.kind {
                Kind::Gauge => gauges(enc, &f.name, &f.help, samples)?,
                Kind::Counter => counters(
                    enc,
                    &f.name,
                    &f.help,
                    samples
                        .filter(|(_, v)| v.is_finite())
                        .map(|(l, v)| (l, v.max(0.0) as u64)),
                )?,
            }
        }
    }
    Ok(())
}

fn push_metrics(enc: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
    let p = &s.push;
    let by = |push: &str| [("push", push.to_string())];
    counters(
        enc,
        "push",
        "pushes (heartbeat, metrics) sent, by result (ok, error)",
        p.iter().flat_map(|x| {
            [
                ([("push", x.name.as_str()), ("result", "ok")], x.ok_total),
                (
                    [("push", x.name.as_str()), ("result", "error")],
                    x.failed_total,
                ),
            ]
        }),
    )?;
    counters(
        enc,
        "push_sent_bytes",
        "bytes of push requests the endpoint answered (head and body, as HTTP/1.1 sends them)",
        p.iter().map(|x| (by(&x.name), x.bytes_total)),
    )?;
    gauges(
        enc,
        "push_queued",
        "state changes or snapshots waiting for the push endpoint",
        p.iter().map(|x| (by(&x.name), x.queued as i64)),
    )?;
    counters(
        enc,
        "push_dropped",
        "queued pushes dropped because the queue was full",
        p.iter().map(|x| (by(&x.name), x.dropped)),
    )?;
    gauges(
        enc,
        "push_last_success_timestamp_seconds",
        "when the endpoint last took a push, seconds since the epoch",
        p.iter()
            .filter_map(|x| Some((by(&x.name), secs(x.last_ok_at?)))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::status::PushStatus;

    #[test]
    fn names_follow_the_conventions() {
        let all: Vec<&ProbeFamily> = probe_families().iter().flat_map(|(_, f)| f).collect();
        let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
        for want in [
            "disk_used_ratio",
            "disk_time_to_full_seconds",
            "disk_fill_rate_bytes_per_second",
            "memory_psi_memory_some_avg10_ratio",
            "thermal_temperature_celsius",
            "gpu_memory_used_bytes",
            "gpu_temperature_celsius",
            "gpu_power_watts",
            "gpu_frequency_hertz",
            "container_restarts",
            "ollama_models_loaded",
            "ollama_vram_bytes",
            "http_latency_seconds",
            "smart_percentage_used_ratio",
            "smart_available_spare_ratio",
            "smart_temperature_celsius",
            "smart_power_on_seconds",
            "smart_media_errors",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "no name twice");
        assert!(!names.iter().any(|n| n.ends_with("_total")));
    }

    #[test]
    fn renders_checks_probe_metrics_and_pushes() {
        let mut s = Snapshot::starting(1_700_000_000_000_000);
        let mut c = CheckState {
            name: "root-disk".into(),
            probe: "disk".into(),
            status: Status::Crit,
            since: 0,
            detail: String::new(),
            metrics: Default::default(),
            last_probe: None,
        };
        c.metrics.insert("used".into(), 93.5);
        c.metrics.insert("hours_to_full".into(), f64::INFINITY);
        s.checks = vec![Arc::new(c)];
        s.push = vec![PushStatus {
            name: "heartbeat".into(),
            ok_total: 3,
            failed_total: 1,
            ..Default::default()
        }];
        let text = render(&s);
        for line in [
            "vigil_build_info{version=\"",
            "vigil_check_status{check=\"root-disk\",probe=\"disk\"} 2\n",
            "vigil_disk_used_ratio{check=\"root-disk\"} 0.935\n",
            "vigil_disk_time_to_full_seconds{check=\"root-disk\"} +Inf\n",
            "# TYPE vigil_push_total counter\n",
            "vigil_push_total{push=\"heartbeat\",result=\"error\"} 1\n",
            "vigil_update_state{state=\"idle\"} 1\n",
            "vigil_incidents_open{state=\"exhausted\"} 0\n",
        ] {
            assert!(text.contains(line), "{line:?} in:\n{text}");
        }
        assert!(!text.contains("# EOF"), "Prometheus text, not OpenMetrics");
    }
}
