//! Probes: thin adapters that read one source and return a [`Reading`].
//!
//! A probe never decides health on thresholds; it reports named metrics (and, for probes
//! that know better, such as a failed unit, a status of their own). The health model and the
//! policy's thresholds turn readings into statuses. A probe whose source is missing or
//! broken returns [`Reading::Unknown`] with the reason; it never panics or blocks the runtime.

pub mod container;
pub mod disk;
pub mod exec;
pub mod gpu;
pub mod http;
pub mod memory;
pub mod ollama;
pub mod systemd;
pub mod tcp;
pub mod thermal;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::health::Status;
use crate::policy::{CheckSpec, ProbeParams};

/// The unit of a metric; thresholds with `%` only compare against `Percent` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 0–100.
    Percent,
    Bytes,
    /// Degrees Celsius.
    Celsius,
    /// A plain number of things (events, kills, models).
    Count,
    /// Bytes per second.
    BytesPerSecond,
    Hours,
    Milliseconds,
    Watts,
    /// A ratio such as a load average, or a code (exit status, HTTP status).
    Number,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Percent => "%",
            Unit::Bytes => "bytes",
            Unit::Celsius => "°C",
            Unit::Count => "count",
            Unit::BytesPerSecond => "bytes/s",
            Unit::Hours => "hours",
            Unit::Milliseconds => "ms",
            Unit::Watts => "W",
            Unit::Number => "number",
        })
    }
}

/// One metric a probe kind reports, for validation and documentation.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    pub name: &'static str,
    pub unit: Unit,
    pub help: &'static str,
    /// Reported only where the host has the source (PSI needs a kernel with
    /// CONFIG_PSI): a threshold on it is skipped, not `unknown`, when it is absent.
    pub optional: bool,
}

/// The probe kinds this build of vigild knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Disk,
    Memory,
    Thermal,
    Systemd,
    Container,
    Containers,
    Ollama,
    Gpu,
    Http,
    Tcp,
    Exec,
}

impl ProbeKind {
    /// Every kind this build supports, in the order `--help` and errors list them.
    pub const ALL: &'static [ProbeKind] = &[
        ProbeKind::Systemd,
        ProbeKind::Container,
        ProbeKind::Containers,
        ProbeKind::Ollama,
        ProbeKind::Gpu,
        ProbeKind::Thermal,
        ProbeKind::Disk,
        ProbeKind::Memory,
        ProbeKind::Http,
        ProbeKind::Tcp,
        ProbeKind::Exec,
    ];

    /// Kinds named by the design that later versions add; named in errors so an operator
    /// knows the policy is ahead of the daemon rather than misspelt.
    pub const PLANNED: &'static [&'static str] = &[];

    /// The name used in policies (`probe = "disk"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Disk => "disk",
            ProbeKind::Memory => "memory",
            ProbeKind::Thermal => "thermal",
            ProbeKind::Systemd => "systemd",
            ProbeKind::Container => "container",
            ProbeKind::Containers => "containers",
            ProbeKind::Ollama => "ollama",
            ProbeKind::Gpu => "gpu",
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Exec => "exec",
        }
    }

    /// Parses a policy's `probe = …`.
    pub fn parse(s: &str) -> Option<ProbeKind> {
        ProbeKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The metrics this kind reports; thresholds may name only these.
    pub fn metrics(self) -> &'static [MetricSpec] {
        match self {
            ProbeKind::Disk => disk::METRICS,
            ProbeKind::Memory => memory::METRICS,
            ProbeKind::Thermal => thermal::METRICS,
            ProbeKind::Systemd => systemd::METRICS,
            ProbeKind::Container | ProbeKind::Containers => container::METRICS,
            ProbeKind::Ollama => ollama::METRICS,
            ProbeKind::Gpu => gpu::METRICS,
            ProbeKind::Http => http::METRICS,
            ProbeKind::Tcp => tcp::METRICS,
            ProbeKind::Exec => exec::METRICS,
        }
    }

    /// One metric's spec by name.
    pub fn metric(self, name: &str) -> Option<&'static MetricSpec> {
        self.metrics().iter().find(|m| m.name == name)
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metric values by name.
pub type Metrics = BTreeMap<String, f64>;

/// What one probe run found.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// The source answered.
    Value {
        /// A status the probe itself knows (a failed unit); `None` leaves it to thresholds.
        status: Option<Status>,
        /// One line for people: what was read.
        detail: String,
        metrics: Metrics,
    },
    /// The probe could not tell, and why.
    Unknown(String),
    /// One reading per discovered thing (`containers`): keys are the full names of the
    /// checks they become (`container:NAME`). Members appear and disappear with the things.
    Group(BTreeMap<String, Reading>),
}

impl Reading {
    /// A reading with metrics only.
    pub fn metrics(detail: impl Into<String>, metrics: Metrics) -> Reading {
        Reading::Value {
            status: None,
            detail: detail.into(),
            metrics,
        }
    }
}

/// What probes need from the daemon's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub roots: HostRoots,
    /// Docker Engine address (`[docker] host`); `None` means the standard socket.
    pub docker_host: Option<String>,
    /// D-Bus address for the systemd probe; `None` means the system bus.
    pub systemd_bus: Option<String>,
}

/// Where probes read procfs and sysfs; settable so tests use prepared trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoots {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

impl Default for HostRoots {
    fn default() -> Self {
        HostRoots {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
        }
    }
}

/// Runs blocking reads on tokio's blocking pool with at most one in flight: when a read
/// hangs (a dead NFS mount, a stuck I²C sensor) and the caller's timeout gives up on it, the
/// next call waits for that same read instead of starting another thread.
pub struct Blocking<T> {
    inflight: Option<tokio::task::JoinHandle<T>>,
}

impl<T: Send + 'static> Default for Blocking<T> {
    fn default() -> Self {
        Blocking { inflight: None }
    }
}

impl<T: Send + 'static> Blocking<T> {
    /// Runs `f` on the blocking pool, or keeps waiting for the read still in flight.
    pub async fn run(&mut self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let handle = self
            .inflight
            .get_or_insert_with(|| tokio::task::spawn_blocking(f));
        let result = handle.await;
        self.inflight = None;
        result.map_err(|e| format!("probe thread failed: {e}"))
    }
}

/// A source of readings for one check.
#[async_trait]
pub trait Probe: Send {
    /// Takes one reading. Slow or blocking work runs off the runtime; the caller bounds the
    /// whole call with the check's `timeout`.
    async fn read(&mut self) -> Reading;

    /// Event-driven probes (unit or container state streams) return a notifier that fires
    /// when something changed, so the check is read at once instead of on its next tick.
    fn wake(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// Builds the probe for a check.
pub fn build(spec: &CheckSpec, ctx: &Context) -> Box<dyn Probe> {
    match &spec.params {
        ProbeParams::Disk { path } => Box::new(disk::DiskProbe::new(path.clone())),
        ProbeParams::Memory => Box::new(memory::MemoryProbe::new(ctx.roots.proc.clone())),
        ProbeParams::Thermal { sensors } => Box::new(thermal::ThermalProbe::new(
            ctx.roots.sys.clone(),
            sensors.clone(),
        )),
        ProbeParams::Systemd { unit } => Box::new(systemd::SystemdProbe::new(unit.clone(), ctx)),
        ProbeParams::Container { container } => {
            Box::new(container::ContainerProbe::new(container.clone(), ctx))
        }
        ProbeParams::Containers { patterns } => {
            Box::new(container::ContainersProbe::new(patterns.clone(), ctx))
        }
        ProbeParams::Ollama { url, probe_model } => Box::new(ollama::OllamaProbe::new(
            url.clone(),
            probe_model.clone(),
            spec.timeout,
        )),
        ProbeParams::Gpu { backend, device } => Box::new(gpu::GpuProbe::new(backend, *device, ctx)),
        ProbeParams::Http { url, expect_status } => Box::new(http::HttpProbe::new(
            url.clone(),
            expect_status.clone(),
            spec.timeout,
        )),
        ProbeParams::Tcp { address } => Box::new(tcp::TcpProbe::new(address.clone(), spec.timeout)),
        ProbeParams::Exec { command } => {
            Box::new(exec::ExecProbe::new(command.clone(), spec.timeout))
        }
    }
}

/// Matches `name` against a shell-style glob with `*` and `?` (no allocation).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'?' {
            // `?` is one character, which may be several bytes in UTF-8.
            pi += 1;
            ni += 1;
            while ni < n.len() && (n[ni] & 0xC0) == 0x80 {
                ni += 1;
            }
        } else if pi < p.len() && p[pi] != b'*' && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether a pattern has glob characters at all.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("arasul-*", "arasul-db"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*-therm", "CPU-therm"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("ollama", "ollama2"));
        assert!(!glob_match("?", ""));
        assert!(glob_match("caf?", "café"));
        assert!(glob_match("*é", "café"));
    }

    #[tokio::test]
    async fn a_hung_read_keeps_one_thread_not_one_per_tick() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let started = Arc::new(AtomicUsize::new(0));
        let mut slot = Blocking::<u32>::default();
        for _ in 0..5 {
            let s = started.clone();
            let r = tokio::time::timeout(
                std::time::Duration::from_millis(20),
                slot.run(move || {
                    s.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    7
                }),
            )
            .await;
            assert!(r.is_err(), "the read is still hanging");
        }
        assert_eq!(started.load(Ordering::SeqCst), 1);
        // When it finally returns, its answer is used and the next call starts afresh.
        assert_eq!(slot.run(|| 8).await, Ok(7));
        assert_eq!(slot.run(|| 8).await, Ok(8));
    }

    #[test]
    fn every_kind_has_metrics_with_unique_names() {
        for k in ProbeKind::ALL {
            let names: std::collections::BTreeSet<_> = k.metrics().iter().map(|m| m.name).collect();
            assert_eq!(names.len(), k.metrics().len(), "{k}");
            assert!(!names.is_empty());
            assert_eq!(ProbeKind::parse(k.as_str()), Some(*k));
        }
    }
}
