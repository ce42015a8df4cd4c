//! Release directories: `STATE/releases/<name>/`, and `STATE/releases/current`, a relative
//! symlink to the one in use, switched by an atomic rename. A new release starts as a copy
//! of the current one (made under a temporary name, then renamed, so a release directory
//! is never half copied) and gets the bundle's `install` files; every file and directory
//! written is fsynced before it counts.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::core::bundle::entry_path;

/// The link's name in the releases directory.
pub const CURRENT: &str = "current";
/// What temporary names in the releases directory start with (never a release's name).
const TMP_PREFIX: &str = ".tmp-";
/// A file installed where none was before gets this mode.
const NEW_FILE_MODE: u32 = 0o644;

/// The releases of one state directory.
#[derive(Debug, Clone)]
pub struct Releases {
    root: PathBuf,
}

/// Where [`Releases::switch`] can be made to fail in tests: after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SwitchStep {
    TempLinked,
    Renamed,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// A release name is one plain path component, neither `current` nor a temporary name.
fn valid(name: &str) -> io::Result<()> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.starts_with('.')
        && !name.chars().any(char::is_control);
    if !plain || name == CURRENT {
        return Err(invalid(format!("{name:?} is not a release name")));
    }
    Ok(())
}

/// fsync of a directory, so the entries made or renamed in it are on disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Copies `from` to a new file `to` with `mode`, fsynced.
fn copy_file(from: &Path, to: &Path, mode: u32) -> io::Result<()> {
    let mut src = File::open(from)?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(to)?;
    io::copy(&mut src, &mut dst)?;
    dst.flush()?;
    // The mode asked for, not what the umask left of it.
    dst.set_permissions(fs::Permissions::from_mode(mode))?;
    dst.sync_all()
}

/// Copies the tree `from` into the new directory `to`: directories, regular files and
/// symlinks (as links), with their permission bits; anything else (sockets, FIFOs,
/// devices) is left out. Every directory is fsynced after its entries.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    fs::create_dir(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let m = fs::symlink_metadata(&src)?;
        let kind = m.file_type();
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            copy_file(&src, &dst, m.mode() & 0o7777)?;
        } else if kind.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        }
    }
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    sync_dir(to)
}

impl Releases {
    /// The releases of `state_dir` (`STATE/releases`).
    pub fn new(state_dir: &Path) -> Releases {
        Releases {
            root: state_dir.join("releases"),
        }
    }

    /// `STATE/releases`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `STATE/releases/<name>`.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The name `current` points at, if any (None on a fresh box).
    pub fn current(&self) -> Option<String> {
        let target = fs::read_link(self.root.join(CURRENT)).ok()?;
        let name = target.file_name()?.to_str()?.to_string();
        valid(&name).ok().map(|_| name)
    }

    /// The directory `current` points at, if any.
    pub fn current_dir(&self) -> Option<PathBuf> {
        self.current().map(|n| self.dir(&n))
    }

    /// A fresh `releases/<name>/` made as a copy of the current release (empty when there is
    /// no `current`; an error when it points at nothing); a leftover of that name (a crashed
    /// run) is removed first. The copy is made under a
    /// temporary name and renamed into place. The current release itself is refused.
    pub fn prepare(&self, name: &str) -> io::Result<PathBuf> {
        valid(name)?;
        if self.current().as_deref() == Some(name) {
            return Err(invalid(format!(
                "release {name} is the current one: a new release needs a name of its own"
            )));
        }
        fs::create_dir_all(&self.root)?;
        let dir = self.dir(name);
        let tmp = self.root.join(format!("{TMP_PREFIX}{name}"));
        remove_tree(&dir)?;
        remove_tree(&tmp)?;
        let made = match self.current_dir() {
            Some(current) if current.is_dir() => copy_tree(&current, &tmp),
            Some(current) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "{CURRENT} points at {}, which is not a directory",
                        current.display()
                    ),
                ))
            }
            None => fs::create_dir(&tmp).and_then(|_| sync_dir(&tmp)),
        };
        if let Err(e) = made {
            let _ = remove_tree(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &dir)?;
        sync_dir(&self.root)?;
        Ok(dir)
    }

    /// Copies `staged` to `releases/<name>/<to>`: a temporary file beside it, fsynced, then
    /// renamed over it; parent directories are made. `to` must stay inside the release (no
    /// `..`, not absolute, no symlink on the way). A file it replaces keeps its mode; a new
    /// one is 0644.
    pub fn install(&self, name: &str, staged: &Path, to: &str) -> io::Result<()> {
        valid(name)?;
        let rel = entry_path(to).map_err(|why| invalid(format!("install to {to:?}: {why}")))?;
        let release = self.dir(name);
        if !fs::symlink_metadata(&release)?.is_dir() {
            return Err(invalid(format!("{} is not a directory", release.display())));
        }
        let parts: Vec<&str> = rel.split('/').collect();
        let (file_name, dirs) = parts.split_last().expect("a path has a component");
        let mut parent = release.clone();
        for d in dirs {
            parent.push(d);
            match fs::symlink_metadata(&parent) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(invalid(format!(
                        "install to {to}: {} is not a directory (a link is not followed)",
                        parent.display()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&parent)?;
                    sync_dir(parent.parent().expect("inside the release"))?;
                }
                Err(e) => return Err(e),
            }
        }
        let target = parent.join(file_name);
        let mode = match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(invalid(format!(
                    "install to {to}: {} is a directory",
                    target.display()
                )))
            }
            Ok(m) if m.is_file() => m.mode() & 0o7777,
            _ => NEW_FILE_MODE,
        };
        let tmp = parent.join(format!("{TMP_PREFIX}{file_name}"));
        remove_tree(&tmp)?;
        if let Err(e) = copy_file(staged, &tmp, mode).and_then(|_| fs::rename(&tmp, &target)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&parent)
    }

    /// Points `current` at `<name>` (`None`: removes the link) atomically: a new link under
    /// a temporary name, renamed over `current`, then an fsync of the directory. Idempotent;
    /// whenever it stops, `current` is the old link or the new one.
    pub fn switch(&self, name: Option<&str>) -> io::Result<()> {
        self.switch_with(name, &mut |_| Ok(()))
    }

    /// [`Releases::switch`], calling `after` after each step (tests make it fail there).
    pub(super) fn switch_with(
        &self,
        name: Option<&str>,
        after: &mut dyn FnMut(SwitchStep) -> io::Result<()>,
    ) -> io::Result<()> {
        let link = self.root.join(CURRENT);
        let Some(name) = name else {
            match fs::remove_file(&link) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
            return sync_dir(&self.root);
        };
        valid(name)?;
        if !fs::symlink_metadata(self.dir(name))?.is_dir() {
            return Err(invalid(format!("release {name} is not a directory")));
        }
        let tmp = self.root.join(format!("{TMP_PREFIX}{CURRENT}"));
        remove_tree(&tmp)?;
        symlink(name, &tmp)?;
        let done = after(SwitchStep::TempLinked)
            .and_then(|_| fs::rename(&tmp, &link))
            .and_then(|_| after(SwitchStep::Renamed));
        if let Err(e) = done {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.root)
    }

    /// Removes `releases/<name>/` (fine when absent); the current release is refused.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        valid(name)?;
        if self.current().as_deref() == Some(name) {
            return Err(invalid(format!(
                "release {name} is the current one and stays"
            )));
        }
        remove_tree(&self.dir(name))?;
        if self.root.is_dir() {
            sync_dir(&self.root)?;
        }
        Ok(())
    }

    /// Every release directory's name with its modification time, newest first.
    pub fn list(&self) -> io::Result<Vec<(String, SystemTime)>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(String::from) else {
                continue;
            };
            let m = fs::symlink_metadata(entry.path())?;
            if valid(&name).is_ok() && m.is_dir() {
                out.push((name, m.modified()?));
            }
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        Ok(out)
    }

    /// Removes the oldest releases beyond the newest `keep` (by modification time), never
    /// the current one nor those in `spare`; returns the names removed, oldest first.
    /// Temporary leftovers of crashed runs go too.
    pub fn prune(&self, keep: usize, spare: &[&str]) -> io::Result<Vec<String>> {
        let current = self.current();
        let mut removed = Vec::new();
        for (name, _) in self.list()?.into_iter().skip(keep).rev() {
            if current.as_deref() == Some(name.as_str()) || spare.contains(&name.as_str()) {
                continue;
            }
            remove_tree(&self.dir(&name))?;
            removed.push(name);
        }
        if let Ok(entries) = fs::read_dir(&self.root) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    remove_tree(&entry.path())?;
                }
            }
        }
        if self.root.is_dir() {
            sync_dir(&self.root)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
