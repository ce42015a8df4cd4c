//! Reading policy directories and files: the small loader around the pure parser.
//!
//! Directories merge by file name (a later directory's `ollama.toml` replaces an earlier
//! one's, the systemd drop-in habit); files are read in file-name order. Only regular files
//! are read (a symlink to one is fine): a FIFO, socket or device named `*.toml` is refused
//! with its path, never opened in a way that could block. This does blocking I/O: the daemon
//! calls it off its loop.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::builtin::{builtin, HostFacts};
use super::diag::{Diagnostic, Diagnostics};
use super::parse::parse_with;
use super::rules::LoadContext;
use super::set::PolicySet;

/// Vendor policies shipped in the package.
pub const VENDOR_DIR: &str = "/usr/lib/vigil/policies.d";
/// Operator policies; same file name replaces the vendor one.
pub const ADMIN_DIR: &str = "/etc/vigil/policies.d";
/// Largest policy file read (a policy of 10,000 checks is about 1 MiB).
pub const POLICY_FILE_MAX_BYTES: u64 = 16 << 20;

fn io_diag(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message,
    }
}

/// Lists the policy files of `dirs` merged by file name, in file-name order. Directories
/// that do not exist are skipped; unreadable ones, and entries that are not regular files,
/// are errors.
pub fn policy_files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostics> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut errors = Vec::new();
    for dir in dirs {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(io_diag(dir, format!("cannot read policy directory: {e}")));
                continue;
            }
        };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") && !name.starts_with('.') {
                by_name.insert(name, entry.path());
            }
        }
    }
    // Only the files that win the merge are looked at: a later directory may replace a
    // bad one by name. A link to /dev/null masks the name (the systemd habit).
    let mut files = Vec::new();
    for path in by_name.into_values() {
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(path),
            Ok(_) if is_masked(&path) => {}
            Ok(m) => errors.push(io_diag(
                &path,
                format!(
                    "not a regular file ({}): policies are read from regular files only; remove it or rename it",
                    kind_of(&m)
                ),
            )),
            Err(e) => errors.push(io_diag(&path, format!("cannot read policy file: {e}"))),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(Diagnostics(errors))
    }
}

/// Whether `path` is a link to /dev/null, which masks a vendor policy of that name.
fn is_masked(path: &Path) -> bool {
    std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/dev/null"))
}

fn kind_of(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a file"
    }
}

/// Reads a settings or policy file without ever blocking on what is not one: opened
/// non-blocking (a FIFO put in its place cannot wedge the reader), refused unless it is a
/// regular file — or /dev/null, which reads as empty (the masking habit) — and bounded in
/// size. A file that is not there is `ErrorKind::NotFound`.
pub fn read_text_file(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    let nonblock = nix::fcntl::OFlag::O_NONBLOCK.bits();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblock)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        if is_masked(path) {
            return Ok(String::new());
        }
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "not a regular file ({}): only regular files are read",
                kind_of(&meta)
            ),
        ));
    }
    if meta.len() > POLICY_FILE_MAX_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!(
                "{} bytes, more than the {POLICY_FILE_MAX_BYTES} this vigild reads",
                meta.len()
            ),
        ));
    }
    let mut text = String::new();
    file.take(POLICY_FILE_MAX_BYTES + 1)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Reads one policy file (see [`read_text_file`]).
pub fn read_policy_file(path: &Path) -> Result<String, String> {
    read_text_file(path).map_err(|e| format!("cannot read policy file: {e}"))
}

/// Loads the policies of `dirs`; with no file at all, the built-in defaults for what
/// `facts` finds on this host (asked only then).
pub fn load_dirs(
    dirs: &[PathBuf],
    ctx: &LoadContext,
    facts: impl FnOnce() -> HostFacts,
) -> Result<PolicySet, Diagnostics> {
    let files = policy_files(dirs)?;
    if files.is_empty() {
        return Ok(builtin(&facts()));
    }
    load_files(&files, ctx)
}

/// Loads exactly these files (`vigilctl policy check FILE…`).
pub fn load_files(files: &[PathBuf], ctx: &LoadContext) -> Result<PolicySet, Diagnostics> {
    let mut errors = Vec::new();
    let mut texts = Vec::new();
    for path in files {
        match read_policy_file(path) {
            Ok(t) => texts.push((path.clone(), t)),
            Err(e) => errors.push(io_diag(path, e)),
        }
    }
    parse_with(&texts, ctx, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_named_toml_is_refused_with_its_path_and_never_opened_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("10-fifo.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = policy_files(&[dir.path().to_path_buf()]).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].file, fifo);
        assert!(e.0[0].message.contains("a FIFO"), "{e}");
        // Read directly (it appeared after a listing): refused, and this returns at once.
        let e = read_policy_file(&fifo).unwrap_err();
        assert!(e.contains("not a regular file (a FIFO)"), "{e}");
    }

    #[test]
    fn a_later_directory_replaces_a_bad_file_and_dev_null_masks() {
        let vendor = tempfile::tempdir().unwrap();
        let admin = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &vendor.path().join("10-x.toml"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        std::fs::write(vendor.path().join("20-y.toml"), "").unwrap();
        let fixed = admin.path().join("10-x.toml");
        std::fs::write(&fixed, "").unwrap();
        std::os::unix::fs::symlink("/dev/null", admin.path().join("20-y.toml")).unwrap();
        let dirs = [vendor.path().to_path_buf(), admin.path().to_path_buf()];
        assert_eq!(policy_files(&dirs).unwrap(), vec![fixed]);
    }

    #[test]
    fn a_symlink_loop_is_an_error_not_an_empty_set() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        std::os::unix::fs::symlink(&a, &a).unwrap();
        let e = policy_files(&[dir.path().to_path_buf()]).unwrap_err();
        assert_eq!(e.0[0].file, a);
        assert!(e.0[0].message.contains("cannot read policy file"), "{e}");
    }
}
