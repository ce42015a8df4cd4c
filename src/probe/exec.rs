//! `exec`: a command's exit status.
//!
//! NOT IMPLEMENTED YET: this module is a placeholder whose probe answers `unknown`.

#![allow(unused_variables, dead_code)]

use async_trait::async_trait;

use super::{MetricSpec, Probe, Reading, Unit};

/// Metrics of the `exec` probe.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "exit_code",
        unit: Unit::Number,
        help: "exit status of the command",
        optional: false,
    },
    MetricSpec {
        name: "duration_ms",
        unit: Unit::Milliseconds,
        help: "run time of the command",
        optional: false,
    },
];

/// The probe.
pub struct ExecProbe {}

impl ExecProbe {
    /// Builds the probe.
    pub fn new(command: Vec<String>, timeout: std::time::Duration) -> Self {
        ExecProbe {}
    }
}

#[async_trait]
impl Probe for ExecProbe {
    async fn read(&mut self) -> Reading {
        Reading::Unknown("not implemented yet".into())
    }
}
