//! `container` and `containers`: Docker containers over the Engine API.
//!
//! NOT IMPLEMENTED YET: this module is a placeholder whose probe answers `unknown`.

#![allow(unused_variables, dead_code)]

use async_trait::async_trait;

use super::{Context, MetricSpec, Probe, Reading, Unit};

/// Metrics of the `container` and `containers` probes.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "restart_count",
        unit: Unit::Count,
        help: "RestartCount: restarts by Docker's restart policy",
        optional: false,
    },
    MetricSpec {
        name: "exit_code",
        unit: Unit::Number,
        help: "ExitCode of the last run (0 while running)",
        optional: false,
    },
    MetricSpec {
        name: "oom_killed",
        unit: Unit::Number,
        help: "1 when the kernel OOM-killed the container's last run, else 0",
        optional: false,
    },
];

/// The probe.
pub struct ContainerProbe {}

impl ContainerProbe {
    /// Builds the probe.
    pub fn new(container: String, _ctx: &Context) -> Self {
        ContainerProbe {}
    }
}

#[async_trait]
impl Probe for ContainerProbe {
    async fn read(&mut self) -> Reading {
        Reading::Unknown("not implemented yet".into())
    }
}

/// The `containers` probe.
pub struct ContainersProbe {}

impl ContainersProbe {
    /// Builds the probe.
    pub fn new(patterns: Vec<String>, _ctx: &Context) -> Self {
        ContainersProbe {}
    }
}

#[async_trait]
impl Probe for ContainersProbe {
    async fn read(&mut self) -> Reading {
        Reading::Unknown("not implemented yet".into())
    }
}
