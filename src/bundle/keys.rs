//! Trusted keys (every `*.pub` in `[update] keys_dir`) and the manifest's signature:
//! minisign, prehashed only, its trusted comment naming this very bundle and version.

use std::path::{Path, PathBuf};

use minisign_verify::{Error as SigError, PublicKey, Signature};

use crate::core::bundle::{Manifest, Refusal, MANIFEST, SIGNATURE};

/// Where trusted keys live on the box.
pub const KEYS_DIR_DEFAULT: &str = "/etc/vigil/keys";

/// One trusted public key.
pub struct TrustedKey {
    pub path: PathBuf,
    pub key: PublicKey,
    /// The key id as `minisign` shows it (16 hex digits).
    pub id: String,
}

/// The key id of a public key file's text, as minisign prints it.
pub fn key_id(text: &str) -> Option<String> {
    let pk = minisign::PublicKeyBox::from_string(text)
        .ok()?
        .into_public_key()
        .ok()?;
    let id: [u8; 8] = pk.keynum().try_into().ok()?;
    Some(format!("{:016X}", u64::from_le_bytes(id)))
}

/// Every `*.pub` in `dir`; an error when there is none, or one cannot be read.
pub fn load_keys(dir: &Path) -> Result<Vec<TrustedKey>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot read the trusted keys in {}: {e} (put each minisign public key there as NAME.pub)",
            dir.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    paths.sort();
    let mut keys = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
        let key = PublicKey::decode(&text)
            .or_else(|_| PublicKey::from_base64(text.trim()))
            .map_err(|_| format!("{}: not a minisign public key", path.display()))?;
        let id = key_id(&text).unwrap_or_else(|| "?".into());
        keys.push(TrustedKey { path, key, id });
    }
    if keys.is_empty() {
        return Err(format!(
            "no trusted key (*.pub) in {}: nothing can be verified",
            dir.display()
        ));
    }
    Ok(keys)
}

/// Checks the signature of `manifest_bytes` (which parsed to `manifest`) against the
/// trusted keys; the id of the key that signed it.
pub fn check_signature(
    keys: &[TrustedKey],
    manifest_bytes: &[u8],
    signature: &str,
    manifest: &Manifest,
) -> Result<String, Refusal> {
    let sig = Signature::decode(signature)
        .map_err(|_| Refusal::new(SIGNATURE, "not a minisign signature"))?;
    for k in keys {
        match k.key.verify(manifest_bytes, &sig, false) {
            Ok(()) => {
                let want = manifest.trusted_comment();
                if sig.trusted_comment() != want {
                    return Err(Refusal::new(
                        SIGNATURE,
                        format!(
                            "its trusted comment is not `{want}`: the signature belongs to another bundle or version (sign with -t '{want}')"
                        ),
                    ));
                }
                return Ok(k.id.clone());
            }
            Err(SigError::UnexpectedKeyId) => continue,
            Err(SigError::UnexpectedAlgorithm) | Err(SigError::UnsupportedAlgorithm) => {
                return Err(Refusal::new(
                    SIGNATURE,
                    "a legacy (not prehashed) signature: re-sign with a current minisign (without -l)",
                ))
            }
            Err(SigError::InvalidSignature) => {
                return Err(Refusal::new(
                    MANIFEST,
                    format!(
                        "the signature of key {} does not match it: the manifest changed after it was signed",
                        k.id
                    ),
                ))
            }
            Err(e) => return Err(Refusal::new(SIGNATURE, e.to_string())),
        }
    }
    Err(Refusal::new(
        SIGNATURE,
        "signed by a key that is not trusted here (the trusted keys are the *.pub of [update] keys_dir)",
    ))
}
