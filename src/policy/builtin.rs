//! The built-in checks, for a box with no policy file: chosen from facts about the host,
//! which the probe layer gathers off the daemon's loop (`probe::facts`). Pure.

use std::time::Duration;

use super::check::OLLAMA_URL_DEFAULT;
use super::set::PolicySet;
use crate::core::check::{
    CheckSpec, GpuChoice, ProbeParams, EVERY_DEFAULT_SECS, TIMEOUT_DEFAULT_SECS,
};
use crate::core::probe_kind::ProbeKind;
use crate::core::threshold;

/// Docker's standard socket (the built-in checks watch containers when it exists).
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// What the built-in checks depend on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// A temperature sensor reads a value.
    pub thermal_sensors: bool,
    /// A GPU answers: Jetson sysfs or an NVIDIA driver.
    pub gpu: bool,
    /// Docker's socket exists.
    pub docker_socket: bool,
    /// Something answers on Ollama's standard port.
    pub ollama: bool,
}

/// The built-in checks for what this host has: the root file system and memory always;
/// temperatures when the host has sensors; the GPU when there is one; containers when
/// Docker's socket is there; Ollama when it answers on 127.0.0.1:11434.
pub fn builtin(facts: &HostFacts) -> PolicySet {
    let kind_cond = |k: ProbeKind, s: &str| threshold::parse(s, k).expect("built-in threshold");
    let mut checks = vec![
        CheckSpec {
            name: "root-disk".into(),
            params: ProbeParams::Disk { path: "/".into() },
            every: Duration::from_secs(30),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: vec![kind_cond(ProbeKind::Disk, "used > 85%")],
            crit: vec![
                kind_cond(ProbeKind::Disk, "used > 95%"),
                kind_cond(ProbeKind::Disk, "inodes_used > 95%"),
            ],
            origin: "built-in".into(),
        },
        CheckSpec {
            name: "memory".into(),
            params: ProbeParams::Memory,
            every: Duration::from_secs(EVERY_DEFAULT_SECS),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: vec![kind_cond(ProbeKind::Memory, "available < 10%")],
            crit: vec![kind_cond(ProbeKind::Memory, "available < 5%")],
            origin: "built-in".into(),
        },
    ];
    if facts.thermal_sensors {
        checks.push(CheckSpec {
            name: "thermal".into(),
            params: ProbeParams::Thermal {
                sensors: Vec::new(),
            },
            every: Duration::from_secs(EVERY_DEFAULT_SECS),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: vec![kind_cond(ProbeKind::Thermal, "temperature > 85")],
            crit: vec![kind_cond(ProbeKind::Thermal, "temperature > 95")],
            origin: "built-in".into(),
        });
    }
    // The GPU, when there is one: Jetson's integrated GPU in sysfs, or an NVIDIA driver.
    if facts.gpu {
        checks.push(CheckSpec {
            name: "gpu".into(),
            params: ProbeParams::Gpu {
                backend: GpuChoice::Auto,
                device: 0,
            },
            every: Duration::from_secs(EVERY_DEFAULT_SECS),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: vec![kind_cond(ProbeKind::Gpu, "memory_used > 90%")],
            crit: vec![kind_cond(ProbeKind::Gpu, "temperature > 95")],
            origin: "built-in".into(),
        });
    }
    // Docker, when its socket is there: every container, one check each.
    if facts.docker_socket {
        checks.push(CheckSpec {
            name: "docker".into(),
            params: ProbeParams::Containers {
                patterns: vec!["*".into()],
            },
            every: Duration::from_secs(30),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: Vec::new(),
            crit: Vec::new(),
            origin: "built-in".into(),
        });
    }
    // Ollama, when it answers on its standard port.
    if facts.ollama {
        checks.push(CheckSpec {
            name: "ollama".into(),
            params: ProbeParams::Ollama {
                url: OLLAMA_URL_DEFAULT.into(),
                probe_model: None,
            },
            every: Duration::from_secs(EVERY_DEFAULT_SECS),
            timeout: Duration::from_secs(3),
            warn: Vec::new(),
            crit: Vec::new(),
            origin: "built-in".into(),
        });
    }
    PolicySet {
        checks,
        rules: Vec::new(),
        files: Vec::new(),
        builtin: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &PolicySet) -> Vec<&str> {
        set.checks.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn a_bare_host_gets_disk_and_memory() {
        let set = builtin(&HostFacts::default());
        assert!(set.builtin && set.rules.is_empty());
        assert_eq!(names(&set), ["root-disk", "memory"]);
    }

    #[test]
    fn each_fact_adds_its_check() {
        let all = HostFacts {
            thermal_sensors: true,
            gpu: true,
            docker_socket: true,
            ollama: true,
        };
        let set = builtin(&all);
        assert_eq!(
            names(&set),
            ["root-disk", "memory", "thermal", "gpu", "docker", "ollama"]
        );
        let docker = set.checks.iter().find(|c| c.name == "docker").unwrap();
        assert_eq!(
            docker.params,
            ProbeParams::Containers {
                patterns: vec!["*".into()]
            }
        );
    }
}
