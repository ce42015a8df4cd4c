//! `clean DIR older-than DUR`: delete old files, only inside allow-listed trees, never
//! following a link out of them.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::outcome::Outcome;
use crate::core::metric::human_bytes;

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
    let dev = std::fs::symlink_metadata(&real)
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::dev(&m));
    let mut stack = vec![real.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            errors.push(format!("cannot read {}", d.display()));
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if Some(std::os::unix::fs::MetadataExt::dev(&meta)) == dev {
                    stack.push(path);
                }
                continue;
            }
            let old = meta.modified().map(|m| m < cutoff).unwrap_or(false);
            if !old {
                continue;
            }
            // Files and links alike are unlinked; a link's target is never touched.
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    files += 1;
                    if meta.is_file() {
                        bytes += meta.len();
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
}
