//! The sensor push's metrics snapshot: timestamp, hostname, CPU, memory and disk use, the
//! status of every check, and storage health. CPU and memory come from `<proc>/stat` and
//! `<proc>/meminfo`, disks from the `disk` checks and the root file system, storage health
//! from eMMC's own wear figures in sysfs (`<sys>/block/mmcblk*/device/{pre_eol_info,
//! life_time}`, readable without privilege; a Jetson's boot medium). SMART of NVMe and
//! SATA disks needs root, so those are listed as not read.

use std::path::Path;

use serde_json::{json, Value};

use crate::core::check::HostRoots;
use crate::core::status::Snapshot;
use crate::core::time::{rfc3339_millis, Now};
use crate::surface::push_format::Identity;

/// Jiffies of all CPUs: (busy, total), from the first line of `/proc/stat`.
pub fn cpu_times(proc_root: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(proc_root.join("stat")).ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU use in % between two [`cpu_times`] (since boot when there is no earlier one).
pub fn cpu_percent(before: Option<(u64, u64)>, now: (u64, u64)) -> f64 {
    let (b0, t0) = before.unwrap_or((0, 0));
    let (busy, total) = (now.0.saturating_sub(b0), now.1.saturating_sub(t0));
    if total == 0 {
        return 0.0;
    }
    (busy as f64 * 100.0 / total as f64 * 10.0).round() / 10.0
}

fn meminfo(proc_root: &Path) -> Value {
    let Ok(text) = std::fs::read_to_string(proc_root.join("meminfo")) else {
        return Value::Null;
    };
    let kb = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v * 1024)
    };
    match (kb("MemTotal:"), kb("MemAvailable:")) {
        (Some(total), Some(avail)) if total > 0 => json!({
            "total_bytes": total,
            "available_bytes": avail,
            "used_percent": ((total - avail.min(total)) as f64 * 1000.0 / total as f64).round() / 10.0,
        }),
        _ => Value::Null,
    }
}

fn root_fs() -> Value {
    match nix::sys::statvfs::statvfs("/") {
        Ok(s) => {
            // As the disk probe counts (and df): in fragments.
            let f = s.fragment_size() as f64;
            let size = (s.blocks() as f64 * f) as u64;
            let avail = (s.blocks_available() as f64 * f) as u64;
            let used = size.saturating_sub((s.blocks_free() as f64 * f) as u64);
            let pct = if used + avail > 0 {
                (used as f64 * 1000.0 / (used + avail) as f64).round() / 10.0
            } else {
                0.0
            };
            json!({"path": "/", "size_bytes": size, "used_bytes": used, "used_percent": pct})
        }
        Err(_) => Value::Null,
    }
}

/// eMMC `pre_eol_info` as the JEDEC standard names it.
fn pre_eol(code: u64) -> &'static str {
    match code {
        1 => "normal",
        2 => "warning",
        3 => "urgent",
        _ => "undefined",
    }
}

/// Storage health of each block device under `<sys>/block`.
pub fn storage_health(sys_root: &Path) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(sys_root.join("block")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            !["loop", "ram", "zram", "dm-", "md", "sr", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect();
    names.sort();
    let hex = |s: &str| u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok();
    names
        .into_iter()
        .map(|name| {
            let dev = sys_root.join("block").join(&name).join("device");
            let eol = std::fs::read_to_string(dev.join("pre_eol_info")).ok();
            let life = std::fs::read_to_string(dev.join("life_time")).ok();
            match eol.as_deref().and_then(hex) {
                Some(code) => {
                    // life_time: two estimates (type A and B cells), 0x01 = 0–10 % used.
                    let life: Vec<u64> = life
                        .unwrap_or_default()
                        .split_whitespace()
                        .filter_map(hex)
                        .collect();
                    let worst = life.iter().copied().max().unwrap_or(0);
                    let status = if code >= 3 || worst >= 0x0a {
                        "crit"
                    } else if code == 2 || worst >= 0x09 {
                        "warn"
                    } else {
                        "ok"
                    };
                    json!({
                        "device": name,
                        "source": "emmc",
                        "status": status,
                        "pre_eol": pre_eol(code),
                        "life_used_percent_max": life.iter().map(|v| (v * 10).min(100)).collect::<Vec<_>>(),
                    })
                }
                None => json!({
                    "device": name,
                    "source": "none",
                    "status": "unknown",
                    "detail": "SMART of this disk needs root; vigild does not read it",
                }),
            }
        })
        .collect()
}

/// The metrics snapshot; `cpu` is the CPU use since the previous one.
pub fn document(
    snap: &Snapshot,
    now: Now,
    id: &Identity,
    roots: &HostRoots,
    cpu: Option<f64>,
) -> Value {
    let load = std::fs::read_to_string(roots.proc.join("loadavg"))
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok());
    let disks: Vec<Value> = snap
        .checks
        .iter()
        .filter(|c| c.probe == "disk")
        .map(|c| {
            let m = |k: &str| c.metrics.get(k).copied().filter(|v| v.is_finite());
            json!({
                "check": c.name,
                "used_percent": m("used"),
                "used_bytes": m("used_bytes"),
                "size_bytes": m("size_bytes"),
            })
        })
        .collect();
    let checks: Vec<Value> = snap
        .checks
        .iter()
        .map(|c| json!({"name": c.name, "probe": c.probe, "status": c.status.as_str()}))
        .collect();
    json!({
        "timestamp": rfc3339_millis(now.wall),
        "hostname": id.hostname,
        "machine": id.machine,
        "version": crate::VERSION,
        "status": snap.status.as_str(),
        "cpu": {"used_percent": cpu, "load1": load},
        "memory": meminfo(&roots.proc),
        "disk": {"root": root_fs(), "checks": disks},
        "checks": checks,
        "smart": storage_health(&roots.sys),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_storage_health_from_prepared_trees() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("stat"),
            "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n",
        )
        .unwrap();
        let t = cpu_times(p).unwrap();
        assert_eq!(t, (200, 1000));
        assert_eq!(cpu_percent(None, t), 20.0);
        assert_eq!(cpu_percent(Some((100, 500)), t), 20.0);
        let emmc = p.join("block/mmcblk0/device");
        std::fs::create_dir_all(&emmc).unwrap();
        std::fs::write(emmc.join("pre_eol_info"), "0x02\n").unwrap();
        std::fs::write(emmc.join("life_time"), "0x03 0x05\n").unwrap();
        std::fs::create_dir_all(p.join("block/nvme0n1/device")).unwrap();
        std::fs::create_dir_all(p.join("block/loop0")).unwrap();
        let h = storage_health(p);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h[0]["device"], "mmcblk0");
        assert_eq!(h[0]["status"], "warn");
        assert_eq!(h[0]["pre_eol"], "warning");
        assert_eq!(h[0]["life_used_percent_max"], json!([30, 50]));
        assert_eq!(h[1]["device"], "nvme0n1");
        assert_eq!(h[1]["status"], "unknown");
    }
}
