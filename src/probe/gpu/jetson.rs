//! The Jetson backend: the integrated GPU read from sysfs and procfs, as jtop does.
//!
//! - The GPU is the devfreq device `<sys>/class/devfreq/*` whose `device/of_node/name` is a
//!   Jetson GPU (`ga10b` on Orin; `gv11b` Xavier, `gp10b` TX2, `gm20b` Nano, `gb10b` Thor,
//!   or plain `gpu`). `device/load` is the load in per-mille; `cur_freq` is in Hz.
//! - Memory is shared with the CPU: `NvMapMemUsed` in `<proc>/meminfo` is what the GPU
//!   holds (through nvmap), out of `MemTotal`.
//! - Temperature: the thermal zone whose `type` is `gpu-thermal` (`GPU-therm` on older
//!   boards), in millidegrees; −256000 means the sensor is off (the GPU is powered down).
//! - Power: INA3221 monitors under `<sys>/class/hwmon/hwmon*` (`name` is `ina3221`), one
//!   rail per channel: `inN_label`, `inN_input` (mV), `currN_input` (mA). The GPU rail
//!   (`VDD_GPU_SOC` on AGX Orin, a label with `GPU` elsewhere) is the power; without one,
//!   the sum of all labelled rails.

use std::path::{Path, PathBuf};

use super::backend::{GpuBackend, GpuError, GpuSample};
use crate::core::check::HostRoots;

/// Devicetree names of Jetson GPUs.
pub const GPU_NAMES: &[&str] = &["ga10b", "gv11b", "gp10b", "gm20b", "gb10b", "gpu"];

/// Zone types of the GPU's temperature sensor.
const GPU_ZONES: &[&str] = &["gpu-thermal", "gpu-therm"];

/// Millidegrees that mean "sensor off".
const SENSOR_OFF_MILLI: i64 = -256_000;

/// The integrated GPU of a Jetson.
#[derive(Debug, Clone)]
pub struct JetsonBackend {
    sys: PathBuf,
    proc: PathBuf,
    /// `<sys>/class/devfreq/17000000.ga10b`.
    devfreq: PathBuf,
    /// The devicetree name (`ga10b`).
    name: String,
}

fn read_trim(p: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(p).map(|s| {
        s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_string()
    })
}

fn read_num<T: std::str::FromStr>(p: &Path) -> Result<T, String> {
    let text = read_trim(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    text.parse()
        .map_err(|_| format!("{} holds {text:?}, not a number", p.display()))
}

fn sorted_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    v.sort();
    Ok(v)
}

impl JetsonBackend {
    /// Finds the GPU's devfreq device under `roots.sys`, or says what was there instead.
    pub fn discover(roots: &HostRoots) -> Result<JetsonBackend, String> {
        let class = roots.sys.join("class/devfreq");
        let entries = sorted_dir(&class)
            .map_err(|e| format!("cannot list {} ({e}): not a Jetson", class.display()))?;
        let mut seen = Vec::new();
        for dev in entries {
            let of_name = dev.join("device/of_node/name");
            let Ok(name) = read_trim(&of_name) else {
                continue;
            };
            if GPU_NAMES.contains(&name.as_str()) {
                return Ok(JetsonBackend {
                    sys: roots.sys.clone(),
                    proc: roots.proc.clone(),
                    devfreq: dev,
                    name,
                });
            }
            seen.push(format!(
                "{} ({name})",
                dev.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
        Err(format!(
            "no devfreq device under {} is a Jetson GPU (device/of_node/name one of {}); found: {}",
            class.display(),
            GPU_NAMES.join(", "),
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        ))
    }

    /// The devfreq directory in use.
    pub fn devfreq(&self) -> &Path {
        &self.devfreq
    }

    fn meminfo(&self) -> Result<(u64, u64), String> {
        let path = self.proc.join("meminfo");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let field = |key: &str| {
            text.lines().find_map(|l| {
                let rest = l.strip_prefix(key)?.strip_prefix(':')?;
                let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kb * 1024)
            })
        };
        let total =
            field("MemTotal").ok_or_else(|| format!("{} has no MemTotal", path.display()))?;
        let nvmap = field("NvMapMemUsed").ok_or_else(|| {
            format!(
                "{} has no NvMapMemUsed (is the nvmap driver loaded?)",
                path.display()
            )
        })?;
        Ok((nvmap, total))
    }

    /// The GPU thermal zone in degrees, `Ok(None)` when its sensor is off.
    fn temperature(&self) -> Result<Option<f64>, String> {
        let dir = self.sys.join("class/thermal");
        for zone in sorted_dir(&dir).unwrap_or_default() {
            if !zone
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("thermal_zone"))
            {
                continue;
            }
            let Ok(kind) = read_trim(&zone.join("type")) else {
                continue;
            };
            if !GPU_ZONES.contains(&kind.to_ascii_lowercase().as_str()) {
                continue;
            }
            let milli: i64 = read_num(&zone.join("temp"))?;
            if milli <= SENSOR_OFF_MILLI {
                return Err(format!(
                    "{kind} is off (reads −256 °C; the GPU is likely powered down)"
                ));
            }
            return Ok(Some(milli as f64 / 1000.0));
        }
        Ok(None)
    }

    /// INA3221 rails: (label, watts).
    fn rails(&self) -> Vec<(String, f64)> {
        let mut rails = Vec::new();
        for hw in sorted_dir(&self.sys.join("class/hwmon")).unwrap_or_default() {
            if read_trim(&hw.join("name")).ok().as_deref() != Some("ina3221") {
                continue;
            }
            for ch in 1..=3 {
                let Ok(label) = read_trim(&hw.join(format!("in{ch}_label"))) else {
                    continue;
                };
                if label.is_empty() || label == "NC" {
                    continue;
                }
                let mv: Result<f64, _> = read_num(&hw.join(format!("in{ch}_input")));
                let ma: Result<f64, _> = read_num(&hw.join(format!("curr{ch}_input")));
                if let (Ok(mv), Ok(ma)) = (mv, ma) {
                    rails.push((label, mv * ma / 1e6));
                }
            }
        }
        rails
    }
}

impl GpuBackend for JetsonBackend {
    fn name(&self) -> &'static str {
        "jetson"
    }

    fn describe(&self) -> String {
        format!(
            "{} through Jetson sysfs ({})",
            self.name,
            self.devfreq.display()
        )
    }

    fn read(&mut self) -> Result<GpuSample, GpuError> {
        let load: f64 = read_num(&self.devfreq.join("device/load")).map_err(GpuError)?;
        let (used, total) = self.meminfo().map_err(GpuError)?;
        let mut s = GpuSample {
            name: self.name.clone(),
            memory_used_bytes: used,
            memory_total_bytes: total,
            utilization: Some(load / 10.0),
            ..Default::default()
        };
        s.freq_mhz = read_num::<f64>(&self.devfreq.join("cur_freq"))
            .ok()
            .map(|hz| hz / 1e6);
        match self.temperature() {
            Ok(Some(t)) => s.temperature = Some(t),
            Ok(None) => s.notes.push(format!(
                "no {} thermal zone under {}",
                GPU_ZONES[0],
                self.sys.join("class/thermal").display()
            )),
            Err(why) => s.notes.push(why),
        }
        let rails = self.rails();
        let gpu_rail = rails
            .iter()
            .find(|(l, _)| l == "VDD_GPU_SOC")
            .or_else(|| rails.iter().find(|(l, _)| l.contains("GPU")));
        if let Some((label, w)) = gpu_rail {
            s.power_w = Some(*w);
            s.power_source = Some(label.clone());
        } else if !rails.is_empty() {
            s.power_w = Some(rails.iter().map(|(_, w)| w).sum());
            s.power_source = Some(format!(
                "sum of {}",
                rails
                    .iter()
                    .map(|(l, _)| l.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ));
        }
        Ok(s)
    }
}
