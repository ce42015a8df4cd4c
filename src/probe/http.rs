//! `http`: a GET with an expected status.
//!
//! NOT IMPLEMENTED YET: this module is a placeholder whose probe answers `unknown`.

#![allow(unused_variables, dead_code)]

use async_trait::async_trait;

use super::{MetricSpec, Probe, Reading, Unit};

/// Metrics of the `http` probe.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "status_code",
        unit: Unit::Number,
        help: "HTTP status of the answer",
        optional: false,
    },
    MetricSpec {
        name: "latency_ms",
        unit: Unit::Milliseconds,
        help: "time to the answer's head",
        optional: false,
    },
];

/// The probe.
pub struct HttpProbe {}

impl HttpProbe {
    /// Builds the probe.
    pub fn new(url: String, expect_status: Vec<u16>, timeout: std::time::Duration) -> Self {
        HttpProbe {}
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn read(&mut self) -> Reading {
        Reading::Unknown("not implemented yet".into())
    }
}
