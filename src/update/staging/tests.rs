//! Staging real bundles made by `bundle create`: what lands is what was signed and hashed;
//! a tampered payload or too little room leaves no staging directory behind.

use super::*;
use crate::bundle::{create, load_keys, Create, TrustedKey};

const APP_TAR: &str = "payload/images/app.tar";
const COMPOSE: &str = "payload/compose/app.yml";

struct Bed {
    _dir: tempfile::TempDir,
    keys: Vec<TrustedKey>,
    state: PathBuf,
    bundle: PathBuf,
    /// The payload files and their bytes.
    files: Vec<(&'static str, Vec<u8>)>,
}

fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Bed {
    fn new(zstd: bool) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (keys_dir, payload, state) = (root.join("keys"), root.join("src"), root.join("state"));
        for d in [&keys_dir, &payload, &state] {
            fs::create_dir_all(d).unwrap();
        }
        let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let key = root.join("secret.key");
        fs::write(&key, kp.sk.to_box(None).unwrap().to_string()).unwrap();
        fs::write(
            keys_dir.join("test.pub"),
            kp.pk.to_box().unwrap().to_string(),
        )
        .unwrap();
        let files = vec![
            (APP_TAR, noise(3 << 20)),
            (
                COMPOSE,
                b"services:\n  app: {image: demo/app:1.4.0}\n".to_vec(),
            ),
        ];
        for (path, bytes) in &files {
            let p = payload.join(path.strip_prefix("payload/").unwrap());
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        }
        let manifest = root.join("manifest.toml");
        fs::write(
            &manifest,
            format!(
                "[bundle]\nname = \"demo\"\nversion = \"1.4.0\"\n\n\
                 [[step]]\ndo = \"docker-load\"\nfile = \"{APP_TAR}\"\n\n\
                 [[step]]\ndo = \"install\"\nfile = \"{COMPOSE}\"\nto = \"compose/app.yml\"\n"
            ),
        )
        .unwrap();
        let bundle = root.join("demo-1.4.0.vigil");
        create(&Create {
            manifest,
            payload,
            key,
            password: None,
            zstd,
            out: Some(bundle.clone()),
        })
        .unwrap();
        Bed {
            keys: load_keys(&keys_dir).unwrap(),
            _dir: dir,
            state,
            bundle,
            files,
        }
    }

    fn check(&self) -> Check<'_> {
        Check {
            keys: &self.keys,
            installed: None,
            model: None,
            allow_downgrade: false,
        }
    }

    fn stage(&self, run: &str) -> (Result<Staged, String>, Vec<(u64, u64)>) {
        let mut calls = Vec::new();
        let out = stage_with(
            &self.bundle,
            &self.check(),
            &self.state,
            run,
            None,
            &mut |d, t| calls.push((d, t)),
        );
        (out, calls)
    }
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn a_bundle_is_staged_as_it_was_verified() {
    for zstd in [false, true] {
        let bed = Bed::new(zstd);
        let (staged, calls) = bed.stage("7");
        let staged = staged.unwrap();
        assert_eq!(staged.dir, bed.state.join("staging/7"));
        assert_eq!(staged.verified.compressed, zstd);
        assert_eq!(
            tree(&staged.dir),
            [
                "manifest.toml",
                "manifest.toml.minisig",
                "payload/compose/app.yml",
                "payload/images/app.tar"
            ]
        );
        for (path, bytes) in &bed.files {
            assert_eq!(
                &fs::read(staged_file(&bed.state, "7", path)).unwrap(),
                bytes
            );
        }
        let m = staged_manifest(&bed.state, "7").unwrap();
        assert_eq!(m, staged.verified.manifest);
        // Progress: from 0 to the total, rising, about once a MiB.
        let total = m.total_size();
        assert_eq!(calls.first(), Some(&(0, total)));
        assert_eq!(calls.last(), Some(&(total, total)));
        assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
        assert!(calls.len() <= 6, "{calls:?}");
        // A run staged again starts afresh; discarding is fine twice.
        fs::write(staged.dir.join("stray"), b"x").unwrap();
        bed.stage("7").0.unwrap();
        assert!(!staged.dir.join("stray").exists());
        discard(&bed.state, "7").unwrap();
        discard(&bed.state, "7").unwrap();
        assert!(!staged.dir.exists());
    }
}

#[test]
fn a_tampered_payload_leaves_no_staging_directory() {
    let bed = Bed::new(false);
    let mut bytes = fs::read(&bed.bundle).unwrap();
    // A byte in the middle of the image archive's data.
    let needle = &bed.files[0].1[1 << 20..(1 << 20) + 64];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the payload is in the tar");
    bytes[at] ^= 0xff;
    fs::write(&bed.bundle, &bytes).unwrap();
    let (out, _) = bed.stage("8");
    let why = out.unwrap_err();
    assert_eq!(why, format!("{APP_TAR}: sha256 differs from the manifest"));
    assert!(!bed.state.join("staging/8").exists());
    assert!(staged_manifest(&bed.state, "8").is_err());
}

#[test]
fn too_little_room_refuses_before_anything_is_copied() {
    let bed = Bed::new(false);
    // The current release holds a sparse file of 8 TiB: a copy of it cannot fit.
    let releases = Releases::new(&bed.state);
    let current = releases.prepare("1.3.0").unwrap();
    File::create(current.join("huge"))
        .unwrap()
        .set_len(8 << 40)
        .unwrap();
    releases.switch(Some("1.3.0")).unwrap();
    let (out, calls) = bed.stage("9");
    let why = out.unwrap_err();
    let middle = format!(" in {}, ", bed.state.display());
    assert!(
        why.starts_with(&format!("{}: needs 8.0 TiB", bed.bundle.display()))
            && why.contains(&middle)
            && why.ends_with(" free"),
        "{why}"
    );
    assert!(calls.is_empty(), "nothing was copied: {calls:?}");
    assert!(!bed.state.join("staging/9").exists());
}

#[test]
fn run_names_are_plain() {
    let bed = Bed::new(false);
    for bad in ["", "..", "a/b", ".hidden", "/abs", "7/"] {
        let (out, _) = bed.stage(bad);
        assert!(out.is_err(), "{bad:?}");
        assert!(discard(&bed.state, bad).is_err(), "{bad:?}");
    }
    assert!(bed.state.is_dir());
    assert!(!bed.state.join("staging").exists() || tree(&bed.state.join("staging")).is_empty());
}
