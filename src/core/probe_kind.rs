//! The probe catalogue: the kinds this build knows and the metrics each reports.

use std::fmt;

use crate::core::metric::MetricSpec;
use crate::core::metric_tables as tables;

/// The probe kinds this build of vigild knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Disk,
    Memory,
    Thermal,
    Smart,
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
        ProbeKind::Smart,
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
            ProbeKind::Smart => "smart",
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
            ProbeKind::Disk => tables::DISK,
            ProbeKind::Memory => tables::MEMORY,
            ProbeKind::Thermal => tables::THERMAL,
            ProbeKind::Smart => tables::SMART,
            ProbeKind::Systemd => tables::SYSTEMD,
            ProbeKind::Container | ProbeKind::Containers => tables::CONTAINER,
            ProbeKind::Ollama => tables::OLLAMA,
            ProbeKind::Gpu => tables::GPU,
            ProbeKind::Http => tables::HTTP,
            ProbeKind::Tcp => tables::TCP,
            ProbeKind::Exec => tables::EXEC,
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

#[cfg(test)]
mod tests {
    use super::*;

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
