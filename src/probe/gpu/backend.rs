//! What every GPU backend answers, and how an answer becomes a reading.

use crate::core::metric::{human_bytes, Metrics, Reading};

/// One reading of a GPU, whatever the backend.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuSample {
    /// The GPU's name: NVML's device name, or the Jetson GPU's devicetree name (`ga10b`).
    pub name: String,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    /// Percent busy.
    pub utilization: Option<f64>,
    /// Degrees Celsius.
    pub temperature: Option<f64>,
    /// Watts.
    pub power_w: Option<f64>,
    /// Where `power_w` comes from when it is not the obvious source (a rail name).
    pub power_source: Option<String>,
    /// Current GPU clock, MHz.
    pub freq_mhz: Option<f64>,
    /// Critical XID events seen since the backend started.
    pub xid_errors: Option<u64>,
    /// The XID code of the most recent one.
    pub last_xid: Option<u64>,
    /// Uncorrected ECC errors (volatile counter).
    pub ecc_errors: Option<u64>,
    /// Active clock throttle reasons, by name (`sw power cap`, `hw thermal slowdown`, …).
    pub throttle_reasons: Option<Vec<&'static str>>,
    /// Whether one of them is a hardware or thermal slowdown.
    pub throttled: Option<bool>,
    /// Things worth saying that are not failures (a sensor that is off, a metric the
    /// device does not support).
    pub notes: Vec<String>,
}

/// A backend could not read the GPU at all; the check becomes `unknown` with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GpuError(pub String);

/// A way of reading one GPU. Implementations block (NVML calls, sysfs reads): call them off
/// the runtime.
pub trait GpuBackend: Send {
    /// `nvml` or `jetson`.
    fn name(&self) -> &'static str;
    /// Reads the GPU once.
    fn read(&mut self) -> Result<GpuSample, GpuError>;
    /// Which GPU, for the log line that says which backend was chosen.
    fn describe(&self) -> String {
        self.name().to_string()
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Turns a sample into a reading. Pure.
pub fn to_reading(backend: &str, s: &GpuSample) -> Reading {
    let mut m = Metrics::new();
    let total = s.memory_total_bytes as f64;
    let used = s.memory_used_bytes as f64;
    if total > 0.0 {
        m.insert("memory_used".into(), used * 100.0 / total);
    }
    m.insert("memory_used_bytes".into(), used);
    m.insert("memory_total_bytes".into(), total);
    let mut parts = Vec::new();
    if let Some(u) = s.utilization {
        m.insert("utilization".into(), u);
        parts.push(format!("{u:.0}% busy"));
    }
    parts.push(format!("{} of {}", human_bytes(used), human_bytes(total)));
    if let Some(t) = s.temperature {
        m.insert("temperature".into(), t);
        parts.push(format!("{} °C", fmt_num(t)));
    }
    if let Some(p) = s.power_w {
        m.insert("power_w".into(), p);
        match &s.power_source {
            Some(src) => parts.push(format!("{p:.1} W ({src})")),
            None => parts.push(format!("{p:.1} W")),
        }
    }
    if let Some(f) = s.freq_mhz {
        m.insert("freq_mhz".into(), f);
        parts.push(format!("{} MHz", fmt_num(f)));
    }
    if let Some(t) = s.throttled {
        m.insert("throttled".into(), if t { 1.0 } else { 0.0 });
    }
    if let Some(reasons) = &s.throttle_reasons {
        if !reasons.is_empty() {
            parts.push(format!("throttle: {}", reasons.join(", ")));
        }
    }
    if let Some(x) = s.xid_errors {
        m.insert("xid_errors".into(), x as f64);
        if x > 0 {
            match s.last_xid {
                Some(last) => parts.push(format!("{x} XID errors (last: XID {last})")),
                None => parts.push(format!("{x} XID errors")),
            }
        }
    }
    if let Some(e) = s.ecc_errors {
        m.insert("ecc_errors".into(), e as f64);
        if e > 0 {
            parts.push(format!("{e} uncorrected ECC errors"));
        }
    }
    let mut detail = format!("{} ({backend}): {}", s.name, parts.join(", "));
    if !s.notes.is_empty() {
        detail.push_str(&format!(" ({})", s.notes.join("; ")));
    }
    Reading::metrics(detail, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_becomes_metrics_and_a_detail() {
        let s = GpuSample {
            name: "ga10b".into(),
            memory_used_bytes: 12_897_280 * 1024,
            memory_total_bytes: 64_335_836 * 1024,
            utilization: Some(41.3),
            temperature: Some(48.5),
            power_w: Some(21.3),
            ..Default::default()
        };
        let Reading::Value {
            status,
            detail,
            metrics,
        } = to_reading("jetson", &s)
        else {
            panic!()
        };
        assert_eq!(status, None);
        assert_eq!(
            detail,
            "ga10b (jetson): 41% busy, 12.3 GiB of 61.4 GiB, 48.5 °C, 21.3 W"
        );
        assert_eq!(metrics["utilization"], 41.3);
        assert!((metrics["memory_used"] - 20.047).abs() < 0.001);
        assert!(!metrics.contains_key("xid_errors"));
        for name in metrics.keys() {
            assert!(
                crate::core::probe_kind::ProbeKind::Gpu
                    .metric(name)
                    .is_some(),
                "{name} is not in METRICS"
            );
        }
    }
}
