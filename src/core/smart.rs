//! SMART and NVMe health from `smartctl --json -a` (smartmontools 7.x, JSON format 1.0),
//! as a pure function: the document in, a [`Health`] (or why there is none) out, and the
//! status it means.
//!
//! Status (the probe's own; thresholds may add to it): overall health failed, an NVMe
//! critical-warning bit, available spare below its threshold, NVMe media errors higher than
//! at the previous reading, or an ATA attribute failing now → crit. Everything else, wear
//! (`percentage_used`) included, is left to the check's thresholds.

use serde_json::Value;

use crate::core::health::Status;
use crate::core::metric::{Metrics, Reading};

/// smartctl exit-status bit 0: the command line did not parse (or the device type could
/// not be detected).
pub const EXIT_BAD_COMMAND: i64 = 1 << 0;
/// Bit 1: the device could not be opened, or did not identify itself.
pub const EXIT_OPEN_FAILED: i64 = 1 << 1;
/// Bit 2: a SMART or other command to the disk failed.
pub const EXIT_COMMAND_FAILED: i64 = 1 << 2;

/// What one `smartctl -a` said about a disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// `device.name`, e.g. `/dev/nvme0`.
    pub device: String,
    /// `device.protocol`: `NVMe`, `ATA`, `SCSI`.
    pub protocol: String,
    pub model: Option<String>,
    /// `smartctl.exit_status`: a bitmask, non-zero for a disk with problems too.
    pub exit_status: i64,
    /// `smart_status.passed`: the disk's own overall verdict.
    pub passed: bool,
    pub temperature: Option<f64>,
    pub power_on_hours: Option<f64>,
    /// NVMe: the critical-warning bitmask of the SMART / Health Information log.
    pub critical_warning: Option<u64>,
    /// NVMe: estimated share of the rated endurance used, in % (may exceed 100).
    pub percentage_used: Option<f64>,
    /// NVMe: remaining spare capacity, in %.
    pub available_spare: Option<f64>,
    /// NVMe: the spare below which the disk itself warns, in %.
    pub available_spare_threshold: Option<f64>,
    /// NVMe: unrecovered data-integrity errors over the disk's life.
    pub media_errors: Option<f64>,
    /// ATA attribute 5, raw.
    pub reallocated_sectors: Option<f64>,
    /// ATA attribute 197, raw.
    pub pending_sectors: Option<f64>,
    /// ATA attribute 198, raw.
    pub offline_uncorrectable: Option<f64>,
    /// ATA attributes at or below their threshold now (`when_failed: "now"`).
    pub failing_attributes: Vec<String>,
}

/// The meaning of each NVMe critical-warning bit (NVMe base specification, log page 02h).
const CRITICAL_WARNING_BITS: [&str; 6] = [
    "available spare below threshold",
    "temperature above a threshold",
    "NVM subsystem reliability degraded",
    "media placed in read-only mode",
    "volatile memory backup device failed",
    "persistent memory region read-only",
];

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// smartctl's own messages (`smartctl.messages[].string`), joined.
fn messages(v: &Value) -> String {
    v.pointer("/smartctl/messages")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| x.get("string").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Reads a `smartctl --json -a` document. `Err` says why it holds no health reading and
/// what to do about it.
pub fn parse(v: &Value) -> Result<Health, String> {
    let Some(exit_status) = v.pointer("/smartctl/exit_status").and_then(Value::as_i64) else {
        return Err("not smartctl JSON output (no smartctl.exit_status)".into());
    };
    let device = text(v, &["device", "name"])
        .or_else(|| {
            v.pointer("/smartctl/argv")
                .and_then(Value::as_array)
                .and_then(|a| a.last())
                .and_then(Value::as_str)
        })
        .unwrap_or("the device")
        .to_string();
    let said = messages(v);
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": smartctl says \"{said}\"")
    };
    let passed = v.pointer("/smart_status/passed").and_then(Value::as_bool);
    let nvme = v.get("nvme_smart_health_information_log");
    let ata = v
        .pointer("/ata_smart_attributes/table")
        .and_then(Value::as_array);
    if passed.is_none() && nvme.is_none() && ata.is_none() {
        let why = if exit_status & EXIT_BAD_COMMAND != 0 {
            format!(
                "smartctl could not read {device} (exit status {exit_status}){said}; a virtual or \
                 USB-bridged disk may need `-d TYPE`, and one without SMART cannot be watched this way"
            )
        } else if exit_status & EXIT_OPEN_FAILED != 0 {
            format!(
                "smartctl could not open {device} (exit status {exit_status}){said}; check that \
                 the device exists and the policy's `device` names it"
            )
        } else if v.pointer("/smart_support/available") == Some(&Value::Bool(false)) {
            format!("{device} is not SMART-capable (smartctl: SMART unavailable); remove this check or point it at another disk")
        } else if v.pointer("/smart_support/enabled") == Some(&Value::Bool(false)) {
            format!("SMART is disabled on {device}: enable it with `smartctl -s on {device}`")
        } else {
            format!(
                "smartctl reported no SMART health for {device} (exit status {exit_status}){said}"
            )
        };
        return Err(why);
    }
    let Some(passed) = passed else {
        return Err(format!(
            "smartctl could not get the overall health of {device} (exit status {exit_status}){said}"
        ));
    };
    let mut h = Health {
        device,
        protocol: text(v, &["device", "protocol"]).unwrap_or("").to_string(),
        model: text(v, &["model_name"]).map(str::to_string),
        exit_status,
        passed,
        temperature: num(v, &["temperature", "current"]),
        power_on_hours: num(v, &["power_on_time", "hours"]),
        ..Health::default()
    };
    if let Some(n) = nvme {
        let f = |k: &str| n.get(k).and_then(Value::as_f64);
        h.critical_warning = n.get("critical_warning").and_then(Value::as_u64);
        h.percentage_used = f("percentage_used");
        h.available_spare = f("available_spare");
        h.available_spare_threshold = f("available_spare_threshold");
        h.media_errors = f("media_errors");
        h.temperature = h.temperature.or_else(|| f("temperature"));
        h.power_on_hours = h.power_on_hours.or_else(|| f("power_on_hours"));
    }
    for a in ata.into_iter().flatten() {
        let raw = num(a, &["raw", "value"]);
        match a.get("id").and_then(Value::as_u64) {
            Some(5) => h.reallocated_sectors = raw,
            Some(197) => h.pending_sectors = raw,
            Some(198) => h.offline_uncorrectable = raw,
            _ => {}
        }
        if text(a, &["when_failed"]) == Some("now") {
            let name = text(a, &["name"]).unwrap_or("?");
            let id = a.get("id").and_then(Value::as_u64).unwrap_or(0);
            h.failing_attributes.push(format!("{id} {name}"));
        }
    }
    // A zero temperature is what SCSI and some bridges answer for "no sensor".
    h.temperature = h.temperature.filter(|t| *t > 0.0);
    Ok(h)
}

/// The names of the critical-warning bits that are set.
pub fn critical_warnings(bits: u64) -> Vec<&'static str> {
    CRITICAL_WARNING_BITS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect()
}

/// The metrics of a reading (names as in the `smart` table of metric_tables.rs).
/// `media_errors_new` is the rise since `prev_media_errors` (0 on the first reading).
pub fn metrics(h: &Health, prev_media_errors: Option<f64>) -> Metrics {
    let mut m = Metrics::new();
    m.insert("passed".into(), if h.passed { 1.0 } else { 0.0 });
    m.insert("exit_status".into(), h.exit_status as f64);
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("temperature", h.temperature);
    put("power_on_hours", h.power_on_hours);
    put("critical_warning", h.critical_warning.map(|b| b as f64));
    put("percentage_used", h.percentage_used);
    put("available_spare", h.available_spare);
    put("available_spare_threshold", h.available_spare_threshold);
    put("media_errors", h.media_errors);
    put(
        "media_errors_new",
        h.media_errors
            .map(|now| prev_media_errors.map_or(0.0, |before| (now - before).max(0.0))),
    );
    put("reallocated_sectors", h.reallocated_sectors);
    put("pending_sectors", h.pending_sectors);
    put("offline_uncorrectable", h.offline_uncorrectable);
    m
}

/// Why the disk is critical, one phrase each (empty when nothing is).
pub fn problems(h: &Health, prev_media_errors: Option<f64>) -> Vec<String> {
    let mut out = Vec::new();
    if !h.passed {
        out.push("SMART overall health FAILED: back up and replace the disk".to_string());
    }
    if let Some(bits) = h.critical_warning.filter(|b| *b != 0) {
        out.push(format!(
            "NVMe critical warning 0x{bits:02x} ({})",
            critical_warnings(bits).join(", ")
        ));
    }
    if let (Some(spare), Some(min)) = (h.available_spare, h.available_spare_threshold) {
        if spare < min {
            out.push(format!(
                "available spare {spare}% below its threshold {min}%"
            ));
        }
    }
    if let (Some(now), Some(before)) = (h.media_errors, prev_media_errors) {
        if now > before {
            out.push(format!("media errors rose from {before} to {now}"));
        }
    }
    if !h.failing_attributes.is_empty() {
        out.push(format!(
            "attribute at or below its threshold now: {}",
            h.failing_attributes.join(", ")
        ));
    }
    out
}

/// The reading for a parsed document: crit with the reasons, else metrics only.
pub fn assess(h: &Health, prev_media_errors: Option<f64>) -> Reading {
    let m = metrics(h, prev_media_errors);
    let problems = problems(h, prev_media_errors);
    let mut facts = vec![format!(
        "{}{}",
        h.device,
        h.model
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    )];
    if let Some(p) = h.percentage_used {
        facts.push(format!("{p}% of endurance used"));
    }
    if let (Some(s), Some(t)) = (h.available_spare, h.available_spare_threshold) {
        facts.push(format!("spare {s}% (threshold {t}%)"));
    }
    if let Some(e) = h.media_errors {
        facts.push(format!("{e} media errors"));
    }
    for (what, v) in [
        ("reallocated", h.reallocated_sectors),
        ("pending", h.pending_sectors),
        ("offline uncorrectable", h.offline_uncorrectable),
    ] {
        if let Some(v) = v {
            facts.push(format!("{v} {what}"));
        }
    }
    if let Some(t) = h.temperature {
        facts.push(format!("{t} °C"));
    }
    if let Some(p) = h.power_on_hours {
        facts.push(format!("{p} h powered on"));
    }
    let facts = facts.join(", ");
    if problems.is_empty() {
        return Reading::metrics(format!("SMART passed: {facts}"), m);
    }
    Reading::Value {
        status: Some(Status::Crit),
        detail: format!("{}; {facts}", problems.join("; ")),
        metrics: m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let text = match name {
            "nvme-samsung-980pro" => {
                include_str!("../../tests/fixtures/smart/nvme-samsung-980pro.json")
            }
            "nvme-wd-sn530-worn" => {
                include_str!("../../tests/fixtures/smart/nvme-wd-sn530-worn.json")
            }
            "sata-crucial-mx500" => {
                include_str!("../../tests/fixtures/smart/sata-crucial-mx500.json")
            }
            "sata-wd-blue-failing" => {
                include_str!("../../tests/fixtures/smart/sata-wd-blue-failing.json")
            }
            "virtio-vda" => include_str!("../../tests/fixtures/smart/virtio-vda.json"),
            "usb-stick-no-smart" => {
                include_str!("../../tests/fixtures/smart/usb-stick-no-smart.json")
            }
            other => panic!("no fixture {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn healthy_nvme() {
        let h = parse(&fixture("nvme-samsung-980pro")).unwrap();
        assert_eq!(h.device, "/dev/nvme0");
        assert_eq!(h.protocol, "NVMe");
        assert!(h.passed);
        assert_eq!(h.critical_warning, Some(0));
        assert_eq!(h.percentage_used, Some(3.0));
        assert_eq!(h.available_spare, Some(100.0));
        assert_eq!(h.available_spare_threshold, Some(10.0));
        assert_eq!(h.media_errors, Some(0.0));
        assert_eq!(h.temperature, Some(41.0));
        assert_eq!(h.power_on_hours, Some(6120.0));
        assert_eq!(h.reallocated_sectors, None);
        let Reading::Value {
            status,
            detail,
            metrics,
        } = assess(&h, None)
        else {
            panic!()
        };
        assert_eq!(status, None);
        assert!(
            detail.starts_with("SMART passed: /dev/nvme0 (Samsung SSD 980 PRO 1TB)"),
            "{detail}"
        );
        assert_eq!(metrics["passed"], 1.0);
        assert_eq!(metrics["media_errors_new"], 0.0);
        assert_eq!(metrics["exit_status"], 0.0);
        assert!(!metrics.contains_key("pending_sectors"));
    }

    #[test]
    fn worn_nvme_is_left_to_the_wear_threshold() {
        let h = parse(&fixture("nvme-wd-sn530-worn")).unwrap();
        assert_eq!(h.percentage_used, Some(94.0));
        assert_eq!(h.power_on_hours, Some(31544.0));
        let Reading::Value {
            status, metrics, ..
        } = assess(&h, Some(0.0))
        else {
            panic!()
        };
        assert_eq!(status, None, "wear alone is the threshold's to judge");
        assert_eq!(metrics["percentage_used"], 94.0);
        assert_eq!(metrics["available_spare"], 63.0);
    }

    #[test]
    fn nvme_critical_warning_spare_and_rising_media_errors_are_crit() {
        let mut v = fixture("nvme-wd-sn530-worn");
        let log = &mut v["nvme_smart_health_information_log"];
        log["critical_warning"] = 0x05.into();
        log["available_spare"] = 8.into();
        log["media_errors"] = 12.into();
        let h = parse(&v).unwrap();
        let Reading::Value {
            status,
            detail,
            metrics,
        } = assess(&h, Some(9.0))
        else {
            panic!()
        };
        assert_eq!(status, Some(Status::Crit));
        for want in [
            "NVMe critical warning 0x05 (available spare below threshold, NVM subsystem reliability degraded)",
            "available spare 8% below its threshold 10%",
            "media errors rose from 9 to 12",
        ] {
            assert!(detail.contains(want), "{want:?} in {detail}");
        }
        assert_eq!(metrics["media_errors_new"], 3.0);
        // The same count again is not a rise.
        assert!(problems(&h, Some(12.0))
            .iter()
            .all(|p| !p.contains("media")));
    }

    #[test]
    fn healthy_sata() {
        let h = parse(&fixture("sata-crucial-mx500")).unwrap();
        assert_eq!(h.protocol, "ATA");
        assert!(h.passed);
        assert_eq!(h.reallocated_sectors, Some(0.0));
        assert_eq!(h.pending_sectors, Some(0.0));
        assert_eq!(h.offline_uncorrectable, Some(0.0));
        assert_eq!(h.temperature, Some(34.0));
        assert_eq!(h.power_on_hours, Some(14209.0));
        assert_eq!(h.percentage_used, None);
        assert!(h.failing_attributes.is_empty());
        let Reading::Value { status, .. } = assess(&h, None) else {
            panic!()
        };
        assert_eq!(status, None);
    }

    #[test]
    fn failing_sata_is_crit_with_its_counts() {
        let h = parse(&fixture("sata-wd-blue-failing")).unwrap();
        assert!(!h.passed);
        assert_eq!(h.exit_status, 88);
        assert_eq!(h.reallocated_sectors, Some(1848.0));
        assert_eq!(h.pending_sectors, Some(120.0));
        assert_eq!(h.offline_uncorrectable, Some(96.0));
        assert_eq!(h.failing_attributes, ["5 Reallocated_Sector_Ct"]);
        let Reading::Value {
            status,
            detail,
            metrics,
        } = assess(&h, None)
        else {
            panic!()
        };
        assert_eq!(status, Some(Status::Crit));
        assert!(
            detail.starts_with("SMART overall health FAILED"),
            "{detail}"
        );
        assert!(
            detail.contains("1848 reallocated, 120 pending, 96 offline uncorrectable"),
            "{detail}"
        );
        assert_eq!(metrics["passed"], 0.0);
        assert_eq!(metrics["exit_status"], 88.0);
    }

    #[test]
    fn no_health_is_an_error_that_says_why() {
        let why = parse(&fixture("virtio-vda")).unwrap_err();
        assert!(
            why.contains("smartctl could not read /dev/vda (exit status 1)"),
            "{why}"
        );
        assert!(why.contains("Unable to detect device type"), "{why}");
        let why = parse(&fixture("usb-stick-no-smart")).unwrap_err();
        assert!(why.contains("/dev/sdc is not SMART-capable"), "{why}");
        let why = parse(&serde_json::json!({"x": 1})).unwrap_err();
        assert!(why.contains("not smartctl JSON"), "{why}");
        let open = serde_json::json!({"smartctl": {"exit_status": 2, "argv": ["smartctl", "-a", "/dev/nvme9"],
            "messages": [{"string": "Smartctl open device: /dev/nvme9 failed: No such device", "severity": "error"}]}});
        let why = parse(&open).unwrap_err();
        assert!(
            why.starts_with("smartctl could not open /dev/nvme9"),
            "{why}"
        );
    }
}
