//! `tcp`: a connect.
//!
//! NOT IMPLEMENTED YET: this module is a placeholder whose probe answers `unknown`.

#![allow(unused_variables, dead_code)]

use async_trait::async_trait;

use super::{MetricSpec, Probe, Reading, Unit};

/// Metrics of the `tcp` probe.
pub const METRICS: &[MetricSpec] = &[MetricSpec {
    name: "latency_ms",
    unit: Unit::Milliseconds,
    help: "time to connect",
    optional: false,
}];

/// The probe.
pub struct TcpProbe {}

impl TcpProbe {
    /// Builds the probe.
    pub fn new(address: String, timeout: std::time::Duration) -> Self {
        TcpProbe {}
    }
}

#[async_trait]
impl Probe for TcpProbe {
    async fn read(&mut self) -> Reading {
        Reading::Unknown("not implemented yet".into())
    }
}
