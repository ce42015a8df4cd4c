//! Who this box is, for what it sends out: its hostname, a salted hash of its machine id
//! (never the id itself), and secrets from systemd credentials.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Where systemd keeps the machine id.
pub const MACHINE_ID: &str = "/etc/machine-id";

/// The salt hashed before the machine id. The id is a secret of the box (systemd says not
/// to send it out); with a salt of its own, vigil's hash matches no other program's.
pub const MACHINE_ID_SALT: &str = "vigil-push-machine:5b0f9d2e6c1a4f3e";

/// The hostname, or "" when it cannot be read.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// SHA-256 of the salt and the machine id, in hex.
pub fn machine_hash_of(machine_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(MACHINE_ID_SALT.as_bytes());
    h.update(machine_id.trim().as_bytes());
    hex::encode(h.finalize())
}

/// The hash of the id in `path`, or None when there is none.
pub fn machine_hash(path: &Path) -> Option<String> {
    let id = std::fs::read_to_string(path).ok()?;
    (!id.trim().is_empty()).then(|| machine_hash_of(&id))
}

/// The credential `name` from `dir` (`$CREDENTIALS_DIRECTORY`), trimmed; an error that
/// says what to do when it is missing or empty.
pub fn credential(dir: Option<&Path>, name: &str) -> Result<String, String> {
    let dir = dir.ok_or_else(|| {
        format!(
            "token_credential {name:?} set, but no $CREDENTIALS_DIRECTORY \
             (LoadCredential={name}:… in the unit)"
        )
    })?;
    let token = std::fs::read_to_string(dir.join(name))
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("credential {name:?}: {e}"))?;
    if token.is_empty() {
        return Err(format!(
            "credential {name:?} is empty: write the token into /etc/vigil/credentials/{name} \
             (or the file LoadCredential= names) and restart vigild"
        ));
    }
    Ok(token)
}

/// `$CREDENTIALS_DIRECTORY`, if set.
pub fn credentials_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_salted_and_hides_the_id() {
        let id = "3d1219c7c4c5404aaa1f6d2a48adfda4";
        let h = machine_hash_of(&format!("{id}\n"));
        assert_eq!(h.len(), 64);
        assert_eq!(h, machine_hash_of(id));
        assert!(!h.contains(id));
        let mut plain = Sha256::new();
        plain.update(id.as_bytes());
        assert_ne!(h, hex::encode(plain.finalize()), "salted");
    }

    #[test]
    fn credentials_are_read_trimmed_and_missing_ones_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t"), "secret\n").unwrap();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        assert_eq!(credential(Some(dir.path()), "t").unwrap(), "secret");
        assert!(credential(Some(dir.path()), "empty")
            .unwrap_err()
            .contains("is empty"));
        assert!(credential(None, "t")
            .unwrap_err()
            .contains("CREDENTIALS_DIRECTORY"));
    }
}
