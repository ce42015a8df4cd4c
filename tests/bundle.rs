//! Update bundles end to end, through the `vigilctl` binary: a bundle from `bundle create`
//! and one signed with the `minisign` CLI (its tar built here) verify; a corpus of hostile
//! bundles, crafted here with raw tar headers, is refused, each for its own reason, and
//! nothing is written while they are checked: not in the state directory, not in the
//! working directory, not in `$TMPDIR`, not in `/tmp`.
//!
//! Keys: `bundle create` signs with a key made by the `minisign` crate, unencrypted (an
//! encrypted key costs scrypt, which takes minutes in a debug build; an unencrypted key
//! made by `minisign -G -W` is refused by the crate). The `minisign` CLI signs with keys it
//! made itself (`-G -W`) and with the crate's key. Both public keys are trusted; a third
//! key, made by the CLI, is not.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tar::{Builder, EntryType, Header};

const VIGILCTL: &str = env!("CARGO_BIN_EXE_vigilctl");
const GIB: u64 = 1 << 30;
const NAME: &str = "demo";
const VERSION: &str = "1.4.0";
/// What the state directory's `releases/current` points at.
const CURRENT: &str = "1.3.0";
const MODEL: &str = "jetson-agx-orin";
const APP: &str = "payload/bin/app";
const APP_BYTES: &[u8] = b"#!/bin/sh\nexec demo --serve --port 8080\n";
const CONF: &str = "payload/etc/app.conf";
const DATA: &str = "payload/share/data.bin";

// ---------------------------------------------------------------------------------------
// The test bed: keys, a state directory, settings.

struct Bed {
    dir: tempfile::TempDir,
    /// Trusted public keys (`--keys`).
    keys: PathBuf,
    /// Made by the minisign crate; `bundle create` signs with it.
    crate_key: PathBuf,
    crate_key_id: String,
    /// Made by `minisign -G -W`; the CLI signs with it.
    cli_key: PathBuf,
    cli_key_id: String,
    /// Made by `minisign -G -W`, not trusted.
    stranger_key: PathBuf,
    /// `[daemon] state_dir`, with a current release.
    state: PathBuf,
    /// vigil.toml: the state directory and `[device] model`.
    config: PathBuf,
    /// The same, on another model.
    other_model_config: PathBuf,
    bundles: PathBuf,
    n: Cell<usize>,
}

fn key_id(pub_text: &str) -> String {
    let pk = minisign::PublicKeyBox::from_string(pub_text)
        .and_then(|b| b.into_public_key())
        .expect("a public key");
    let id: [u8; 8] = pk.keynum().try_into().expect("an 8-byte key id");
    format!("{:016X}", u64::from_le_bytes(id))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn cli_keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let (pk, sk) = (
        dir.join(format!("{name}.pub")),
        dir.join(format!("{name}.key")),
    );
    run_ok(
        Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&pk)
            .arg("-s")
            .arg(&sk),
    );
    let id = key_id(&std::fs::read_to_string(&pk).unwrap());
    (sk, id)
}

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let secrets = root.join("secrets");
        let keys = root.join("keys");
        let bundles = root.join("bundles");
        for d in [&secrets, &keys, &bundles] {
            std::fs::create_dir(d).unwrap();
        }
        // The crate's key, for `bundle create`.
        let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let crate_key = secrets.join("crate.key");
        std::fs::write(&crate_key, kp.sk.to_box(None).unwrap().to_string()).unwrap();
        let pub_text = kp.pk.to_box().unwrap().to_string();
        std::fs::write(keys.join("crate.pub"), &pub_text).unwrap();
        let crate_key_id = key_id(&pub_text);
        // The CLI's keys.
        let (cli_key, cli_key_id) = cli_keypair(&secrets, "cli");
        std::fs::copy(secrets.join("cli.pub"), keys.join("cli.pub")).unwrap();
        let (stranger_key, _) = cli_keypair(&secrets, "stranger");
        // A state directory with a current release and some state.
        let state = root.join("state");
        std::fs::create_dir_all(state.join(format!("releases/{CURRENT}/bin"))).unwrap();
        std::fs::write(
            state.join(format!("releases/{CURRENT}/bin/app")),
            b"old app\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(CURRENT, state.join("releases/current")).unwrap();
        std::fs::write(state.join("vigil.db"), b"not really a database").unwrap();
        let settings = |model: &str| {
            format!(
                "[daemon]\nstate_dir = \"{}\"\n\n[device]\nmodel = \"{model}\"\n",
                state.display()
            )
        };
        let config = root.join("vigil.toml");
        std::fs::write(&config, settings(MODEL)).unwrap();
        let other_model_config = root.join("vigil-other.toml");
        std::fs::write(&other_model_config, settings("raspberry-pi-5")).unwrap();
        Bed {
            dir,
            keys,
            crate_key,
            crate_key_id,
            cli_key,
            cli_key_id,
            stranger_key,
            state,
            config,
            other_model_config,
            bundles,
            n: Cell::new(0),
        }
    }

    /// A fresh directory under the bed.
    fn fresh(&self, what: &str) -> PathBuf {
        let n = self.n.get();
        self.n.set(n + 1);
        let d = self.dir.path().join(format!("{what}-{n}"));
        std::fs::create_dir(&d).unwrap();
        d
    }

    /// Signs `manifest` with the minisign CLI; the signature file's text.
    fn sign(&self, key: &Path, manifest: &str, how: Sig<'_>) -> String {
        let d = self.fresh("sign");
        let m = d.join("manifest.toml");
        let sig = d.join("manifest.toml.minisig");
        std::fs::write(&m, manifest).unwrap();
        let mut cmd = Command::new("minisign");
        cmd.args(["-S", "-W", "-s"])
            .arg(key)
            .arg("-m")
            .arg(&m)
            .arg("-x")
            .arg(&sig);
        match how {
            Sig::Comment(c) => {
                cmd.args(["-t", c]);
            }
            Sig::Legacy(c) => {
                cmd.args(["-l", "-t", c]);
            }
            Sig::CliDefault => {}
        }
        run_ok(&mut cmd);
        std::fs::read_to_string(sig).unwrap()
    }

    /// Signed by the trusted CLI key, as a bundle must be.
    fn signed(&self, manifest: &str, version: &str) -> String {
        self.sign(
            &self.cli_key,
            manifest,
            Sig::Comment(&format!("vigil-bundle {NAME} {version}")),
        )
    }

    /// A payload directory and a manifest without `[[file]]`, made into a bundle by
    /// `vigilctl bundle create` (run in a fresh working directory); the bundle's path.
    fn create(&self, zstd: bool, out: Option<&str>) -> PathBuf {
        let src = self.fresh("create");
        let payload = src.join("payload");
        for (path, data) in payload_files() {
            let p = src.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        let manifest = src.join("manifest.toml");
        std::fs::write(&manifest, manifest_text(VERSION, &[])).unwrap();
        let cwd = self.fresh("cwd");
        let mut cmd = Command::new(VIGILCTL);
        cmd.current_dir(&cwd)
            .args(["bundle", "create", "--manifest"])
            .arg(&manifest)
            .arg("--payload")
            .arg(&payload)
            .arg("--key")
            .arg(&self.crate_key);
        if zstd {
            cmd.arg("--zstd");
        }
        let path = match out {
            Some(o) => {
                let p = self.bundles.join(o);
                cmd.arg("-o").arg(&p);
                p
            }
            None => cwd.join(format!("{NAME}-{VERSION}.vigil")),
        };
        let made = run_ok(&mut cmd);
        let stdout = String::from_utf8_lossy(&made.stdout);
        assert!(
            stdout.contains(&format!("bundle {NAME} {VERSION}, 3 file(s)"))
                && stdout.contains(&format!("signed by key {}", self.crate_key_id)),
            "{stdout}"
        );
        assert!(path.is_file(), "{} was not written", path.display());
        path
    }

    /// Writes a bundle's bytes under `bundles/`; its path.
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.bundles.join(format!("{name}.vigil"));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// `vigilctl update verify BUNDLE --keys KEYS --config CONFIG ARGS…`, run in a fresh
    /// working directory with a fresh `$TMPDIR`; asserts that nothing was written to the
    /// state directory, the working directory, `$TMPDIR` or `/tmp`.
    fn verify(&self, bundle: &Path, args: &[&str]) -> Result<Output, String> {
        let cwd = self.fresh("cwd");
        std::fs::write(cwd.join("keep.txt"), b"the working directory\n").unwrap();
        let tmp = self.fresh("tmp");
        let trees = |label: &str| {
            vec![
                (format!("state directory ({label})"), tree(&self.state)),
                (format!("working directory ({label})"), tree(&cwd)),
                (format!("$TMPDIR ({label})"), tree(&tmp)),
            ]
        };
        let before = trees("before");
        let tmp_before = vigil_in_tmp();
        let mut cmd = Command::new(VIGILCTL);
        cmd.current_dir(&cwd)
            .env("TMPDIR", &tmp)
            .args(["update", "verify"])
            .arg(bundle)
            .arg("--keys")
            .arg(&self.keys);
        if !args.contains(&"--config") {
            cmd.arg("--config").arg(&self.config);
        }
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("vigilctl runs");
        let after = trees("after");
        let tmp_after = vigil_in_tmp();
        let mut wrote = Vec::new();
        for ((what, b), (_, a)) in before.iter().zip(&after) {
            if a != b {
                wrote.push(format!("{what} changed: {b:?} -> {a:?}"));
            }
        }
        let new_in_tmp: Vec<_> = tmp_after.difference(&tmp_before).collect();
        if !new_in_tmp.is_empty() {
            wrote.push(format!("new in /tmp: {new_in_tmp:?}"));
        }
        if wrote.is_empty() {
            Ok(out)
        } else {
            Err(format!("wrote something: {}", wrote.join("; ")))
        }
    }
}

enum Sig<'a> {
    Comment(&'a str),
    Legacy(&'a str),
    /// No `-t`: the CLI's own trusted comment (timestamp and file name).
    CliDefault,
}

/// Every file, directory and link under `root`: path → SHA-256, `dir`, or `-> TARGET`.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &p, out);
            } else {
                out.insert(rel, sha(&std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The names directly in the real `/tmp` that contain "vigil".
fn vigil_in_tmp() -> BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.to_lowercase().contains("vigil"))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Manifests and payloads.

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Bytes that do not repeat (a small LCG).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn payload_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (APP, APP_BYTES.to_vec()),
        (CONF, b"level = 3\n".to_vec()),
        (DATA, noise(64 << 10)),
    ]
}

/// A manifest for `demo VERSION`, from >=1.2.0, for the jetson, listing `files`, installing
/// and restarting the app, with a gate.
fn manifest_text(version: &str, files: &[(&str, Vec<u8>)]) -> String {
    let mut t = format!(
        "[bundle]\nname = \"{NAME}\"\nversion = \"{version}\"\nfrom = \">=1.2.0\"\nhardware = [\"{MODEL}\"]\n"
    );
    for (path, data) in files {
        t += &format!(
            "\n[[file]]\npath = \"{path}\"\nsize = {}\nsha256 = \"{}\"\n",
            data.len(),
            sha(data)
        );
    }
    t += &format!(
        "\n[[step]]\ndo = \"install\"\nfile = \"{APP}\"\nto = \"bin/app\"\n\n[[step]]\ndo = \"restart\"\ntarget = \"unit:demo.service\"\n\n[gate]\nchecks = [\"demo\"]\nwindow = \"30s\"\ntimeout = \"5m\"\n"
    );
    t
}

// ---------------------------------------------------------------------------------------
// Tar, by hand: raw headers, so that anything can be written.

/// A header whose name is written as is (no checks, at most 100 bytes).
fn header_from(mut h: Header, path: &str, kind: EntryType, size: u64) -> Header {
    let name = &mut h.as_old_mut().name;
    assert!(
        path.len() <= name.len(),
        "{path}: too long for a raw header"
    );
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_cksum();
    h
}

fn header(path: &str, kind: EntryType, size: u64) -> Header {
    header_from(Header::new_gnu(), path, kind, size)
}

type Tar = Builder<Vec<u8>>;

fn tar_new() -> Tar {
    Builder::new(Vec::new())
}

fn tar_end(b: Tar) -> Vec<u8> {
    b.into_inner().unwrap()
}

/// What was written so far, without the end-of-archive blocks (the prefix of a stream).
fn tar_prefix(mut b: Tar) -> Vec<u8> {
    std::mem::take(b.get_mut())
}

fn put(b: &mut Tar, path: &str, data: &[u8]) {
    b.append(&header(path, EntryType::Regular, data.len() as u64), data)
        .unwrap();
}

fn put_dir(b: &mut Tar, path: &str) {
    b.append(&header(path, EntryType::Directory, 0), &[][..])
        .unwrap();
}

fn put_special(b: &mut Tar, path: &str, kind: EntryType, link: Option<&str>) {
    let mut h = header(path, kind, 0);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    if matches!(kind, EntryType::Char | EntryType::Block) {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    }
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
}

/// A GNU long-name record (`././@LongLink`, type L) for `path`, then its entry.
fn put_gnu_long(b: &mut Tar, path: &str, data: &[u8]) {
    let mut name = path.as_bytes().to_vec();
    name.push(0);
    b.append(
        &header("././@LongLink", EntryType::GNULongName, name.len() as u64),
        &name[..],
    )
    .unwrap();
    put(b, &path[..100], data);
}

fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut n = body.len() + 1;
    loop {
        let r = format!("{n}{body}");
        if r.len() == n {
            return r;
        }
        n = r.len();
    }
}

/// A PAX extended header (type x) with `records`.
fn put_pax(b: &mut Tar, records: &[(&str, &str)]) {
    let data: String = records.iter().map(|(k, v)| pax_record(k, v)).collect();
    let h = header_from(
        Header::new_ustar(),
        "PaxHeaders/entry",
        EntryType::XHeader,
        data.len() as u64,
    );
    b.append(&h, data.as_bytes()).unwrap();
}

/// A bundle as a bundle should be: manifest, signature, then the payload.
fn good_tar(manifest: &str, sig: &str, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar_new();
    put(&mut b, "manifest.toml", manifest.as_bytes());
    put(&mut b, "manifest.toml.minisig", sig.as_bytes());
    put_dir(&mut b, "payload/");
    for (path, data) in files {
        // append_data writes the path (a GNU long name when it is over 100 bytes).
        let mut h = header("x", EntryType::Regular, data.len() as u64);
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    tar_end(b)
}

fn zstd_frame(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).unwrap()
}

/// One zstd frame of 1 GiB of zeros, encoded once, streaming (never held uncompressed).
fn zeros_frame() -> &'static [u8] {
    static FRAME: OnceLock<Vec<u8>> = OnceLock::new();
    FRAME.get_or_init(|| {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        let mut src = std::io::repeat(0).take(GIB);
        let mut buf = vec![0u8; 4 << 20];
        loop {
            let n = src.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            enc.write_all(&buf[..n]).unwrap();
        }
        enc.finish().unwrap()
    })
}

/// A zstd bundle: `prefix`, then 1 GiB of zeros, then `suffix` (frames one after another).
fn zstd_bomb(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut out = zstd_frame(prefix);
    out.extend_from_slice(zeros_frame());
    out.extend_from_slice(&zstd_frame(suffix));
    assert!(out.len() < 1 << 20, "a bomb is small: {} bytes", out.len());
    out
}

// ---------------------------------------------------------------------------------------
// What a verified bundle prints.

fn assert_verified(out: &Output, key_id: &str, zstd: bool, total: u64) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(": verified\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("bundle {NAME} {VERSION}, updates >=1.2.0")),
        "{stdout}"
    );
    assert!(stdout.contains("3 file(s)"), "{stdout}");
    assert!(stdout.contains(&format!("({total} bytes)")), "{stdout}");
    assert_eq!(stdout.contains(", zstd"), zstd, "{stdout}");
    assert!(
        stdout.contains(&format!("signed by key {key_id}")),
        "{stdout}"
    );
}

fn assert_verified_json(out: &Output, key_id: &str, zstd: bool, total: u64) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(doc["name"], NAME, "{doc}");
    assert_eq!(doc["version"], VERSION, "{doc}");
    assert_eq!(doc["files"], 3, "{doc}");
    assert_eq!(doc["total_bytes"], total, "{doc}");
    assert_eq!(doc["key_id"], key_id, "{doc}");
    assert_eq!(doc["compressed"], zstd, "{doc}");
}

fn total_size() -> u64 {
    payload_files().iter().map(|(_, d)| d.len() as u64).sum()
}

#[test]
fn a_bundle_from_bundle_create_verifies() {
    let bed = Bed::new();
    let total = total_size();
    for zstd in [false, true] {
        let bundle = bed.create(zstd, Some(&format!("created-{zstd}.vigil")));
        let out = bed.verify(&bundle, &[]).unwrap();
        assert_verified(&out, &bed.crate_key_id, zstd, total);
        let out = bed.verify(&bundle, &["--json"]).unwrap();
        assert_verified_json(&out, &bed.crate_key_id, zstd, total);
    }
    // Without -o: NAME-VERSION.vigil in the working directory.
    let bundle = bed.create(true, None);
    let out = bed.verify(&bundle, &[]).unwrap();
    assert_verified(&out, &bed.crate_key_id, true, total);
}

#[test]
fn a_bundle_signed_with_the_minisign_cli_verifies() {
    let bed = Bed::new();
    let files = payload_files();
    let manifest = manifest_text(VERSION, &files);
    let total = total_size();
    // Signed by the CLI with its own key, and with the crate's key.
    for (key, id) in [
        (&bed.cli_key, &bed.cli_key_id),
        (&bed.crate_key, &bed.crate_key_id),
    ] {
        let sig = bed.sign(
            key,
            &manifest,
            Sig::Comment(&format!("vigil-bundle {NAME} {VERSION}")),
        );
        let tar = good_tar(&manifest, &sig, &files);
        for (zstd, bytes) in [(false, tar.clone()), (true, zstd_frame(&tar))] {
            let bundle = bed.write(&format!("cli-{id}-{zstd}"), &bytes);
            let out = bed.verify(&bundle, &[]).unwrap();
            assert_verified(&out, id, zstd, total);
            let out = bed.verify(&bundle, &["--json"]).unwrap();
            assert_verified_json(&out, id, zstd, total);
        }
    }
    // Long names are fine when they are fine: a payload path over 100 bytes (GNU long
    // name, as the tar crate writes it), and the same by PAX.
    let long = format!("payload/share/{}/model.bin", "deep".repeat(30));
    let files: Vec<(&str, Vec<u8>)> = payload_files()
        .into_iter()
        .map(|(p, d)| (if p == DATA { long.as_str() } else { p }, d))
        .collect();
    let manifest = manifest_text(VERSION, &files);
    let sig = bed.signed(&manifest, VERSION);
    let bundle = bed.write("cli-gnu-long-name", &good_tar(&manifest, &sig, &files));
    assert_verified(
        &bed.verify(&bundle, &[]).unwrap(),
        &bed.cli_key_id,
        false,
        total,
    );
    let mut b = tar_new();
    put(&mut b, "manifest.toml", manifest.as_bytes());
    put(&mut b, "manifest.toml.minisig", sig.as_bytes());
    for (path, data) in &files[..2] {
        put(&mut b, path, data);
    }
    put_pax(&mut b, &[("path", &long)]);
    put(&mut b, "payload/share/truncated-name", &files[2].1);
    let bundle = bed.write("cli-pax-long-name", &tar_end(b));
    assert_verified(
        &bed.verify(&bundle, &[]).unwrap(),
        &bed.cli_key_id,
        false,
        total,
    );
}

// ---------------------------------------------------------------------------------------
// The hostile corpus.

struct Case {
    name: &'static str,
    bundle: PathBuf,
    args: Vec<String>,
    /// What stderr must say (a fragment of `WHAT: WHY`).
    expect: String,
}

fn case(name: &'static str, bundle: PathBuf, args: &[&str], expect: &str) -> Case {
    Case {
        name,
        bundle,
        args: args.iter().map(|a| a.to_string()).collect(),
        expect: expect.to_string(),
    }
}

/// Replaces `from` (present, once) by `to` in `bytes`.
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(from)));
    bytes[at..at + to.len()].copy_from_slice(to);
}

fn hostile_corpus(bed: &Bed) -> Vec<Case> {
    let files = payload_files();
    let manifest = manifest_text(VERSION, &files);
    let sig = bed.signed(&manifest, VERSION);
    let comment = format!("vigil-bundle {NAME} {VERSION}");
    let good = good_tar(&manifest, &sig, &files);
    let want_comment = format!("its trusted comment is not `{comment}`");
    let w = |name: &str, bytes: &[u8]| bed.write(name, bytes);
    // Manifest and signature first, as they should be; `rest` after them.
    let with = |rest: &dyn Fn(&mut Tar)| {
        let mut b = tar_new();
        put(&mut b, "manifest.toml", manifest.as_bytes());
        put(&mut b, "manifest.toml.minisig", sig.as_bytes());
        put_dir(&mut b, "payload/");
        rest(&mut b);
        tar_end(b)
    };
    let all_files = |b: &mut Tar| {
        for (path, data) in &files {
            put(b, path, data);
        }
    };
    // A manifest variant, signed as it should be.
    let variant = |name: &str, text: String, version: &str| {
        let sig = bed.signed(&text, version);
        w(name, &good_tar(&text, &sig, &files))
    };
    // A bundle signed some other way.
    let signed_so = |name: &str, key: &Path, how: Sig<'_>| {
        let sig = bed.sign(key, &manifest, how);
        w(name, &good_tar(&manifest, &sig, &files))
    };
    // For the bombs: a manifest listing one 10-byte file.
    let tiny = vec![(APP, b"0123456789".to_vec())];
    let tiny_manifest = manifest_text(VERSION, &tiny);
    let tiny_sig = bed.signed(&tiny_manifest, VERSION);
    let tiny_head = |b: &mut Tar| {
        put(b, "manifest.toml", tiny_manifest.as_bytes());
        put(b, "manifest.toml.minisig", tiny_sig.as_bytes());
    };
    let bomb_refusal = "the bundle holds more than its manifest declares";

    let created = bed.create(false, Some("created-plain.vigil"));
    let created_zstd = bed.create(true, Some("created-zstd.vigil"));
    let created_bytes = std::fs::read(&created).unwrap();
    let created_zstd_bytes = std::fs::read(&created_zstd).unwrap();

    // Signatures.
    let mut cases = vec![case(
        "signed by a key that is not trusted",
        signed_so("untrusted-key", &bed.stranger_key, Sig::Comment(&comment)),
        &[],
        "manifest.toml.minisig: signed by a key that is not trusted here",
    )];
    cases.push(case(
        "a legacy signature (minisign -S -l)",
        signed_so("legacy", &bed.cli_key, Sig::Legacy(&comment)),
        &[],
        "manifest.toml.minisig: a legacy (not prehashed) signature",
    ));
    cases.push(case(
        "the trusted comment of another version",
        signed_so(
            "comment-other-version",
            &bed.cli_key,
            Sig::Comment("vigil-bundle demo 1.3.0"),
        ),
        &[],
        &want_comment,
    ));
    cases.push(case(
        "the trusted comment of another bundle",
        signed_so(
            "comment-other-bundle",
            &bed.cli_key,
            Sig::Comment("vigil-bundle other 1.4.0"),
        ),
        &[],
        &want_comment,
    ));
    cases.push(case(
        "the minisign CLI's default trusted comment",
        signed_so("comment-cli-default", &bed.cli_key, Sig::CliDefault),
        &[],
        &want_comment,
    ));
    {
        let changed = manifest.replace("timeout = \"5m\"", "timeout = \"9m\"");
        assert_ne!(changed, manifest);
        cases.push(case(
            "the manifest changed after signing (CLI-signed)",
            w("manifest-changed-cli", &good_tar(&changed, &sig, &files)),
            &[],
            "the manifest changed after it was signed",
        ));
        let mut bytes = created_bytes.clone();
        patch(&mut bytes, b"unit:demo.service", b"unit:evil.service");
        cases.push(case(
            "the manifest changed after signing (bundle create, then patched)",
            w("manifest-changed-created", &bytes),
            &[],
            "the manifest changed after it was signed",
        ));
    }
    cases.push(case(
        "the signature is missing (only the manifest)",
        w("signature-missing", &{
            let mut b = tar_new();
            put(&mut b, "manifest.toml", manifest.as_bytes());
            tar_end(b)
        }),
        &[],
        "manifest.toml.minisig: missing: the bundle is not signed",
    ));
    cases.push(case(
        "the signature is missing (payload second)",
        w("signature-missing-payload-second", &{
            let mut b = tar_new();
            put(&mut b, "manifest.toml", manifest.as_bytes());
            all_files(&mut b);
            tar_end(b)
        }),
        &[],
        "payload/bin/app: the second entry must be manifest.toml.minisig",
    ));
    cases.push(case(
        "a signature that is not minisign",
        w("signature-garbage", &{
            let mut b = tar_new();
            put(&mut b, "manifest.toml", manifest.as_bytes());
            put(&mut b, "manifest.toml.minisig", b"trust me\n");
            all_files(&mut b);
            tar_end(b)
        }),
        &[],
        "manifest.toml.minisig: not a minisign signature",
    ));
    cases.push(case(
        "a signature larger than 4 KiB",
        w("signature-too-large", &{
            let mut b = tar_new();
            put(&mut b, "manifest.toml", manifest.as_bytes());
            put(&mut b, "manifest.toml.minisig", &vec![b'A'; 5000]);
            all_files(&mut b);
            tar_end(b)
        }),
        &[],
        "manifest.toml.minisig: too large for a signature",
    ));

    // The payload.
    {
        let mut bytes = created_bytes.clone();
        patch(&mut bytes, b"exec demo", b"exec DEMO");
        cases.push(case(
            "a payload byte changed (bundle create, then patched)",
            w("payload-byte-changed", &bytes),
            &[],
            "payload/bin/app: sha256 differs from the manifest",
        ));
    }
    cases.push(case(
        "a payload file of another content, same size (CLI-signed)",
        w(
            "payload-other-content",
            &with(&|b| {
                put(b, APP, &APP_BYTES.to_ascii_uppercase());
                put(b, CONF, &files[1].1);
                put(b, DATA, &files[2].1);
            }),
        ),
        &[],
        "payload/bin/app: sha256 differs from the manifest",
    ));
    cases.push(case(
        "a listed file is missing",
        w(
            "listed-file-missing",
            &with(&|b| {
                put(b, APP, &files[0].1);
                put(b, DATA, &files[2].1);
            }),
        ),
        &[],
        "payload/etc/app.conf: listed in the manifest but not in the bundle",
    ));
    cases.push(case(
        "an unlisted file",
        w(
            "unlisted-file",
            &with(&|b| {
                all_files(b);
                put(b, "payload/bin/extra", b"#!/bin/sh\nrm -rf /\n");
            }),
        ),
        &[],
        "payload/bin/extra: not listed in the manifest",
    ));
    cases.push(case(
        "the same path twice",
        w(
            "same-path-twice",
            &with(&|b| {
                all_files(b);
                put(b, APP, &files[0].1);
            }),
        ),
        &[],
        "payload/bin/app: in the bundle twice",
    ));
    {
        let mut bigger = APP_BYTES.to_vec();
        bigger.push(b'\n');
        cases.push(case(
            "a size in the header that is not the manifest's",
            w(
                "size-mismatch",
                &with(&|b| {
                    put(b, APP, &bigger);
                    put(b, CONF, &files[1].1);
                    put(b, DATA, &files[2].1);
                }),
            ),
            &[],
            &format!(
                "payload/bin/app: {} bytes, the manifest says {}",
                APP_BYTES.len() + 1,
                APP_BYTES.len()
            ),
        ));
        // PAX `size` overrides the header's: the tar reader reads 1 more byte than the
        // header (and the manifest) say.
        cases.push(case(
            "a PAX size that is not the header's",
            w(
                "pax-size-mismatch",
                &with(&|b| {
                    let n = (APP_BYTES.len() + 1).to_string();
                    put_pax(b, &[("size", &n)]);
                    b.append(
                        &header(APP, EntryType::Regular, APP_BYTES.len() as u64),
                        &bigger[..],
                    )
                    .unwrap();
                    put(b, CONF, &files[1].1);
                    put(b, DATA, &files[2].1);
                }),
            ),
            &[],
            &format!("the manifest says {}", APP_BYTES.len()),
        ));
    }

    // Entries that are not plain files.
    let not_plain = "only regular files and directories may be in a bundle";
    for (name, file, kind, link) in [
        (
            "a symlink entry",
            "symlink",
            EntryType::Symlink,
            Some("../../../etc/shadow"),
        ),
        ("a hard link entry", "hardlink", EntryType::Link, Some(APP)),
        ("a character device entry", "chardev", EntryType::Char, None),
        ("a block device entry", "blockdev", EntryType::Block, None),
        ("a FIFO entry", "fifo", EntryType::Fifo, None),
    ] {
        let entry = format!("payload/bin/{file}");
        cases.push(case(
            name,
            w(
                file,
                &with(&|b| {
                    all_files(b);
                    put_special(b, &entry, kind, link);
                }),
            ),
            &[],
            &format!("payload/bin/{file}: {not_plain}"),
        ));
    }

    // Paths.
    for (name, file, path, expect) in [
        (
            "an absolute path",
            "absolute-path",
            "/etc/cron.d/vigil-evil",
            "/etc/cron.d/vigil-evil: an absolute path",
        ),
        (
            "a `..` path",
            "dotdot-path",
            "payload/../../etc/passwd",
            "payload/../../etc/passwd: a path with `..`",
        ),
        (
            "a path outside payload/",
            "outside-payload",
            "etc/passwd",
            "etc/passwd: outside payload/",
        ),
        (
            "a path that is not normalised",
            "not-normalised",
            "payload//bin/app",
            "payload//bin/app: a path that is not normalised",
        ),
    ] {
        cases.push(case(
            name,
            w(
                file,
                &with(&|b| {
                    all_files(b);
                    put(b, path, b"root::0:0::/root:/bin/sh\n");
                }),
            ),
            &[],
            expect,
        ));
    }
    {
        let long = format!("payload/{}/../../../../etc/passwd", "a".repeat(120));
        cases.push(case(
            "a GNU long name with `..`",
            w(
                "gnu-long-name-dotdot",
                &with(&|b| {
                    all_files(b);
                    put_gnu_long(b, &long, b"root::0:0::/root:/bin/sh\n");
                }),
            ),
            &[],
            &format!("{long}: a path with `..`"),
        ));
        cases.push(case(
            "a PAX long name with `..`",
            w(
                "pax-long-name-dotdot",
                &with(&|b| {
                    all_files(b);
                    put_pax(b, &[("path", &long)]);
                    put(b, "payload/bin/harmless", b"root::0:0::/root:/bin/sh\n");
                }),
            ),
            &[],
            &format!("{long}: a path with `..`"),
        ));
        // A PAX path for the manifest itself that leaves the archive.
        cases.push(case(
            "a PAX path `../manifest.toml` for the first entry",
            w("pax-manifest-dotdot", &{
                let mut b = tar_new();
                put_pax(&mut b, &[("path", "../manifest.toml")]);
                put(&mut b, "manifest.toml", manifest.as_bytes());
                put(&mut b, "manifest.toml.minisig", sig.as_bytes());
                all_files(&mut b);
                tar_end(b)
            }),
            &[],
            "../manifest.toml: a path with `..`",
        ));
    }

    // Names that would write more than one line, or drive the terminal, when echoed.
    cases.push(case(
        "an entry name with a newline and a terminal escape",
        w(
            "entry-name-newline",
            &with(&|b| {
                all_files(b);
                put(
                    b,
                    "payload/bin/\x1b[2K\rx\nvigilctl: bundle verified",
                    b"#!/bin/sh\n",
                );
            }),
        ),
        &[],
        "payload/bin/\\u{1b}[2K\\rx\\nvigilctl: bundle verified: a path with a backslash or a control character",
    ));
    {
        let text = manifest.replace(
            "path = \"payload/etc/app.conf\"",
            "path = \"payload/etc/app.conf\\u001b[2K\\r\\nvigilctl: bundle verified\"",
        );
        assert_ne!(text, manifest);
        let sig = bed.signed(&text, VERSION);
        let mut b = tar_new();
        put(&mut b, "manifest.toml", text.as_bytes());
        put(&mut b, "manifest.toml.minisig", sig.as_bytes());
        put(&mut b, APP, &files[0].1);
        put(&mut b, DATA, &files[2].1);
        cases.push(case(
            "a listed path with a newline and a terminal escape, missing",
            w("listed-name-newline", &tar_end(b)),
            &[],
            "a path with a backslash or a control character",
        ));
    }

    // Order.
    cases.push(case(
        "the manifest is not first (signature first)",
        w("manifest-not-first", &{
            let mut b = tar_new();
            put(&mut b, "manifest.toml.minisig", sig.as_bytes());
            put(&mut b, "manifest.toml", manifest.as_bytes());
            all_files(&mut b);
            tar_end(b)
        }),
        &[],
        "manifest.toml.minisig: the first entry must be manifest.toml",
    ));
    cases.push(case(
        "the manifest is not first (payload first)",
        w("payload-first", &{
            let mut b = tar_new();
            put(&mut b, APP, &files[0].1);
            put(&mut b, "manifest.toml", manifest.as_bytes());
            put(&mut b, "manifest.toml.minisig", sig.as_bytes());
            tar_end(b)
        }),
        &[],
        "payload/bin/app: the first entry must be manifest.toml",
    ));

    // The file itself.
    cases.push(case(
        "an empty file",
        w("empty", b""),
        &[],
        "an empty file, not a bundle",
    ));
    cases.push(case(
        "a file that is not a tar",
        w(
            "not-tar",
            "This is not a bundle, only some text.\n"
                .repeat(60)
                .as_bytes(),
        ),
        &[],
        "not a tar archive, or a damaged one",
    ));
    cases.push(case(
        "zstd magic, then garbage",
        w("zstd-garbage", &{
            let mut b = vec![0x28, 0xB5, 0x2F, 0xFD];
            b.extend(noise(4096));
            b
        }),
        &[],
        "not a tar archive, or a damaged one",
    ));
    cases.push(case(
        "a truncated bundle (bundle create, cut inside the last file)",
        w(
            "truncated",
            &created_bytes[..created_bytes.len() - 1024 - (32 << 10)],
        ),
        &[],
        "payload/share/data.bin: truncated",
    ));
    cases.push(case(
        "a truncated bundle (cut inside the manifest)",
        w("truncated-in-manifest", &good[..512 + 100]),
        &[],
        "truncated",
    ));
    cases.push(case(
        "a truncated zstd bundle (bundle create --zstd, cut in half)",
        w(
            "truncated-zstd",
            &created_zstd_bytes[..created_zstd_bytes.len() / 2],
        ),
        &[],
        "truncated: it ends inside an entry",
    ));
    cases.push(case(
        "a directory, not a file",
        bed.fresh("a-directory.vigil"),
        &[],
        "not a regular file",
    ));
    cases.push(case(
        "a bundle that is not there",
        bed.bundles.join("nowhere.vigil"),
        &[],
        "cannot read it",
    ));

    // Bombs.
    cases.push(case(
        "a manifest bomb (manifest.toml of 2 MiB)",
        w("manifest-bomb", &{
            let mut text = manifest.clone();
            while text.len() <= 2 << 20 {
                text += "# padding padding padding padding padding padding padding\n";
            }
            let mut b = tar_new();
            put(&mut b, "manifest.toml", text.as_bytes());
            put(&mut b, "manifest.toml.minisig", sig.as_bytes());
            all_files(&mut b);
            tar_end(b)
        }),
        &[],
        "manifest.toml: larger than 1048576 bytes",
    ));
    cases.push(case(
        "a zstd manifest bomb (manifest.toml of 1 GiB of zeros)",
        w("zstd-manifest-bomb", &{
            let mut b = tar_new();
            b.get_mut()
                .extend_from_slice(header("manifest.toml", EntryType::Regular, GIB).as_bytes());
            zstd_bomb(&tar_prefix(b), &tar_end(tar_new()))
        }),
        &[],
        "manifest.toml: larger than 1048576 bytes",
    ));
    cases.push(case(
        "a zstd bomb: a listed 10-byte file whose entry is 1 GiB of zeros",
        w("zstd-bomb-listed-file", &{
            let mut b = tar_new();
            tiny_head(&mut b);
            b.get_mut()
                .extend_from_slice(header(APP, EntryType::Regular, GIB).as_bytes());
            zstd_bomb(&tar_prefix(b), &tar_end(tar_new()))
        }),
        &[],
        &format!("payload/bin/app: {GIB} bytes, the manifest says 10"),
    ));
    cases.push(case(
        "a zstd bomb: an unlisted entry of 1 GiB of zeros",
        w("zstd-bomb-unlisted", &{
            let mut b = tar_new();
            tiny_head(&mut b);
            put(&mut b, APP, b"0123456789");
            b.get_mut()
                .extend_from_slice(header("payload/bin/huge", EntryType::Regular, GIB).as_bytes());
            zstd_bomb(&tar_prefix(b), &tar_end(tar_new()))
        }),
        &[],
        "payload/bin/huge: not listed in the manifest",
    ));
    cases.push(case(
        "a zstd bomb: a directory entry carrying 1 GiB of zeros",
        w("zstd-bomb-directory", &{
            let mut b = tar_new();
            tiny_head(&mut b);
            b.get_mut()
                .extend_from_slice(header("payload/", EntryType::Directory, GIB).as_bytes());
            let mut rest = tar_new();
            put(&mut rest, APP, b"0123456789");
            zstd_bomb(&tar_prefix(b), &tar_end(rest))
        }),
        &[],
        bomb_refusal,
    ));
    cases.push(case(
        "a zstd bomb: a PAX size of 1 GiB for a listed 10-byte file",
        w("zstd-bomb-pax-size", &{
            let mut b = tar_new();
            tiny_head(&mut b);
            put_pax(&mut b, &[("size", &GIB.to_string())]);
            b.get_mut()
                .extend_from_slice(header(APP, EntryType::Regular, 10).as_bytes());
            zstd_bomb(&tar_prefix(b), &tar_end(tar_new()))
        }),
        &[],
        // Refused by the size the PAX record gives, before a byte of it is read.
        "payload/bin/app: 1073741824 bytes, the manifest says 10",
    ));
    cases.push(case(
        "a zstd bomb: a GNU long name of 1 GiB, first",
        w("zstd-bomb-gnu-long-name", &{
            let mut b = tar_new();
            b.get_mut()
                .extend_from_slice(header("././@LongLink", EntryType::GNULongName, GIB).as_bytes());
            let mut rest = tar_new();
            tiny_head(&mut rest);
            zstd_bomb(&tar_prefix(b), &tar_end(rest))
        }),
        &[],
        bomb_refusal,
    ));

    // The manifest's own rules.
    cases.push(case(
        "a step naming an unlisted file",
        variant(
            "step-unlisted-file",
            manifest.replace(
                "do = \"install\"\nfile = \"payload/bin/app\"",
                "do = \"install\"\nfile = \"payload/bin/other\"",
            ),
            VERSION,
        ),
        &[],
        "step 1 (install): names payload/bin/other, which the manifest does not list",
    ));
    cases.push(case(
        "an install `to` outside the release directory",
        variant(
            "install-to-outside",
            manifest.replace("to = \"bin/app\"", "to = \"../x\""),
            VERSION,
        ),
        &[],
        "step 1 (install): `to` must stay inside the release directory",
    ));
    cases.push(case(
        "an install `to` that is absolute",
        variant(
            "install-to-absolute",
            manifest.replace("to = \"bin/app\"", "to = \"/usr/bin/app\""),
            VERSION,
        ),
        &[],
        "step 1 (install): `to` must stay inside the release directory, not an absolute path",
    ));
    cases.push(case(
        "a version that is not semver",
        variant(
            "bad-semver",
            manifest.replace("version = \"1.4.0\"", "version = \"1.4\""),
            "1.4",
        ),
        &[],
        "bundle.version: not a semantic version",
    ));
    cases.push(case(
        "a bundle name that is not one",
        variant(
            "bad-name",
            manifest.replace("name = \"demo\"", "name = \"../Demo\""),
            VERSION,
        ),
        &[],
        "bundle.name: not a bundle name",
    ));
    cases.push(case(
        "a listed file outside payload/",
        variant(
            "listed-outside-payload",
            manifest.replace("path = \"payload/etc/app.conf\"", "path = \"etc/app.conf\""),
            VERSION,
        ),
        &[],
        "etc/app.conf: a listed file must be a normalised path under payload/",
    ));

    // Whether it fits this box.
    let good_path = w("good", &good);
    cases.push(case(
        "`from` does not allow the installed version",
        good_path.clone(),
        &["--installed", "1.1.0"],
        "bundle.from: updates >=1.2.0; the installed version is 1.1.0",
    ));
    cases.push(case(
        "a downgrade",
        good_path.clone(),
        &["--installed", "1.5.0"],
        "bundle.version: 1.4.0 is a downgrade of the installed 1.5.0",
    ));
    cases.push(case(
        "the same version",
        good_path.clone(),
        &["--installed", "1.4.0"],
        "bundle.version: 1.4.0 is the same version of the installed 1.4.0",
    ));
    cases.push(case(
        "a downgrade of the state directory's current release",
        variant(
            "downgrade-of-current",
            manifest.replace("version = \"1.4.0\"", "version = \"1.2.5\""),
            "1.2.5",
        ),
        &[],
        "bundle.version: 1.2.5 is a downgrade of the installed 1.3.0",
    ));
    let other = bed.other_model_config.display().to_string();
    cases.push(case(
        "hardware that does not fit",
        good_path,
        &["--config", &other],
        "bundle.hardware: this box is \"raspberry-pi-5\"; the bundle is for jetson-agx-orin",
    ));
    cases
}

#[test]
fn hostile_bundles_are_refused_and_nothing_is_written() {
    let started = Instant::now();
    let bed = Bed::new();
    let cases = hostile_corpus(&bed);
    // The state directory has something to lose.
    let state = tree(&bed.state);
    assert_eq!(
        state.get("releases/current").map(String::as_str),
        Some("-> 1.3.0"),
        "{state:?}"
    );
    assert!(state.contains_key("vigil.db"), "{state:?}");
    let built = started.elapsed();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    // The good bundle passes under the same conditions (so each refusal is the case's).
    let good = bed.bundles.join("good.vigil");
    let out = bed.verify(&good, &[]).unwrap();
    assert_verified(&out, &bed.cli_key_id, false, total_size());

    let mut failed = Vec::new();
    let mut report = Vec::new();
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let t = Instant::now();
        let out = match bed.verify(&c.bundle, &args) {
            Ok(out) => out,
            Err(e) => {
                failed.push(format!("{}: {e}", c.name));
                continue;
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let prefix = format!("vigilctl: {}: refused: ", c.bundle.display());
        // One line, and nothing in it that drives a terminal.
        let one_line =
            stderr.ends_with('\n') && !stderr[..stderr.len() - 1].chars().any(char::is_control);
        let ok = out.status.code() == Some(1)
            && stdout.is_empty()
            && stderr.starts_with(&prefix)
            && one_line
            && stderr.contains(&c.expect)
            && !stderr.contains("panicked");
        report.push(format!(
            "{:>5} ms  {}  {}: {}",
            t.elapsed().as_millis(),
            if ok { "ok  " } else { "FAIL" },
            c.name,
            stderr.trim_end().escape_debug()
        ));
        if !ok {
            failed.push(format!(
                "{}: expected exit 1 and one line with {:?}; got {:?}, stdout {:?}, stderr {:?}",
                c.name,
                c.expect,
                out.status.code(),
                stdout,
                stderr
            ));
        }
    }
    eprintln!(
        "{} hostile bundles (built in {:?}), checked in {:?}:\n{}",
        cases.len(),
        built,
        started.elapsed(),
        report.join("\n")
    );
    assert!(
        failed.is_empty(),
        "{} of {} hostile bundles were not refused as they should be:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// A key made by the minisign CLI without a password (`-W`), whose checksum that CLI
/// leaves zero, signs through `bundle create` too, and needs no password.
#[test]
fn bundle_create_takes_an_unencrypted_key_of_the_minisign_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("keys")).unwrap();
    std::fs::create_dir_all(d.join("payload")).unwrap();
    let made = std::process::Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(d.join("keys/cli.pub"))
        .arg("-s")
        .arg(d.join("cli.key"))
        .output()
        .expect("minisign (Debian's package) must be installed");
    assert!(made.status.success(), "{made:?}");
    std::fs::write(d.join("payload/app"), b"#!/bin/sh\n").unwrap();
    std::fs::write(
        d.join("m.toml"),
        "[bundle]\nname = \"demo\"\nversion = \"2.0.0\"\n",
    )
    .unwrap();
    let vigilctl = env!("CARGO_BIN_EXE_vigilctl");
    let out = std::process::Command::new(vigilctl)
        .args(["bundle", "create", "--manifest"])
        .arg(d.join("m.toml"))
        .arg("--payload")
        .arg(d.join("payload"))
        .arg("--key")
        .arg(d.join("cli.key"))
        .arg("-o")
        .arg(d.join("demo.vigil"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = std::process::Command::new(vigilctl)
        .args(["update", "verify"])
        .arg(d.join("demo.vigil"))
        .arg("--keys")
        .arg(d.join("keys"))
        .args(["--config", "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("bundle demo 2.0.0"));
}
