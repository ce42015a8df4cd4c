//! Readings: what one probe run found, as named metrics with units.

use std::collections::BTreeMap;
use std::fmt;

use crate::core::health::Status;

/// The unit of a metric; thresholds with `%` only compare against `Percent` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 0–100.
    Percent,
    Bytes,
    /// Degrees Celsius.
    Celsius,
    /// A plain number of things (events, kills, models).
    Count,
    /// Bytes per second.
    BytesPerSecond,
    Hours,
    Milliseconds,
    Watts,
    /// A ratio such as a load average, or a code (exit status, HTTP status).
    Number,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Percent => "%",
            Unit::Bytes => "bytes",
            Unit::Celsius => "°C",
            Unit::Count => "count",
            Unit::BytesPerSecond => "bytes/s",
            Unit::Hours => "hours",
            Unit::Milliseconds => "ms",
            Unit::Watts => "W",
            Unit::Number => "number",
        })
    }
}

/// One metric a probe kind reports, for validation and documentation.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    pub name: &'static str,
    pub unit: Unit,
    pub help: &'static str,
    /// Reported only where the host has the source (PSI needs a kernel with
    /// CONFIG_PSI): a threshold on it is skipped, not `unknown`, when it is absent.
    pub optional: bool,
}

/// Metric values by name.
pub type Metrics = BTreeMap<String, f64>;

/// What one probe run found.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// The source answered.
    Value {
        /// A status the probe itself knows (a failed unit); `None` leaves it to thresholds.
        status: Option<Status>,
        /// One line for people: what was read.
        detail: String,
        metrics: Metrics,
    },
    /// The probe could not tell, and why.
    Unknown(String),
    /// One reading per discovered thing (`containers`): keys are the full names of the
    /// checks they become (`container:NAME`). Members appear and disappear with the things.
    Group(BTreeMap<String, Reading>),
}

impl Reading {
    /// A reading with metrics only.
    pub fn metrics(detail: impl Into<String>, metrics: Metrics) -> Reading {
        Reading::Value {
            status: None,
            detail: detail.into(),
            metrics,
        }
    }
}

/// Bytes in a short human form (`3.2 GiB`).
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b;
    let mut i = 0;
    while v.abs() >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
