//! The free-space check that refuses an update up front, before the first byte is staged:
//! staging (the whole payload) and the new release (a copy of the current one plus what the
//! bundle installs) go to the state directory's file system, the images `docker load`
//! unpacks to Docker's root; when both are one file system, one sum.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::core::bundle::{Manifest, Step};
use crate::core::metric::human_bytes;

/// Room kept free on each file system beyond what the update needs.
pub const MARGIN: u64 = 64 << 20;

/// What one file system must have free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The directory named in a refusal.
    pub dir: PathBuf,
    /// Its file system (`st_dev`).
    pub dev: u64,
    /// Bytes needed, the margin included.
    pub bytes: u64,
}

/// What the manifest asks of the box's disks, before the margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Demand {
    /// Staging: every payload file.
    pub staging: u64,
    /// The new release: the current release's tree and every installed file.
    pub release: u64,
    /// Images: every `docker-load` archive (unpacked, about as large again).
    pub images: u64,
}

/// The bytes of each kind `manifest` needs, with the current release's tree at
/// `current_bytes`.
pub fn demand(manifest: &Manifest, current_bytes: u64) -> Demand {
    let size_of = |file: &str| manifest.file(file).map_or(0, |f| f.size);
    let mut d = Demand {
        staging: manifest.total_size(),
        release: current_bytes,
        images: 0,
    };
    for step in &manifest.steps {
        match step {
            Step::Install { file, .. } => d.release = d.release.saturating_add(size_of(file)),
            Step::DockerLoad { file } => d.images = d.images.saturating_add(size_of(file)),
            _ => {}
        }
    }
    d
}

/// The needs per file system: the state directory's (staging and release), Docker's root
/// (images) when known, or both in one when they share a device. The margin is added once
/// per file system.
pub fn needs(d: Demand, state: (&Path, u64), docker: Option<(&Path, u64)>) -> Vec<Need> {
    let mut state_need = Need {
        dir: state.0.to_path_buf(),
        dev: state.1,
        bytes: d.staging.saturating_add(d.release).saturating_add(MARGIN),
    };
    match docker {
        Some((_, dev)) if dev == state.1 => {
            state_need.bytes = state_need.bytes.saturating_add(d.images);
            vec![state_need]
        }
        Some((dir, dev)) => vec![
            state_need,
            Need {
                dir: dir.to_path_buf(),
                dev,
                bytes: d.images.saturating_add(MARGIN),
            },
        ],
        None => vec![state_need],
    }
}

/// The refusal for a need that `free` bytes do not meet:
/// `needs 3.2 GiB in /var/lib/vigil, 1.1 GiB free`.
pub fn judge(need: &Need, free: u64) -> Result<(), String> {
    if free >= need.bytes {
        return Ok(());
    }
    Err(format!(
        "needs {} in {}, {} free",
        human_bytes(need.bytes as f64),
        need.dir.display(),
        human_bytes(free as f64)
    ))
}

/// Whether the box has room for `manifest`: the state directory's file system for staging
/// and the new release (a copy of `current_release` plus what is installed), `docker_root`'s
/// for the images it loads (when given). `Err` is the refusal.
pub fn check(
    manifest: &Manifest,
    state_dir: &Path,
    current_release: Option<&Path>,
    docker_root: Option<&Path>,
) -> Result<(), String> {
    let current_bytes = match current_release {
        Some(dir) => tree_bytes(dir).map_err(|e| format!("cannot size {}: {e}", dir.display()))?,
        None => 0,
    };
    let d = demand(manifest, current_bytes);
    let dev = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.dev())
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let state = (state_dir, dev(state_dir)?);
    let docker = match docker_root {
        Some(root) => Some((root, dev(root)?)),
        None => None,
    };
    for need in needs(d, state, docker) {
        judge(&need, free_bytes(&need.dir)?)?;
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on `dir`'s file system.
pub fn free_bytes(dir: &Path) -> Result<u64, String> {
    let st = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| format!("statvfs {}: {}", dir.display(), e.desc()))?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// The size of every regular file under `dir` (links not followed); 0 when it is absent.
pub fn tree_bytes(dir: &Path) -> std::io::Result<u64> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    if meta.is_file() {
        return Ok(meta.len());
    }
    if !meta.is_dir() {
        return Ok(0);
    }
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir)? {
        total = total.saturating_add(tree_bytes(&entry?.path())?);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bundle::FileEntry;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn manifest() -> Manifest {
        let file = |path: &str, size: u64| FileEntry {
            path: path.into(),
            size,
            sha256: [0; 32],
        };
        Manifest {
            name: "demo".into(),
            version: semver::Version::new(1, 4, 0),
            from: None,
            hardware: vec![],
            files: vec![
                file("payload/images/app.tar", 2 * GIB),
                file("payload/compose/app.yml", MIB),
                file("payload/other", 10 * MIB),
            ],
            steps: vec![
                Step::DockerLoad {
                    file: "payload/images/app.tar".into(),
                },
                Step::Install {
                    file: "payload/compose/app.yml".into(),
                    to: "compose/app.yml".into(),
                },
            ],
            gate: None,
        }
    }

    #[test]
    fn the_demand_adds_staging_release_and_images() {
        let d = demand(&manifest(), 5 * MIB);
        assert_eq!(d.staging, 2 * GIB + 11 * MIB);
        assert_eq!(d.release, 6 * MIB);
        assert_eq!(d.images, 2 * GIB);
    }

    #[test]
    fn one_file_system_is_one_sum_two_are_two() {
        let d = demand(&manifest(), 5 * MIB);
        let state = Path::new("/var/lib/vigil");
        let docker = Path::new("/var/lib/docker");
        let one = needs(d, (state, 1), Some((docker, 1)));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].bytes, 4 * GIB + 17 * MIB + MARGIN);
        let two = needs(d, (state, 1), Some((docker, 2)));
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].bytes, 2 * GIB + 17 * MIB + MARGIN);
        assert_eq!(
            (two[1].dir.as_path(), two[1].bytes),
            (docker, 2 * GIB + MARGIN)
        );
        let unknown = needs(d, (state, 1), None);
        assert_eq!(unknown, vec![two[0].clone()]);
    }

    #[test]
    fn a_refusal_names_the_need_the_directory_and_what_is_free() {
        let need = Need {
            dir: PathBuf::from("/var/lib/vigil"),
            dev: 1,
            bytes: 3 * GIB + GIB / 5,
        };
        assert_eq!(
            judge(&need, GIB + GIB / 10),
            Err("needs 3.2 GiB in /var/lib/vigil, 1.1 GiB free".into())
        );
        assert_eq!(judge(&need, need.bytes), Ok(()));
    }

    #[test]
    fn a_real_check_passes_small_and_refuses_huge() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("release");
        std::fs::create_dir_all(release.join("bin")).unwrap();
        std::fs::write(release.join("bin/app"), vec![0u8; 1000]).unwrap();
        std::os::unix::fs::symlink("/nonexistent", release.join("link")).unwrap();
        assert_eq!(tree_bytes(&release).unwrap(), 1000);
        let mut m = manifest();
        for f in &mut m.files {
            f.size = 1000;
        }
        check(&m, dir.path(), Some(&release), Some(dir.path())).unwrap();
        m.files[0].size = u64::MAX / 4;
        let why = check(&m, dir.path(), Some(&release), None).unwrap_err();
        // Others write to this file system too: what is free is not compared.
        let middle = format!(" in {}, ", dir.path().display());
        assert!(
            why.starts_with("needs ") && why.contains(&middle) && why.ends_with(" free"),
            "{why}"
        );
    }
}
