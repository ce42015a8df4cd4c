//! `disk`: bytes and inodes of the file system holding a path (statvfs), and how fast it
//! fills.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::api::Probe;
use crate::core::metric::{human_bytes, Metrics, Reading};
use crate::sys::blocking::Blocking;

/// Reads one path's file system.
pub struct DiskProbe {
    path: PathBuf,
    statvfs: Blocking<Result<Usage, String>>,
    /// Recent (time, used bytes) readings, oldest first, spanning at most [`RATE_WINDOW`].
    history: VecDeque<(Instant, f64)>,
}

/// How far back the fill rate looks, so one burst of writes does not read as a trend.
pub const RATE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// History needed before a fill rate is reported at all (0 until then).
pub const RATE_MIN_HISTORY: Duration = Duration::from_secs(5 * 60);

impl DiskProbe {
    /// A probe for the file system that holds `path`.
    pub fn new(path: PathBuf) -> Self {
        DiskProbe {
            path,
            statvfs: Default::default(),
            history: VecDeque::new(),
        }
    }
}

/// Raw statvfs figures.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    size: f64,
    used: f64,
    avail: f64,
    inodes: f64,
    inodes_free: f64,
}

fn statvfs(path: &std::path::Path) -> Result<Usage, String> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| match e {
        nix::errno::Errno::ENOENT => format!("{} does not exist", path.display()),
        e => format!("statvfs {}: {}", path.display(), e.desc()),
    })?;
    let frsize = st.fragment_size() as f64;
    let blocks = st.blocks() as f64;
    Ok(Usage {
        size: blocks * frsize,
        used: (blocks - st.blocks_free() as f64) * frsize,
        avail: st.blocks_available() as f64 * frsize,
        inodes: st.files() as f64,
        inodes_free: st.files_free() as f64,
    })
}

fn metrics_of(u: Usage, fill_rate: f64) -> Metrics {
    let denom = u.used + u.avail;
    let used_pct = if denom > 0.0 {
        u.used * 100.0 / denom
    } else {
        0.0
    };
    let inodes_pct = if u.inodes > 0.0 {
        (u.inodes - u.inodes_free) * 100.0 / u.inodes
    } else {
        0.0
    };
    let hours_to_full = if fill_rate > 0.0 {
        u.avail / fill_rate / 3600.0
    } else {
        f64::INFINITY
    };
    Metrics::from([
        ("used".to_string(), used_pct),
        ("used_bytes".to_string(), u.used),
        ("avail_bytes".to_string(), u.avail),
        ("size_bytes".to_string(), u.size),
        ("inodes_used".to_string(), inodes_pct),
        ("fill_rate".to_string(), fill_rate),
        ("hours_to_full".to_string(), hours_to_full),
    ])
}

#[async_trait]
impl Probe for DiskProbe {
    async fn read(&mut self) -> Reading {
        let path = self.path.clone();
        // statvfs on a hung network mount blocks: keep it off the runtime threads.
        let usage = match self.statvfs.run(move || statvfs(&path)).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) | Err(e) => return Reading::Unknown(e),
        };
        let now = Instant::now();
        while self.history.len() > 1 && now.duration_since(self.history[1].0) >= RATE_WINDOW {
            self.history.pop_front();
        }
        let fill_rate = match self.history.front() {
            Some(&(then, used)) => {
                let dt = now.duration_since(then).as_secs_f64();
                if dt > 0.0 {
                    (usage.used - used) / dt
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.history.push_back((now, usage.used));
        let m = metrics_of(usage, fill_rate);
        let detail = format!(
            "{}: {:.1}% used ({} free of {}), {:.1}% inodes used",
            self.path.display(),
            m["used"],
            human_bytes(usage.avail),
            human_bytes(usage.size),
            m["inodes_used"],
        );
        Reading::metrics(detail, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_follow_df() {
        let m = metrics_of(
            Usage {
                size: 1000.0,
                used: 450.0,
                avail: 450.0,
                inodes: 200.0,
                inodes_free: 50.0,
            },
            0.0,
        );
        assert_eq!(m["used"], 50.0);
        assert_eq!(m["inodes_used"], 75.0);
        assert!(m["hours_to_full"].is_infinite());
    }

    #[test]
    fn time_to_full_from_fill_rate() {
        let m = metrics_of(
            Usage {
                size: 1e9,
                used: 0.0,
                avail: 3600.0 * 100.0,
                inodes: 0.0,
                inodes_free: 0.0,
            },
            100.0,
        );
        assert_eq!(m["hours_to_full"], 1.0);
        assert_eq!(m["inodes_used"], 0.0);
    }

    #[tokio::test]
    async fn reads_a_real_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = DiskProbe::new(dir.path().to_path_buf());
        match p.read().await {
            Reading::Value {
                metrics,
                detail,
                status,
            } => {
                assert_eq!(status, None);
                assert!(metrics["size_bytes"] > 0.0);
                assert!((0.0..=100.0).contains(&metrics["used"]));
                assert!(detail.contains("% used"), "{detail}");
            }
            r => panic!("unexpected {r:?}"),
        }
        // The second reading has a measured fill rate (a finite number).
        let before = std::time::Instant::now();
        std::fs::write(dir.path().join("f"), vec![1u8; 1 << 20]).unwrap();
        while before.elapsed().as_millis() < 5 {}
        match p.read().await {
            Reading::Value { metrics, .. } => assert!(metrics["fill_rate"].is_finite()),
            r => panic!("unexpected {r:?}"),
        }
    }

    #[tokio::test]
    async fn missing_path_is_unknown_with_reason() {
        let mut p = DiskProbe::new("/nonexistent/vigil-test".into());
        assert_eq!(
            p.read().await,
            Reading::Unknown("/nonexistent/vigil-test does not exist".into())
        );
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
