//! `clean DIR older-than DUR`: delete old files, only inside allow-listed trees, never
//! following a link out of them.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::dir::Dir;
use nix::fcntl::{open, openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::outcome::Outcome;
use crate::core::metric::human_bytes;

/// Opens a directory without following a link: `name` relative to `parent` (one path
/// component), or an absolute path when there is no parent.
fn open_dir(parent: Option<&OwnedFd>, name: &OsStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match parent {
        Some(p) => openat(p, name, flags, Mode::empty()),
        None => open(name, flags, Mode::empty()),
    }
}

/// The names in an open directory, without `.` and `..`.
fn entries(dir: &OwnedFd) -> nix::Result<Vec<OsString>> {
    // Dir takes its own descriptor (it closes it), positioned at the start.
    let mut d = Dir::from_fd(openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

/// Deletes regular files under `dir` not modified for `older_than`. Links are removed as
/// links (never followed); directories are walked on the same file system only.
pub fn clean(dir: &str, older_than: Duration, allow: &[PathBuf]) -> Outcome {
    let dir = Path::new(dir);
    // Resolve the directory itself: an allow-listed path that is a link pointing elsewhere
    // must not take the deletion outside the allowed trees.
    let real = match std::fs::canonicalize(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Skipped(format!("{} does not exist", dir.display()))
        }
        Err(e) => return Outcome::Failed(format!("{}: {e}", dir.display())),
    };
    let allowed = allow
        .iter()
        .filter_map(|a| std::fs::canonicalize(a).ok())
        .any(|a| real.starts_with(&a));
    if !allowed {
        return Outcome::Failed(format!(
            "{} resolves to {}, which is not under [actions] clean_allow",
            dir.display(),
            real.display()
        ));
    }
    let Some(cutoff) = SystemTime::now().checked_sub(older_than) else {
        return Outcome::Skipped(format!(
            "nothing is older than {}",
            humantime::format_duration(older_than)
        ));
    };
    let mut files = 0u64;
    let mut bytes = 0u64;
    let mut errors = Vec::new();
    // The walk holds each directory open and names entries only relative to it (openat,
    // fstatat, unlinkat on one path component, never following a link): a directory
    // swapped for a link while the walk goes on cannot lead it out of the tree, because
    // the walk never resolves a path again once it has the directory open.
    let root = match open_dir(None, real.as_os_str()) {
        Ok(fd) => fd,
        Err(e) => return Outcome::Failed(format!("{}: {e}", real.display())),
    };
    let dev = match fstat(&root) {
        Ok(st) => st.st_dev,
        Err(e) => return Outcome::Failed(format!("{}: {e}", real.display())),
    };
    let mut stack = vec![(root, real.clone())];
    while let Some((dir_fd, shown)) = stack.pop() {
        let names = match entries(&dir_fd) {
            Ok(n) => n,
            Err(e) => {
                errors.push(format!("cannot read {}: {e}", shown.display()));
                continue;
            }
        };
        for name in names {
            let path = shown.join(&name);
            let Ok(st) = fstatat(&dir_fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if kind == SFlag::S_IFDIR {
                if st.st_dev != dev {
                    continue;
                }
                // O_NOFOLLOW: a directory swapped for a link since fstatat is refused here.
                match open_dir(Some(&dir_fd), name.as_os_str()) {
                    Ok(fd)
                        if fstat(&fd).is_ok_and(|s| s.st_dev == dev && s.st_ino == st.st_ino) =>
                    {
                        stack.push((fd, path));
                    }
                    Ok(_) => errors.push(format!("{}: changed while cleaning", path.display())),
                    Err(e) => errors.push(format!("{}: {e}", path.display())),
                }
                continue;
            }
            let modified = UNIX_EPOCH
                + Duration::new(
                    u64::try_from(st.st_mtime).unwrap_or(0),
                    u32::try_from(st.st_mtime_nsec).unwrap_or(0),
                );
            if modified >= cutoff {
                continue;
            }
            // Files and links alike are unlinked; a link's target is never touched.
            match unlinkat(&dir_fd, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) => {
                    files += 1;
                    if kind == SFlag::S_IFREG {
                        bytes += u64::try_from(st.st_size).unwrap_or(0);
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
    }
    let summary = format!(
        "deleted {files} file(s), {} under {}",
        human_bytes(bytes as f64),
        real.display()
    );
    if errors.is_empty() {
        Outcome::Done(summary)
    } else {
        Outcome::Failed(format!(
            "{summary}; {} error(s), first: {}",
            errors.len(),
            errors[0]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(t).unwrap();
    }

    #[test]
    fn deletes_old_files_only_inside_the_allowed_tree_and_never_through_links() {
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("logs");
        let outside = root.path().join("precious");
        std::fs::create_dir_all(logs.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        for (p, old) in [
            (logs.join("a.log"), true),
            (logs.join("sub/b.log"), true),
            (logs.join("new.log"), false),
            (outside.join("keep.db"), true),
        ] {
            std::fs::write(&p, vec![0u8; 1000]).unwrap();
            if old {
                age(&p, 3 * 86400);
            }
        }
        // A link inside the tree to a directory outside it, and to a file outside it.
        std::os::unix::fs::symlink(&outside, logs.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.join("keep.db"), logs.join("keep-link")).unwrap();
        let out = clean(
            logs.to_str().unwrap(),
            Duration::from_secs(86400),
            std::slice::from_ref(&logs),
        );
        let Outcome::Done(s) = out else {
            panic!("{out:?}")
        };
        assert!(s.starts_with("deleted 2 file(s)"), "{s}");
        assert!(!logs.join("a.log").exists() && !logs.join("sub/b.log").exists());
        assert!(logs.join("new.log").exists());
        assert!(
            outside.join("keep.db").exists(),
            "nothing outside is touched"
        );
        assert!(
            logs.join("escape").exists() || std::fs::symlink_metadata(logs.join("escape")).is_ok()
        );

        // The allowed path itself a link to somewhere else: refused.
        let sneaky = root.path().join("sneaky");
        std::os::unix::fs::symlink(&outside, &sneaky).unwrap();
        let out = clean(
            sneaky.to_str().unwrap(),
            Duration::from_secs(1),
            &[logs.clone(), sneaky.clone().parent().unwrap().join("logs")],
        );
        assert!(
            matches!(out, Outcome::Failed(ref s) if s.contains("not under [actions] clean_allow")),
            "{out:?}"
        );
        assert!(outside.join("keep.db").exists());
        assert!(matches!(
            clean("/nonexistent/x", Duration::from_secs(1), &[]),
            Outcome::Skipped(_)
        ));
    }

    /// A directory in the tree swapped for a link to an outside directory and back, over
    /// and over, while clean runs: nothing outside is ever deleted.
    #[test]
    fn a_directory_swapped_for_a_link_during_the_walk_cannot_lead_it_outside() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("logs");
        let outside = root.path().join("precious");
        std::fs::create_dir_all(logs.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let keep: Vec<PathBuf> = (0..50).map(|i| outside.join(format!("keep-{i}"))).collect();
        for p in &keep {
            std::fs::write(p, b"x").unwrap();
            age(p, 3 * 86400);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (logs, outside, stop) = (logs.clone(), outside.clone(), stop.clone());
            std::thread::spawn(move || {
                let (sub, aside) = (logs.join("sub"), logs.join("sub.aside"));
                let mut swaps = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if std::fs::rename(&sub, &aside).is_ok() {
                        let _ = std::os::unix::fs::symlink(&outside, &sub);
                        std::thread::sleep(Duration::from_micros(1500));
                        let _ = std::fs::remove_file(&sub);
                        let _ = std::fs::rename(&aside, &sub);
                        std::thread::sleep(Duration::from_micros(500));
                        swaps += 1;
                    }
                }
                swaps
            })
        };
        let mut deleted = 0;
        for round in 0..60 {
            // Old files in the tree, wherever `sub` is at the moment.
            for i in 0..40 {
                // Written and aged through one handle: `sub` may move meanwhile.
                let old_file = |p: PathBuf| {
                    if let Ok(f) = std::fs::File::create(p) {
                        let _ = f.set_modified(SystemTime::now() - Duration::from_secs(3 * 86400));
                    }
                };
                old_file(logs.join(format!("f-{round}-{i}")));
                if !std::fs::symlink_metadata(logs.join("sub")).is_ok_and(|m| m.is_symlink()) {
                    old_file(logs.join("sub").join(format!("g-{round}-{i}")));
                }
            }
            if let Outcome::Done(s) | Outcome::Failed(s) = clean(
                logs.to_str().unwrap(),
                Duration::from_secs(86400),
                std::slice::from_ref(&logs),
            ) {
                deleted += usize::from(s.starts_with("deleted ") && !s.starts_with("deleted 0 "));
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        assert!(swaps > 20, "the swapper hardly ran ({swaps} swaps)");
        assert!(deleted > 0, "clean never deleted anything");
        for p in &keep {
            assert!(p.exists(), "{} outside the tree was deleted", p.display());
        }
    }
}
