//! `systemd`: one unit over org.freedesktop.systemd1.
//!
//! NOT IMPLEMENTED YET: this module is a placeholder whose probe answers `unknown`.

#![allow(unused_variables, dead_code)]

use async_trait::async_trait;

use super::{Context, MetricSpec, Probe, Reading, Unit};

/// Metrics of the `systemd` probe.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "n_restarts",
        unit: Unit::Count,
        help: "NRestarts: automatic restarts of the unit since it was last started by hand",
        optional: false,
    },
    MetricSpec {
        name: "exec_main_status",
        unit: Unit::Number,
        help: "ExecMainStatus: exit status (or signal) of the main process's last run",
        optional: false,
    },
];

/// The probe.
pub struct SystemdProbe {}

impl SystemdProbe {
    /// Builds the probe.
    pub fn new(unit: String, _ctx: &Context) -> Self {
        SystemdProbe {}
    }
}

#[async_trait]
impl Probe for SystemdProbe {
    async fn read(&mut self) -> Reading {
        Reading::Unknown("not implemented yet".into())
    }
}
