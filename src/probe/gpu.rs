//! `gpu`: NVML or Jetson sysfs behind one trait.
//!
//! NOT IMPLEMENTED YET: this module is a placeholder whose probe answers `unknown`.

#![allow(unused_variables, dead_code)]

use async_trait::async_trait;

use super::{Context, MetricSpec, Probe, Reading, Unit};

/// Metrics of the `gpu` probe.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "memory_used",
        unit: Unit::Percent,
        help: "GPU memory used",
        optional: false,
    },
    MetricSpec {
        name: "memory_used_bytes",
        unit: Unit::Bytes,
        help: "GPU memory used, bytes",
        optional: false,
    },
    MetricSpec {
        name: "utilization",
        unit: Unit::Percent,
        help: "GPU busy",
        optional: false,
    },
    MetricSpec {
        name: "temperature",
        unit: Unit::Celsius,
        help: "GPU temperature",
        optional: true,
    },
    MetricSpec {
        name: "power_w",
        unit: Unit::Watts,
        help: "GPU (or module) power",
        optional: true,
    },
    MetricSpec {
        name: "xid_errors",
        unit: Unit::Count,
        help: "XID errors since the probe started (NVML)",
        optional: true,
    },
    MetricSpec {
        name: "ecc_errors",
        unit: Unit::Count,
        help: "uncorrected ECC errors (NVML)",
        optional: true,
    },
];

/// The probe.
pub struct GpuProbe {}

impl GpuProbe {
    /// Builds the probe.
    pub fn new(backend: &str, device: u32, _ctx: &Context) -> Self {
        GpuProbe {}
    }
}

#[async_trait]
impl Probe for GpuProbe {
    async fn read(&mut self) -> Reading {
        Reading::Unknown("not implemented yet".into())
    }
}
