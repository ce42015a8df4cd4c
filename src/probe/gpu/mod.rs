//! `gpu`: NVML or Jetson sysfs behind one trait.
//!
//! A [`GpuBackend`] answers a plain [`GpuSample`]; [`to_reading`] turns a sample into the
//! check's [`Reading`]. The backend is picked at the first reading (`backend = "auto"`:
//! NVML when it initialises, finds device `device` and answers memory info; else the Jetson
//! sysfs GPU when its devfreq device exists; else none, and the check is `unknown` with
//! both reasons). While no backend is found the choice is tried again at each reading, so a
//! driver that loads after vigild is picked up. Every NVML call and sysfs read runs on the
//! blocking pool ([`super::Blocking`]).

pub mod jetson;
pub mod nvml;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Context, HostRoots, MetricSpec, Metrics, Probe, Reading, Unit};

/// Metrics of the `gpu` probe.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "memory_used",
        unit: Unit::Percent,
        help: "GPU memory used, as a share of the total (Jetson: NvMapMemUsed of MemTotal, memory shared with the CPU)",
        optional: false,
    },
    MetricSpec {
        name: "memory_used_bytes",
        unit: Unit::Bytes,
        help: "GPU memory used (NVML: memory info `used`; Jetson: NvMapMemUsed)",
        optional: false,
    },
    MetricSpec {
        name: "memory_total_bytes",
        unit: Unit::Bytes,
        help: "GPU memory in all (NVML: memory info `total`; Jetson: MemTotal)",
        optional: false,
    },
    MetricSpec {
        name: "utilization",
        unit: Unit::Percent,
        help: "GPU busy (NVML: utilization rates `gpu`; Jetson: devfreq `device/load` ÷ 10)",
        optional: false,
    },
    MetricSpec {
        name: "temperature",
        unit: Unit::Celsius,
        help: "GPU temperature (Jetson: thermal zone `gpu-thermal`; absent while the sensor reads −256 °C, i.e. is off)",
        optional: true,
    },
    MetricSpec {
        name: "power_w",
        unit: Unit::Watts,
        help: "GPU power (NVML: power usage; Jetson: the INA3221 GPU rail, VDD_GPU_SOC, else the sum of all rails)",
        optional: true,
    },
    MetricSpec {
        name: "freq_mhz",
        unit: Unit::Number,
        help: "GPU clock in MHz (NVML: graphics clock; Jetson: devfreq `cur_freq`)",
        optional: true,
    },
    MetricSpec {
        name: "throttled",
        unit: Unit::Number,
        help: "1 while NVML reports a hardware slowdown, thermal slowdown or power-brake throttle reason, else 0 (NVML)",
        optional: true,
    },
    MetricSpec {
        name: "xid_errors",
        unit: Unit::Count,
        help: "critical XID error events seen since the probe started (NVML event API)",
        optional: true,
    },
    MetricSpec {
        name: "ecc_errors",
        unit: Unit::Count,
        help: "uncorrected ECC errors since the driver loaded (NVML, volatile counter; absent without ECC)",
        optional: true,
    },
];

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
    parts.push(format!(
        "{} of {}",
        super::disk::human_bytes(used),
        super::disk::human_bytes(total)
    ));
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

/// Which backend a policy asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Nvml,
    Jetson,
    None,
}

impl Choice {
    /// Parses a policy's `backend = …` (already validated); anything else is `auto`.
    pub fn parse(s: &str) -> Choice {
        match s {
            "nvml" => Choice::Nvml,
            "jetson" => Choice::Jetson,
            "none" => Choice::None,
            _ => Choice::Auto,
        }
    }
}

/// Opens the NVML backend for a device index, or says why not. The live one is
/// [`nvml::open_live`]; tests pass one that replays recorded NVML answers.
pub type NvmlOpener = Arc<dyn Fn(u32) -> Result<Box<dyn GpuBackend>, String> + Send + Sync>;

/// Picks a backend. `Err` says why none could be used, naming each backend tried. Blocks.
pub fn select(
    choice: Choice,
    device: u32,
    roots: &HostRoots,
    open_nvml: &NvmlOpener,
) -> Result<Box<dyn GpuBackend>, String> {
    let jetson =
        || jetson::JetsonBackend::discover(roots).map(|b| Box::new(b) as Box<dyn GpuBackend>);
    match choice {
        Choice::Nvml => open_nvml(device).map_err(|e| format!("NVML: {e}")),
        Choice::Jetson => jetson().map_err(|e| format!("Jetson: {e}")),
        Choice::None => Err("backend = \"none\"".into()),
        Choice::Auto => match open_nvml(device) {
            Ok(b) => Ok(b),
            Err(nvml_why) => jetson().map_err(|jetson_why| {
                format!("no GPU found: NVML: {nvml_why}; Jetson: {jetson_why}")
            }),
        },
    }
}

/// Picks the backend once and reads through it.
struct Selector {
    choice: Choice,
    device: u32,
    roots: HostRoots,
    open_nvml: NvmlOpener,
    backend: Option<Box<dyn GpuBackend>>,
    /// The last reason no backend could be used, so it is logged once, not every reading.
    last_failure: Option<String>,
}

impl Selector {
    fn read(&mut self) -> Reading {
        if self.choice == Choice::None {
            return Reading::metrics("not watching a GPU (backend = \"none\")", Metrics::new());
        }
        if self.backend.is_none() {
            match select(self.choice, self.device, &self.roots, &self.open_nvml) {
                Ok(b) => {
                    tracing::info!(vigil_event = "gpu-backend", "gpu: reading {}", b.describe());
                    self.backend = Some(b);
                    self.last_failure = None;
                }
                Err(why) => {
                    if self.last_failure.as_deref() != Some(why.as_str()) {
                        tracing::debug!("gpu: no backend: {why}");
                        self.last_failure = Some(why.clone());
                    }
                    return Reading::Unknown(why);
                }
            }
        }
        let backend = self.backend.as_mut().expect("set above");
        match backend.read() {
            Ok(s) => to_reading(backend.name(), &s),
            Err(e) => Reading::Unknown(format!("{}: {e}", backend.name())),
        }
    }
}

/// The probe.
pub struct GpuProbe {
    selector: Arc<Mutex<Selector>>,
    reader: super::Blocking<Reading>,
}

impl GpuProbe {
    /// Builds the probe for `backend` (`auto`, `nvml`, `jetson`, `none`) and NVML device
    /// index `device`, reading sysfs and procfs under `ctx.roots`.
    pub fn new(backend: &str, device: u32, ctx: &Context) -> Self {
        Self::with_nvml(
            Choice::parse(backend),
            device,
            ctx,
            Arc::new(nvml::open_live),
        )
    }

    /// As [`GpuProbe::new`], with NVML opened by `open_nvml` (tests replay recorded NVML
    /// answers through it).
    pub fn with_nvml(choice: Choice, device: u32, ctx: &Context, open_nvml: NvmlOpener) -> Self {
        GpuProbe {
            selector: Arc::new(Mutex::new(Selector {
                choice,
                device,
                roots: ctx.roots.clone(),
                open_nvml,
                backend: None,
                last_failure: None,
            })),
            reader: Default::default(),
        }
    }
}

#[async_trait]
impl Probe for GpuProbe {
    async fn read(&mut self) -> Reading {
        let selector = self.selector.clone();
        let r = self
            .reader
            .run(move || match selector.lock() {
                Ok(mut s) => s.read(),
                Err(_) => Reading::Unknown("the GPU reader failed earlier (panicked)".into()),
            })
            .await;
        r.unwrap_or_else(Reading::Unknown)
    }
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
                crate::probe::ProbeKind::Gpu.metric(name).is_some(),
                "{name} is not in METRICS"
            );
        }
    }

    #[tokio::test]
    async fn backend_none_watches_nothing() {
        let mut p = GpuProbe::new("none", 0, &Context::default());
        let Reading::Value {
            metrics, detail, ..
        } = p.read().await
        else {
            panic!()
        };
        assert!(metrics.is_empty());
        assert!(detail.contains("backend = \"none\""), "{detail}");
    }
}
