//! Checks as a policy defines them: a name, a probe kind with its typed settings, an
//! interval, a timeout and thresholds.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::core::probe_kind::ProbeKind;
use crate::core::threshold::Condition;

/// Default probe interval.
pub const EVERY_DEFAULT_SECS: u64 = 10;
/// Default probe timeout.
pub const TIMEOUT_DEFAULT_SECS: u64 = 5;

/// Members of a `containers` group are checks named `container:NAME`; actions name
/// containers the same way.
pub const CONTAINER_PREFIX: &str = "container:";
/// Actions on systemd units: `unit:NAME`.
pub const UNIT_PREFIX: &str = "unit:";
/// Signals go to processes: `process:NAME`.
pub const PROCESS_PREFIX: &str = "process:";

/// The check name of a container that a `containers` group found.
pub fn container_check(container: &str) -> String {
    format!("{CONTAINER_PREFIX}{container}")
}

/// Which GPU backend a `gpu` check reads (`backend = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuChoice {
    /// NVML where the driver answers, else Jetson sysfs.
    Auto,
    Nvml,
    Jetson,
    /// Watch no GPU.
    None,
}

impl GpuChoice {
    /// Every choice, as policies spell them.
    pub const ALL: &'static [GpuChoice] = &[
        GpuChoice::Auto,
        GpuChoice::Nvml,
        GpuChoice::Jetson,
        GpuChoice::None,
    ];

    /// `auto`, `nvml`, `jetson` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            GpuChoice::Auto => "auto",
            GpuChoice::Nvml => "nvml",
            GpuChoice::Jetson => "jetson",
            GpuChoice::None => "none",
        }
    }

    /// Parses a policy's `backend = …`.
    pub fn parse(s: &str) -> Option<GpuChoice> {
        GpuChoice::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for GpuChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Probe-specific settings of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "probe", rename_all = "lowercase")]
pub enum ProbeParams {
    Disk {
        path: PathBuf,
    },
    Memory,
    Thermal {
        sensors: Vec<String>,
    },
    /// SMART / NVMe health of one disk, as `vigil-smart@.service` recorded it.
    Smart {
        /// The device, `/dev/NAME` (`NAME` lowercase letters and digits).
        device: PathBuf,
        /// Where the unit writes its output: `<dir>/dev-NAME.json` (and `.exit`).
        dir: PathBuf,
        /// Whether vigild starts the unit when the output is older than `every`; `false`
        /// only reads (another timer or a test refreshes it).
        refresh: bool,
    },
    /// One systemd unit.
    Systemd {
        unit: String,
    },
    /// One container by name (`container = "…"`, default: the check's name).
    Container {
        container: String,
    },
    /// Every container whose name matches a glob: one check `container:NAME` each.
    Containers {
        #[serde(rename = "match")]
        patterns: Vec<String>,
    },
    Ollama {
        url: String,
        probe_model: Option<String>,
    },
    Gpu {
        backend: GpuChoice,
        /// NVML device index.
        device: u32,
    },
    Http {
        url: String,
        expect_status: Vec<u16>,
    },
    Tcp {
        address: String,
    },
    Exec {
        command: Vec<String>,
    },
}

impl ProbeParams {
    /// The probe kind these settings are for.
    pub fn kind(&self) -> ProbeKind {
        match self {
            ProbeParams::Disk { .. } => ProbeKind::Disk,
            ProbeParams::Memory => ProbeKind::Memory,
            ProbeParams::Thermal { .. } => ProbeKind::Thermal,
            ProbeParams::Smart { .. } => ProbeKind::Smart,
            ProbeParams::Systemd { .. } => ProbeKind::Systemd,
            ProbeParams::Container { .. } => ProbeKind::Container,
            ProbeParams::Containers { .. } => ProbeKind::Containers,
            ProbeParams::Ollama { .. } => ProbeKind::Ollama,
            ProbeParams::Gpu { .. } => ProbeKind::Gpu,
            ProbeParams::Http { .. } => ProbeKind::Http,
            ProbeParams::Tcp { .. } => ProbeKind::Tcp,
            ProbeParams::Exec { .. } => ProbeKind::Exec,
        }
    }
}

/// A validated check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckSpec {
    pub name: String,
    #[serde(flatten)]
    pub params: ProbeParams,
    #[serde(serialize_with = "ser_duration")]
    pub every: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    #[serde(serialize_with = "ser_conditions")]
    pub warn: Vec<Condition>,
    #[serde(serialize_with = "ser_conditions")]
    pub crit: Vec<Condition>,
    /// `FILE:LINE` of the definition, or `built-in`.
    pub origin: String,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn ser_conditions<S: serde::Serializer>(c: &[Condition], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(c.iter().map(|c| c.text.as_str()))
}

impl CheckSpec {
    /// The probe kind of this check.
    pub fn probe(&self) -> ProbeKind {
        self.params.kind()
    }
}

/// A check name: `[a-z0-9][a-z0-9_.:-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_choices() {
        assert!(valid_name("root-disk") && valid_name("container:db.1"));
        assert!(!valid_name("Root") && !valid_name("-x") && !valid_name(""));
        for c in GpuChoice::ALL {
            assert_eq!(GpuChoice::parse(c.as_str()), Some(*c));
        }
        assert_eq!(container_check("ollama"), "container:ollama");
    }
}
