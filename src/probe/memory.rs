//! `memory`: MemAvailable, pressure stall information and OOM kills from procfs.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use procfs::FromRead;

use super::api::Probe;
use crate::core::metric::{human_bytes, Metrics, Reading};
use crate::sys::blocking::Blocking;

/// Reads memory figures under a procfs root.
pub struct MemoryProbe {
    proc: PathBuf,
    reader: Blocking<Result<(Metrics, Vec<String>), String>>,
    last_oom_kills: Option<f64>,
}

impl MemoryProbe {
    /// A probe reading `<proc>/meminfo`, `<proc>/pressure/*`, `<proc>/vmstat`, `<proc>/loadavg`.
    pub fn new(proc: PathBuf) -> Self {
        MemoryProbe {
            proc,
            reader: Default::default(),
            last_oom_kills: None,
        }
    }
}

/// Reads everything; only meminfo is required, the rest is reported when present.
fn read_all(proc: &Path) -> Result<(Metrics, Vec<String>), String> {
    let path = proc.join("meminfo");
    let mi = procfs::Meminfo::from_file(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let total = mi.mem_total as f64;
    let available = mi.mem_available.ok_or_else(|| {
        format!(
            "{} has no MemAvailable (kernel older than 3.14?)",
            path.display()
        )
    })? as f64;
    if total <= 0.0 {
        return Err(format!("{} reports MemTotal 0", path.display()));
    }
    let mut m = Metrics::new();
    let mut missing = Vec::new();
    let avail_pct = available * 100.0 / total;
    m.insert("available".into(), avail_pct);
    m.insert("used".into(), 100.0 - avail_pct);
    m.insert("available_bytes".into(), available);
    m.insert("total_bytes".into(), total);
    let swap_pct = if mi.swap_total > 0 {
        (mi.swap_total - mi.swap_free) as f64 * 100.0 / mi.swap_total as f64
    } else {
        0.0
    };
    m.insert("swap_used".into(), swap_pct);

    match procfs::MemoryPressure::from_file(proc.join("pressure/memory")) {
        Ok(p) => {
            m.insert("psi_memory_some_avg10".into(), p.some.avg10 as f64);
            m.insert("psi_memory_full_avg10".into(), p.full.avg10 as f64);
            m.insert("psi_memory_some_avg60".into(), p.some.avg60 as f64);
        }
        Err(_) => missing.push("pressure/memory".to_string()),
    }
    match procfs::CpuPressure::from_file(proc.join("pressure/cpu")) {
        Ok(p) => {
            m.insert("psi_cpu_some_avg10".into(), p.some.avg10 as f64);
        }
        Err(_) => missing.push("pressure/cpu".to_string()),
    }
    match procfs::IoPressure::from_file(proc.join("pressure/io")) {
        Ok(p) => {
            m.insert("psi_io_some_avg10".into(), p.some.avg10 as f64);
            m.insert("psi_io_full_avg10".into(), p.full.avg10 as f64);
        }
        Err(_) => missing.push("pressure/io".to_string()),
    }
    match std::fs::read_to_string(proc.join("vmstat")) {
        Ok(text) => match text
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            Some(v) => {
                m.insert("oom_kills".into(), v);
            }
            None => missing.push("vmstat oom_kill".to_string()),
        },
        Err(_) => missing.push("vmstat".to_string()),
    }
    match procfs::LoadAverage::from_file(proc.join("loadavg")) {
        Ok(l) => {
            m.insert("load1".into(), l.one as f64);
            m.insert("load5".into(), l.five as f64);
            m.insert("load15".into(), l.fifteen as f64);
        }
        Err(_) => missing.push("loadavg".to_string()),
    }
    Ok((m, missing))
}

#[async_trait]
impl Probe for MemoryProbe {
    async fn read(&mut self) -> Reading {
        let proc = self.proc.clone();
        let (mut m, missing) = match self.reader.run(move || read_all(&proc)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) | Err(e) => return Reading::Unknown(e),
        };
        if let Some(&kills) = m.get("oom_kills") {
            let new = self
                .last_oom_kills
                .map_or(0.0, |prev| (kills - prev).max(0.0));
            self.last_oom_kills = Some(kills);
            m.insert("oom_kills_new".into(), new);
        }
        let mut detail = format!(
            "{:.1}% available ({} of {})",
            m["available"],
            human_bytes(m["available_bytes"]),
            human_bytes(m["total_bytes"]),
        );
        if let Some(psi) = m.get("psi_memory_some_avg10") {
            detail.push_str(&format!(", memory pressure {psi:.2}%"));
        }
        if let Some(k) = m.get("oom_kills") {
            detail.push_str(&format!(", {k} OOM kills since boot"));
        }
        if !missing.is_empty() {
            detail.push_str(&format!(" (not available: {})", missing.join(", ")));
        }
        Reading::metrics(detail, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn write_proc(dir: &Path, avail_kb: u64, oom: u64) {
        std::fs::create_dir_all(dir.join("pressure")).unwrap();
        std::fs::write(
            dir.join("meminfo"),
            format!(
                "MemTotal:       1000000 kB\nMemFree:         100000 kB\nMemAvailable:   {avail_kb} kB\nBuffers:           1000 kB\nCached:           10000 kB\nSwapCached:            0 kB\nActive:           10000 kB\nInactive:         10000 kB\nActive(anon):      5000 kB\nInactive(anon):    5000 kB\nActive(file):      5000 kB\nInactive(file):    5000 kB\nUnevictable:          0 kB\nMlocked:              0 kB\nSwapTotal:        200000 kB\nSwapFree:         150000 kB\nDirty:                 0 kB\nWriteback:             0 kB\nAnonPages:         8000 kB\nMapped:            4000 kB\nShmem:              100 kB\nKReclaimable:      2000 kB\nSlab:              3000 kB\nSReclaimable:      2000 kB\nSUnreclaim:        1000 kB\nKernelStack:        500 kB\nPageTables:         300 kB\nNFS_Unstable:          0 kB\nBounce:                0 kB\nWritebackTmp:          0 kB\nCommitLimit:     700000 kB\nCommitted_AS:    300000 kB\nVmallocTotal:   34359738367 kB\nVmallocUsed:       1000 kB\nVmallocChunk:          0 kB\nNvMapMemUsed:     40000 kB\nHugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("pressure/memory"),
            "some avg10=12.50 avg60=3.00 avg300=1.00 total=12345\nfull avg10=4.25 avg60=1.00 avg300=0.50 total=2345\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("pressure/cpu"),
            "some avg10=1.50 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("pressure/io"),
            "some avg10=0.75 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.25 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("vmstat"),
            format!("nr_free_pages 1\noom_kill {oom}\npgfault 3\n"),
        )
        .unwrap();
        std::fs::write(dir.join("loadavg"), "0.50 1.25 2.00 1/100 4242\n").unwrap();
    }

    #[tokio::test]
    async fn reads_a_prepared_tree() {
        let dir = tempfile::tempdir().unwrap();
        write_proc(dir.path(), 250_000, 3);
        let mut p = MemoryProbe::new(dir.path().to_path_buf());
        let Reading::Value {
            metrics: m, detail, ..
        } = p.read().await
        else {
            panic!()
        };
        assert_eq!(m["available"], 25.0);
        assert_eq!(m["used"], 75.0);
        assert_eq!(m["available_bytes"], 250_000.0 * 1024.0);
        assert_eq!(m["swap_used"], 25.0);
        assert_eq!(m["psi_memory_some_avg10"], 12.5);
        assert_eq!(m["psi_memory_full_avg10"], 4.25);
        assert_eq!(m["psi_cpu_some_avg10"], 1.5);
        assert_eq!(m["psi_io_full_avg10"], 0.25);
        assert_eq!(m["oom_kills"], 3.0);
        assert_eq!(m["oom_kills_new"], 0.0);
        assert_eq!(m["load5"], 1.25);
        assert!(detail.starts_with("25.0% available"), "{detail}");
        // Two more OOM kills between readings.
        write_proc(dir.path(), 250_000, 5);
        let Reading::Value { metrics: m, .. } = p.read().await else {
            panic!()
        };
        assert_eq!(m["oom_kills_new"], 2.0);
    }

    #[tokio::test]
    async fn missing_psi_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        write_proc(dir.path(), 500_000, 0);
        std::fs::remove_dir_all(dir.path().join("pressure")).unwrap();
        let mut p = MemoryProbe::new(dir.path().to_path_buf());
        let Reading::Value {
            metrics: m, detail, ..
        } = p.read().await
        else {
            panic!()
        };
        assert!(!m.contains_key("psi_memory_some_avg10"));
        assert!(
            detail.contains("not available: pressure/memory"),
            "{detail}"
        );
    }

    #[tokio::test]
    async fn missing_meminfo_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = MemoryProbe::new(dir.path().to_path_buf());
        let Reading::Unknown(why) = p.read().await else {
            panic!()
        };
        assert!(why.contains("meminfo"), "{why}");
    }

    #[tokio::test]
    async fn reads_this_machine() {
        let mut p = MemoryProbe::new("/proc".into());
        let Reading::Value { metrics: m, .. } = p.read().await else {
            panic!("no /proc/meminfo")
        };
        assert!(m["total_bytes"] > 0.0);
        assert!((0.0..=100.0).contains(&m["available"]));
        assert!(m.contains_key("oom_kills"));
    }
}
