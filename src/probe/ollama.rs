//! `ollama`: liveness and readiness of an Ollama server over its HTTP API.
//!
//! NOT IMPLEMENTED YET: this module is a placeholder whose probe answers `unknown`.

#![allow(unused_variables, dead_code)]

use async_trait::async_trait;

use super::{MetricSpec, Probe, Reading, Unit};

/// Metrics of the `ollama` probe.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "models_loaded",
        unit: Unit::Count,
        help: "models loaded (/api/ps)",
        optional: false,
    },
    MetricSpec {
        name: "vram_bytes",
        unit: Unit::Bytes,
        help: "sum of size_vram of the loaded models",
        optional: false,
    },
    MetricSpec {
        name: "version_ms",
        unit: Unit::Milliseconds,
        help: "time to answer /api/version",
        optional: false,
    },
    MetricSpec {
        name: "generate_ms",
        unit: Unit::Milliseconds,
        help: "time of the one-token /api/generate (only with probe_model)",
        optional: true,
    },
];

/// The probe.
pub struct OllamaProbe {}

impl OllamaProbe {
    /// Builds the probe.
    pub fn new(url: String, probe_model: Option<String>, timeout: std::time::Duration) -> Self {
        OllamaProbe {}
    }
}

#[async_trait]
impl Probe for OllamaProbe {
    async fn read(&mut self) -> Reading {
        Reading::Unknown("not implemented yet".into())
    }
}
