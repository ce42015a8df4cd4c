//! Staging: the bundle is verified and copied into `STATE/staging/RUN/` in the same pass, so
//! what is installed is exactly what was verified and the stick may be pulled afterwards.
//! Once the manifest's signature is verified, and before the first payload byte is copied,
//! the free-space check may refuse the run. Each payload file is written under a temporary
//! name, fsynced and renamed only once its hash matched; the signed manifest and its
//! signature are kept beside it. Whatever fails, the partial staging directory goes.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::release::{sync_dir, Releases};
use super::space;
use crate::bundle::manifest::parse;
use crate::bundle::{verify_file, Check, Sink, Verified};
use crate::core::bundle::{entry_path, in_payload, FileEntry, Manifest, MANIFEST, SIGNATURE};

/// Where Docker keeps images unless `docker info` says otherwise.
pub const DOCKER_ROOT_DEFAULT: &str = "/var/lib/docker";
/// Progress is reported at most this often, in bytes copied.
const PROGRESS_EVERY: u64 = 1 << 20;
/// What a file is written as, in the run's directory (beside `payload/`, so no payload path
/// can be it), until it is complete and verified.
const INCOMING: &str = ".incoming";

/// A bundle verified and copied into the staging directory.
#[derive(Debug, Clone)]
pub struct Staged {
    /// `STATE/staging/RUN`.
    pub dir: PathBuf,
    pub verified: Verified,
}

/// `STATE/staging`.
pub fn staging_root(state_dir: &Path) -> PathBuf {
    state_dir.join("staging")
}

/// `STATE/staging/RUN`.
pub fn staging_dir(state_dir: &Path, run: &str) -> PathBuf {
    staging_root(state_dir).join(run)
}

/// The staged file of a payload path (e.g. `payload/images/x.tar`).
pub fn staged_file(state_dir: &Path, run: &str, payload_path: &str) -> PathBuf {
    staging_dir(state_dir, run).join(payload_path)
}

/// Verifies `bundle` and copies it into `STATE/staging/RUN/` in the same pass, checking free
/// space (Docker's root at its default place when that exists) before the first byte is
/// copied. `progress(done, total)` is called at most every MiB and once at the end. `Err`
/// is the refusal, and no staging directory is left.
pub fn stage(
    bundle: &Path,
    check: &Check<'_>,
    state_dir: &Path,
    run: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Staged, String> {
    let docker_root = Path::new(DOCKER_ROOT_DEFAULT);
    let docker_root = docker_root.is_dir().then_some(docker_root);
    stage_with(bundle, check, state_dir, run, docker_root, progress)
}

/// [`stage`], with the images' space checked on `docker_root` (`docker info`'s
/// `DockerRootDir`, see [`super::images::docker_root`]); not checked when `None`.
pub fn stage_with(
    bundle: &Path,
    check: &Check<'_>,
    state_dir: &Path,
    run: &str,
    docker_root: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Staged, String> {
    if !plain_run(run) {
        return Err(format!("{run:?} is not a run name"));
    }
    let dir = staging_dir(state_dir, run);
    let mut sink = Stager {
        state_dir,
        docker_root,
        dir: dir.clone(),
        signed: None,
        open: None,
        total: 0,
        done: 0,
        reported: 0,
        progress,
    };
    let made = sink
        .start()
        .map_err(|e| format!("cannot stage in {}: {e}", dir.display()));
    let verified =
        made.and_then(|_| verify_file(bundle, check, &mut sink).map_err(|r| r.to_string()));
    let staged = verified.and_then(|v| {
        sink.finish()
            .map_err(|e| format!("cannot stage in {}: {e}", dir.display()))?;
        Ok(v)
    });
    match staged {
        Ok(verified) => Ok(Staged { dir, verified }),
        Err(why) => {
            drop(sink);
            let _ = discard(state_dir, run);
            Err(why)
        }
    }
}

/// A run's name is one plain path component (its id).
fn plain_run(run: &str) -> bool {
    entry_path(run).is_ok_and(|r| r == run && !r.contains('/') && !r.starts_with('.'))
}

/// Removes `STATE/staging/RUN` (fine when absent).
pub fn discard(state_dir: &Path, run: &str) -> io::Result<()> {
    if !plain_run(run) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{run:?} is not a run name"),
        ));
    }
    let dir = staging_dir(state_dir, run);
    match fs::remove_dir_all(&dir) {
        Ok(()) => sync_dir(&staging_root(state_dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads back the staged manifest (after a restart). The file is the one that was signed;
/// the signature itself was checked while staging.
pub fn staged_manifest(state_dir: &Path, run: &str) -> Result<Manifest, String> {
    let path = staging_dir(state_dir, run).join(MANIFEST);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let m = parse(&path, &text).map_err(|d| d.to_string())?;
    m.check().map_err(|r| format!("{}: {r}", path.display()))?;
    Ok(m)
}

/// The sink that writes a bundle into its staging directory as it is verified.
struct Stager<'a> {
    state_dir: &'a Path,
    docker_root: Option<&'a Path>,
    dir: PathBuf,
    /// The signed manifest and its signature, written once the space check passed.
    signed: Option<(Vec<u8>, Vec<u8>)>,
    /// The file being written: its final path and writer.
    open: Option<(PathBuf, BufWriter<File>)>,
    total: u64,
    done: u64,
    reported: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl Stager<'_> {
    fn incoming(&self) -> PathBuf {
        self.dir.join(INCOMING)
    }

    /// Writes `bytes` to `name` in the run's directory under a temporary name, fsynced,
    /// then renamed.
    fn write_durably(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.incoming();
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(name))
    }

    /// A fresh, empty staging directory (a leftover of the same run is removed).
    fn start(&mut self) -> io::Result<()> {
        let root = staging_root(self.state_dir);
        fs::create_dir_all(&root)?;
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir(&self.dir)?;
        sync_dir(&root)
    }

    /// Every directory of the staging tree fsynced, deepest first, then the run's.
    fn finish(&mut self) -> io::Result<()> {
        (self.progress)(self.done, self.total);
        fn sync_tree(dir: &Path) -> io::Result<()> {
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    sync_tree(&entry.path())?;
                }
            }
            sync_dir(dir)
        }
        sync_tree(&self.dir)?;
        sync_dir(&staging_root(self.state_dir))
    }

    fn report(&mut self) {
        if self.done - self.reported >= PROGRESS_EVERY {
            self.reported = self.done;
            (self.progress)(self.done, self.total);
        }
    }
}

impl Sink for Stager<'_> {
    fn signed(&mut self, manifest: &[u8], signature: &[u8]) -> io::Result<()> {
        self.signed = Some((manifest.to_vec(), signature.to_vec()));
        Ok(())
    }

    fn manifest(&mut self, m: &Manifest) -> io::Result<()> {
        let releases = Releases::new(self.state_dir);
        let current = releases.current_dir().filter(|d| d.is_dir());
        space::check(m, self.state_dir, current.as_deref(), self.docker_root)
            .map_err(io::Error::other)?;
        let (text, signature) = self.signed.take().unwrap_or_default();
        self.write_durably(MANIFEST, &text)?;
        self.write_durably(SIGNATURE, &signature)?;
        self.total = m.total_size();
        (self.progress)(0, self.total);
        Ok(())
    }

    fn begin(&mut self, file: &FileEntry) -> io::Result<()> {
        // The verifier let only normalised paths under payload/ through; checked again,
        // since this one writes.
        if entry_path(&file.path).ok().as_deref() != Some(file.path.as_str())
            || !in_payload(&file.path)
        {
            return Err(io::Error::other(format!(
                "{} is not a payload path",
                file.path
            )));
        }
        let path = self.dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.incoming())?;
        self.open = Some((path, BufWriter::with_capacity(256 << 10, f)));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some((_, w)) = self.open.as_mut() else {
            return Err(io::Error::other("bytes outside a file"));
        };
        w.write_all(bytes)?;
        self.done += bytes.len() as u64;
        self.report();
        Ok(())
    }

    fn end(&mut self, _file: &FileEntry) -> io::Result<()> {
        let Some((path, w)) = self.open.take() else {
            return Err(io::Error::other("no file was begun"));
        };
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(self.incoming(), &path)
    }
}

#[cfg(test)]
mod tests;
