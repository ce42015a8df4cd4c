//! `vigilctl bundle create`: a signed bundle from a manifest, a payload directory and a
//! minisign secret key, written atomically (temp file beside the output, then rename).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest;
use crate::core::bundle::{FileEntry, Manifest, MANIFEST, PAYLOAD_DIR, SIGNATURE};

/// What to build.
pub struct Create {
    pub manifest: PathBuf,
    pub payload: PathBuf,
    pub key: PathBuf,
    /// For an encrypted key; else it is asked for on the terminal.
    pub password: Option<String>,
    pub zstd: bool,
    /// The bundle to write; `NAME-VERSION.vigil` in the current directory when `None`.
    pub out: Option<PathBuf>,
}

/// What was built.
pub struct Created {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub key_id: String,
}

/// Builds the bundle.
pub fn create(c: &Create) -> Result<Created, String> {
    let text = std::fs::read_to_string(&c.manifest)
        .map_err(|e| format!("cannot read {}: {e}", c.manifest.display()))?;
    let mut m = manifest::parse(&c.manifest, &text).map_err(|d| d.to_string())?;
    let files = payload_files(&c.payload)?;
    if !m.files.is_empty() && m.files != files {
        return Err(format!(
            "{}: its [[file]] list does not match the payload in {} (leave [[file]] out and bundle create lists the payload)",
            c.manifest.display(),
            c.payload.display()
        ));
    }
    m.files = files;
    m.check()
        .map_err(|r| format!("{}: {r}", c.manifest.display()))?;
    let out = c
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(m.file_name()));
    let manifest_text = manifest::render(&m);
    let (signature, key_id) = sign(&c.key, c.password.clone(), manifest_text.as_bytes(), &m)?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp-{}", m.file_name(), std::process::id()));
    let written = write_bundle(&tmp, c, &m, manifest_text.as_bytes(), signature.as_bytes());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", out.display()));
    }
    std::fs::rename(&tmp, &out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", out.display())
    })?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Created {
        path: out,
        manifest: m,
        key_id,
    })
}

/// Signs the manifest (prehashed, trusted comment `vigil-bundle NAME VERSION`); the
/// signature file's text and the key id.
fn sign(
    key: &Path,
    password: Option<String>,
    manifest: &[u8],
    m: &Manifest,
) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(key)
        .map_err(|e| format!("cannot read the secret key {}: {e}", key.display()))?;
    let sk_box = minisign::SecretKeyBox::from_string(&text)
        .map_err(|e| format!("{}: not a minisign secret key: {e}", key.display()))?;
    let sk = match sk_box.clone().into_unencrypted_secret_key() {
        Ok(sk) => sk,
        // Encrypted: the password given, or asked for on the terminal.
        Err(e) if e.to_string().contains("encrypted") => sk_box
            .into_secret_key(password)
            .map_err(|e| format!("{}: cannot open the key: {e}", key.display()))?,
        // `minisign -G -W` (0.11) leaves an unencrypted key's checksum zero, which the
        // crate takes for corruption: such a key is read as it is.
        Err(e) => unencrypted_cli_key(&text)
            .ok_or_else(|| format!("{}: cannot open the key: {e}", key.display()))?,
    };
    let id: [u8; 8] = sk
        .keynum()
        .try_into()
        .map_err(|_| "a key id of the wrong length".to_string())?;
    let sig = minisign::sign(
        None,
        &sk,
        io::Cursor::new(manifest),
        Some(&m.trusted_comment()),
        Some("signature from vigilctl bundle create"),
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    Ok((
        sig.into_string(),
        format!("{:016X}", u64::from_le_bytes(id)),
    ))
}

/// An unencrypted secret key as the minisign CLI writes it (`-W`): no key derivation, a
/// zeroed checksum. `None` for anything else.
fn unencrypted_cli_key(text: &str) -> Option<minisign::SecretKey> {
    use base64::Engine;
    let line = text.lines().nth(1)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .ok()?;
    // Ed, then the key derivation algorithm: none.
    if bytes.get(0..4)? != b"Ed\0\0" {
        return None;
    }
    minisign::SecretKey::from_bytes(&bytes).ok()
}

/// Every regular file under `dir` as `payload/…`, in path order, with size and SHA-256.
/// Links, devices and FIFOs are refused.
pub fn payload_files(dir: &Path) -> Result<Vec<FileEntry>, String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<FileEntry>) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in rd {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let t = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if t.is_dir() {
            walk(root, &path, out)?;
        } else if t.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(|_| format!("{} is outside the payload", path.display()))?;
            let rel = rel
                .to_str()
                .ok_or_else(|| format!("{}: not a UTF-8 path", path.display()))?;
            let (size, sha256) = hash(&path)?;
            out.push(FileEntry {
                path: format!("{PAYLOAD_DIR}/{rel}"),
                size,
                sha256,
            });
        } else {
            return Err(format!(
                "{}: only regular files and directories can go into a bundle",
                path.display()
            ));
        }
    }
    Ok(())
}

fn hash(path: &Path) -> Result<(u64, [u8; 32]), String> {
    let mut f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, h.finalize().into()))
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn write_bundle(
    tmp: &Path,
    c: &Create,
    m: &Manifest,
    manifest: &[u8],
    signature: &[u8],
) -> io::Result<()> {
    let file = File::create(tmp)?;
    let out: Box<dyn Write> = if c.zstd {
        Box::new(
            zstd::stream::write::Encoder::new(BufWriter::new(file.try_clone()?), 3)?.auto_finish(),
        )
    } else {
        Box::new(BufWriter::new(file.try_clone()?))
    };
    let mut tar = tar::Builder::new(out);
    tar.append_data(&mut header(manifest.len() as u64), MANIFEST, manifest)?;
    tar.append_data(&mut header(signature.len() as u64), SIGNATURE, signature)?;
    for f in &m.files {
        let rel = f
            .path
            .strip_prefix(&format!("{PAYLOAD_DIR}/"))
            .unwrap_or(&f.path);
        let src = File::open(c.payload.join(rel))?;
        let mut h = header(f.size);
        tar.append_data(&mut h, &f.path, src.take(f.size))?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    drop(out);
    file.sync_all()
}
