//! Verifying a bundle in one streaming pass, before anything on the box changes.
//!
//! The tar is read entry by entry (never unpacked): `manifest.toml` first (≤ 1 MiB), parsed
//! and checked; then its signature, checked against the trusted keys; then every payload
//! entry — only regular files and directories, normalised relative paths under `payload/`,
//! each once, each file listed with its size and SHA-256, hashed as it streams by. Nothing is
//! held in memory but one buffer, and nothing is written: a [`Sink`] sees each file's bytes
//! (`update verify` passes one that drops them; staging writes them). zstd is detected by
//! its magic; reading stops at the size the manifest declares plus tar's overhead, so a
//! compression bomb ends early.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::rc::Rc;

use semver::Version;
use sha2::{Digest, Sha256};
use tar::EntryType;

use super::keys::{check_signature, TrustedKey};
use super::manifest;
use crate::core::bundle::{
    entry_path, in_payload, FileEntry, Manifest, Refusal, ENTRIES_MAX, MANIFEST,
    MANIFEST_MAX_BYTES, PAYLOAD_DIR, SIGNATURE, SIGNATURE_MAX_BYTES,
};

/// zstd's frame magic, little-endian `0xFD2FB528`.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Largest zstd window accepted (2^24 = 16 MiB), so decompression memory stays bounded.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// What tar may read between one entry's data and the next one's: headers, a PAX or GNU
/// long-name record, padding. The tar crate reads such records whole into memory, so this
/// is also the most memory one of them can take.
const TAR_OVERHEAD_PER_ENTRY: u64 = 16 << 10;
/// Read buffer.
const CHUNK: usize = 256 << 10;

/// What verification needs to know about this box.
pub struct Check<'a> {
    pub keys: &'a [TrustedKey],
    /// The installed release's version, if any.
    pub installed: Option<Version>,
    /// This box's model (`[device] model`, else /proc/device-tree/model).
    pub model: Option<String>,
    pub allow_downgrade: bool,
}

/// Where verified bytes go.
pub trait Sink {
    /// The manifest as it was signed (its bytes, then the signature's), once its signature
    /// is verified, before [`Sink::manifest`]. An `Err` refuses the bundle with its message.
    fn signed(&mut self, _manifest: &[u8], _signature: &[u8]) -> io::Result<()> {
        Ok(())
    }
    /// The manifest, parsed, checked and its signature verified, before the first payload
    /// entry (a stager checks free space here). An `Err` refuses the bundle with its message.
    fn manifest(&mut self, _manifest: &Manifest) -> io::Result<()> {
        Ok(())
    }
    /// A listed file begins.
    fn begin(&mut self, file: &FileEntry) -> io::Result<()>;
    /// Its next bytes.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// It ended, and was what the manifest says.
    fn end(&mut self, file: &FileEntry) -> io::Result<()>;
}

/// A sink that keeps nothing (`update verify`).
pub struct Discard;

impl Sink for Discard {
    fn begin(&mut self, _: &FileEntry) -> io::Result<()> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn end(&mut self, _: &FileEntry) -> io::Result<()> {
        Ok(())
    }
}

/// A bundle that passed.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// The id of the key that signed it.
    pub key_id: String,
    pub compressed: bool,
}

/// A reader that fails once more bytes went through than the verifier allowed so far: it
/// allows, step by step, only what the next entry may hold, so nothing the bundle says
/// before its signature is checked (nor any tar record) can make it read or hold more.
struct Limited<R> {
    inner: R,
    budget: Rc<Budget>,
}

/// How far reading may go.
#[derive(Default)]
struct Budget {
    read: Cell<u64>,
    limit: Cell<u64>,
}

impl Budget {
    /// From here on, `more` bytes may be read.
    fn allow(&self, more: u64) {
        self.limit.set(self.read.get().saturating_add(more));
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self
            .budget
            .limit
            .get()
            .saturating_sub(self.budget.read.get());
        if room == 0 {
            return Err(io::Error::other(BOMB));
        }
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.budget.read.set(self.budget.read.get() + n as u64);
        Ok(n)
    }
}

const BOMB: &str = "the bundle holds more than its manifest declares";

/// Verifies the bundle file at `path`.
pub fn verify_file(
    path: &Path,
    check: &Check<'_>,
    sink: &mut dyn Sink,
) -> Result<Verified, Refusal> {
    let what = path.display().to_string();
    // Opened without blocking: a FIFO named like a bundle is refused, not waited on.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| Refusal::new(&what, format!("cannot read it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Refusal::new(&what, e.to_string()))?;
    if !meta.is_file() {
        return Err(Refusal::new(&what, "not a regular file"));
    }
    if meta.len() == 0 {
        return Err(Refusal::new(&what, "an empty file, not a bundle"));
    }
    verify(
        io::BufReader::with_capacity(CHUNK, file),
        &what,
        check,
        sink,
    )
}

/// Verifies a bundle read from `input`; `what` names it in refusals.
pub fn verify(
    mut input: impl Read,
    what: &str,
    check: &Check<'_>,
    sink: &mut dyn Sink,
) -> Result<Verified, Refusal> {
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut input, &mut magic).map_err(|e| Refusal::new(what, e.to_string()))?;
    let head = io::Cursor::new(magic[..got].to_vec());
    let compressed = got == 4 && magic == ZSTD_MAGIC;
    // First: room for the manifest's header and the manifest.
    let budget = Rc::new(Budget::default());
    budget.allow(TAR_OVERHEAD_PER_ENTRY + MANIFEST_MAX_BYTES + 512);
    let raw = head.chain(input);
    let reader: Box<dyn Read> = if compressed {
        let mut d = zstd::stream::read::Decoder::new(raw)
            .map_err(|e| Refusal::new(what, format!("not a zstd stream: {e}")))?;
        d.window_log_max(ZSTD_WINDOW_LOG_MAX)
            .map_err(|e| Refusal::new(what, e.to_string()))?;
        Box::new(d)
    } else {
        Box::new(raw)
    };
    let limited = Limited {
        inner: reader,
        budget: budget.clone(),
    };
    let mut archive = tar::Archive::new(limited);
    let entries = archive
        .entries()
        .map_err(|e| Refusal::new(what, format!("not a tar archive: {e}")))?;
    // The tar crate's own words can quote the bytes it choked on: say what happened in
    // ours, on one line.
    let tar_error = |e: io::Error| {
        if e.to_string().contains(BOMB) {
            Refusal::new(what, BOMB)
        } else if e.kind() == io::ErrorKind::UnexpectedEof {
            Refusal::new(what, "truncated: it ends inside an entry")
        } else {
            Refusal::new(what, "not a tar archive, or a damaged one")
        }
    };
    let mut state = State::default();
    for (i, entry) in entries.enumerate() {
        let mut entry = entry.map_err(tar_error)?;
        if i >= ENTRIES_MAX {
            return Err(Refusal::new(
                what,
                format!("more than {ENTRIES_MAX} entries"),
            ));
        }
        let raw_path = entry
            .path()
            .map_err(|_| Refusal::new(what, "an entry path that is not valid"))?
            .to_string_lossy()
            .into_owned();
        let path = entry_path(&raw_path).map_err(|why| Refusal::new(&raw_path, why))?;
        let kind = entry.header().entry_type();
        if !matches!(kind, EntryType::Regular | EntryType::Directory) {
            return Err(Refusal::new(
                &path,
                "only regular files and directories may be in a bundle (no links, devices or FIFOs)",
            ));
        }
        if !state.seen.insert(path.clone()) {
            return Err(Refusal::new(&path, "in the bundle twice"));
        }
        // The size the entry really has (a PAX record may say another than the header).
        let size = entry.size();
        match (i, state.manifest.as_ref()) {
            (0, _) => {
                if path != MANIFEST || kind != EntryType::Regular {
                    return Err(Refusal::new(
                        &path,
                        format!("the first entry must be {MANIFEST}"),
                    ));
                }
                if size > MANIFEST_MAX_BYTES {
                    return Err(Refusal::new(
                        MANIFEST,
                        format!("larger than {MANIFEST_MAX_BYTES} bytes"),
                    ));
                }
                let bytes = read_all(&mut entry, size).map_err(tar_error)?;
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| Refusal::new(MANIFEST, "not UTF-8 text"))?;
                let m = manifest::parse(Path::new(MANIFEST), text).map_err(|d| {
                    Refusal::new(MANIFEST, format!("{}:{}: {}", d.line, d.column, d.message))
                })?;
                m.check()?;
                m.fits(
                    check.installed.as_ref(),
                    check.model.as_deref(),
                    check.allow_downgrade,
                )?;
                // Unsigned yet: what it declares is believed only once its signature is
                // checked. Next: the signature's header and the signature.
                budget.allow(TAR_OVERHEAD_PER_ENTRY + SIGNATURE_MAX_BYTES + 512);
                state.manifest_bytes = bytes;
                state.manifest = Some(m);
            }
            (1, Some(m)) => {
                if path != SIGNATURE || kind != EntryType::Regular {
                    return Err(Refusal::new(
                        &path,
                        format!("the second entry must be {SIGNATURE}"),
                    ));
                }
                if size > SIGNATURE_MAX_BYTES {
                    return Err(Refusal::new(SIGNATURE, "too large for a signature"));
                }
                let bytes = read_all(&mut entry, size).map_err(tar_error)?;
                let text = String::from_utf8_lossy(&bytes);
                state.key_id = Some(check_signature(
                    check.keys,
                    &state.manifest_bytes,
                    &text,
                    m,
                )?);
                let refused = |e: io::Error| Refusal::new(what, e.to_string());
                sink.signed(&state.manifest_bytes, &bytes)
                    .map_err(refused)?;
                sink.manifest(m).map_err(refused)?;
                // Signed: next, the first payload entry's header.
                budget.allow(TAR_OVERHEAD_PER_ENTRY);
            }
            (_, Some(_)) if state.key_id.is_none() => {
                return Err(Refusal::new(SIGNATURE, "missing: the bundle is not signed"));
            }
            (_, Some(m)) => {
                if !in_payload(&path) {
                    return Err(Refusal::new(&path, format!("outside {PAYLOAD_DIR}/")));
                }
                if kind == EntryType::Directory {
                    budget.allow(TAR_OVERHEAD_PER_ENTRY);
                    continue;
                }
                let Some(listed) = m.file(&path).cloned() else {
                    return Err(Refusal::new(&path, "not listed in the manifest"));
                };
                if size != listed.size {
                    return Err(Refusal::new(
                        &path,
                        format!("{size} bytes, the manifest says {}", listed.size),
                    ));
                }
                // Its data, its padding, and the next entry's header.
                budget.allow(size.saturating_add(512 + TAR_OVERHEAD_PER_ENTRY));
                stream_file(&mut entry, &listed, sink).map_err(|e| match e {
                    StreamError::Io(e) => tar_error(e),
                    StreamError::Refused(r) => r,
                })?;
            }
            (_, None) => unreachable!("the first entry is the manifest or refused"),
        }
    }
    let Some(m) = state.manifest else {
        return Err(Refusal::new(what, "an empty archive, not a bundle"));
    };
    let Some(key_id) = state.key_id else {
        return Err(Refusal::new(SIGNATURE, "missing: the bundle is not signed"));
    };
    if let Some(missing) = m.files.iter().find(|f| !state.seen.contains(&f.path)) {
        return Err(Refusal::new(
            &missing.path,
            "listed in the manifest but not in the bundle",
        ));
    }
    Ok(Verified {
        manifest: m,
        key_id,
        compressed,
    })
}

#[derive(Default)]
struct State {
    manifest: Option<Manifest>,
    manifest_bytes: Vec<u8>,
    key_id: Option<String>,
    seen: HashSet<String>,
}

enum StreamError {
    Io(io::Error),
    Refused(Refusal),
}

/// Streams one payload file through SHA-256 into the sink; refuses a size or hash that
/// differs from the manifest.
fn stream_file(
    entry: &mut impl Read,
    listed: &FileEntry,
    sink: &mut dyn Sink,
) -> Result<(), StreamError> {
    let sink_error = |e: io::Error| {
        StreamError::Refused(Refusal::new(&listed.path, format!("cannot keep it: {e}")))
    };
    sink.begin(listed).map_err(sink_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = entry.read(&mut buf).map_err(StreamError::Io)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
        sink.write(&buf[..n]).map_err(sink_error)?;
    }
    if total != listed.size {
        return Err(StreamError::Refused(Refusal::new(
            &listed.path,
            format!("truncated: {total} of {} bytes", listed.size),
        )));
    }
    if hasher.finalize()[..] != listed.sha256[..] {
        return Err(StreamError::Refused(Refusal::new(
            &listed.path,
            "sha256 differs from the manifest",
        )));
    }
    sink.end(listed).map_err(sink_error)
}

/// Reads exactly `size` bytes (small entries: manifest, signature).
fn read_all(entry: &mut impl Read, size: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(size as usize);
    entry.take(size).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated entry",
        ));
    }
    Ok(bytes)
}

/// Reads up to `buf.len()` bytes; how many.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(data: &[u8]) -> Refusal {
        verify(
            io::Cursor::new(data),
            "fuzz",
            &Check {
                keys: &[],
                installed: None,
                model: None,
                allow_downgrade: true,
            },
            &mut Discard,
        )
        .unwrap_err()
    }

    /// Found by fuzzing: an unsigned manifest declaring an enormous file, then a PAX record
    /// (or a GNU long name) of 1 GiB of zeros, zstd-compressed to 34 KB. It must be refused
    /// before the record is read, not after 1.5 GB were allocated for it.
    #[test]
    fn a_huge_tar_record_after_an_unsigned_manifest_is_refused_early() {
        for input in [
            &include_bytes!("../../fuzz/regressions/bundle-1")[..],
            &include_bytes!("../../fuzz/regressions/bundle-2")[..],
        ] {
            let r = refused(input);
            assert_eq!(r.why, BOMB, "{r}");
        }
    }
}
