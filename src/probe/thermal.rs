//! `thermal`: the hottest of the thermal zones and hwmon temperature sensors.
//!
//! Zones are `<sys>/class/thermal/thermal_zone*/{type,temp}`; hwmon sensors are
//! `<sys>/class/hwmon/hwmon*/{name,temp*_input,temp*_label}`, named `NAME/LABEL` (or
//! `NAME/tempN`). Temperatures are millidegrees Celsius. A reading of −256 °C (Jetson's
//! value for a sensor that is off) or an unreadable file means that sensor is skipped.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::api::Probe;
use crate::core::glob::glob_match;
use crate::core::metric::{Metrics, Reading};
use crate::sys::blocking::Blocking;

/// Millidegrees that mean "sensor off".
const SENSOR_OFF_MILLI: i64 = -256_000;

/// Reads temperatures under a sysfs root.
pub struct ThermalProbe {
    sys: PathBuf,
    reader: Blocking<Reading>,
    /// Globs on sensor names; empty means every sensor.
    sensors: Vec<String>,
}

impl ThermalProbe {
    /// A probe over `<sys>/class/thermal` and `<sys>/class/hwmon`, limited to sensors
    /// whose name matches one of `sensors` (all when empty).
    pub fn new(sys: PathBuf, sensors: Vec<String>) -> Self {
        ThermalProbe {
            sys,
            reader: Default::default(),
            sensors,
        }
    }
}

/// One sensor's reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    pub name: String,
    /// Degrees Celsius; `None` when off or unreadable.
    pub celsius: Option<f64>,
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn milli_to_c(s: &str) -> Option<f64> {
    let v: i64 = s.trim().parse().ok()?;
    (v > SENSOR_OFF_MILLI).then_some(v as f64 / 1000.0)
}

fn sorted_entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Every sensor under a sysfs root, readable or not.
pub fn scan(sys: &Path) -> Vec<Sensor> {
    let mut out = Vec::new();
    for zone in sorted_entries(&sys.join("class/thermal"), "thermal_zone") {
        let Some(name) = read_trim(&zone.join("type")) else {
            continue;
        };
        let celsius = read_trim(&zone.join("temp")).and_then(|t| milli_to_c(&t));
        out.push(Sensor { name, celsius });
    }
    for hw in sorted_entries(&sys.join("class/hwmon"), "hwmon") {
        let chip = read_trim(&hw.join("name")).unwrap_or_else(|| {
            hw.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        for input in sorted_entries(&hw, "temp") {
            let file = input.file_name().unwrap().to_string_lossy().into_owned();
            let Some(idx) = file.strip_suffix("_input") else {
                continue;
            };
            let label =
                read_trim(&hw.join(format!("{idx}_label"))).unwrap_or_else(|| idx.to_string());
            let celsius = read_trim(&input).and_then(|t| milli_to_c(&t));
            out.push(Sensor {
                name: format!("{chip}/{label}"),
                celsius,
            });
        }
    }
    out
}

fn evaluate(sys: &Path, globs: &[String]) -> Reading {
    let all = scan(sys);
    if all.is_empty() {
        return Reading::Unknown(format!(
            "no temperature sensors under {} or {}",
            sys.join("class/thermal").display(),
            sys.join("class/hwmon").display()
        ));
    }
    let matched: Vec<&Sensor> = all
        .iter()
        .filter(|s| globs.is_empty() || globs.iter().any(|g| glob_match(g, &s.name)))
        .collect();
    if matched.is_empty() {
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        return Reading::Unknown(format!(
            "no sensor matches {:?}; sensors here: {}",
            globs,
            names.join(", ")
        ));
    }
    let live: Vec<(&str, f64)> = matched
        .iter()
        .filter_map(|s| s.celsius.map(|c| (s.name.as_str(), c)))
        .collect();
    let Some(&(hot_name, hot)) = live.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        let names: Vec<&str> = matched.iter().map(|s| s.name.as_str()).collect();
        return Reading::Unknown(format!(
            "every matched sensor is off or unreadable: {}",
            names.join(", ")
        ));
    };
    let detail = format!("hottest {hot_name} {hot:.1} °C of {} sensors", live.len());
    Reading::metrics(
        detail,
        Metrics::from([
            ("temperature".to_string(), hot),
            ("sensors".to_string(), live.len() as f64),
        ]),
    )
}

#[async_trait]
impl Probe for ThermalProbe {
    async fn read(&mut self) -> Reading {
        // hwmon reads go to I²C or NVMe and can block: keep them off the runtime threads.
        let (sys, sensors) = (self.sys.clone(), self.sensors.clone());
        self.reader
            .run(move || evaluate(&sys, &sensors))
            .await
            .unwrap_or_else(Reading::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(sys: &Path, i: usize, ty: &str, milli: i64) {
        let d = sys.join(format!("class/thermal/thermal_zone{i}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("type"), format!("{ty}\n")).unwrap();
        std::fs::write(d.join("temp"), format!("{milli}\n")).unwrap();
    }

    fn jetson_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path();
        zone(s, 0, "cpu-thermal", 48_500);
        zone(s, 1, "gpu-thermal", 51_250);
        zone(s, 2, "cv0-thermal", -256_000); // off on this module
        zone(s, 3, "tj-thermal", 52_000);
        let hw = s.join("class/hwmon/hwmon0");
        std::fs::create_dir_all(&hw).unwrap();
        std::fs::write(hw.join("name"), "nvme\n").unwrap();
        std::fs::write(hw.join("temp1_input"), "39850\n").unwrap();
        std::fs::write(hw.join("temp1_label"), "Composite\n").unwrap();
        std::fs::write(hw.join("temp2_input"), "41000\n").unwrap();
        dir
    }

    #[test]
    fn scans_zones_and_hwmon_and_skips_sensors_that_are_off() {
        let t = jetson_tree();
        let all = scan(t.path());
        let names: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu-thermal",
                "gpu-thermal",
                "cv0-thermal",
                "tj-thermal",
                "nvme/Composite",
                "nvme/temp2"
            ]
        );
        assert_eq!(all[2].celsius, None);
        assert_eq!(all[4].celsius, Some(39.85));
    }

    #[test]
    fn hottest_of_all_or_of_matched() {
        let t = jetson_tree();
        let Reading::Value {
            metrics, detail, ..
        } = evaluate(t.path(), &[])
        else {
            panic!()
        };
        assert_eq!(metrics["temperature"], 52.0);
        assert_eq!(metrics["sensors"], 5.0);
        assert!(detail.contains("tj-thermal"), "{detail}");
        let Reading::Value { metrics, .. } = evaluate(t.path(), &["gpu-*".into(), "nvme/*".into()])
        else {
            panic!()
        };
        assert_eq!(metrics["temperature"], 51.25);
        assert_eq!(metrics["sensors"], 3.0);
    }

    #[test]
    fn off_only_or_nothing_is_unknown() {
        let t = jetson_tree();
        let Reading::Unknown(why) = evaluate(t.path(), &["cv0-*".into()]) else {
            panic!()
        };
        assert!(why.contains("off or unreadable"), "{why}");
        let Reading::Unknown(why) = evaluate(t.path(), &["soc9-*".into()]) else {
            panic!()
        };
        assert!(why.contains("sensors here: cpu-thermal"), "{why}");
        let empty = tempfile::tempdir().unwrap();
        let Reading::Unknown(why) = evaluate(empty.path(), &[]) else {
            panic!()
        };
        assert!(why.starts_with("no temperature sensors"), "{why}");
    }
}
