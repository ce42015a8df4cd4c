//! Where `cargo deb` leaves the package that the packaging and system tests examine.

#![allow(dead_code)]

use std::path::PathBuf;

/// target/debian/vigil_VERSION-1_ARCH.deb; a missing one is a loud failure.
pub fn deb_path() -> PathBuf {
    let arch = std::process::Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("run dpkg --print-architecture");
    let arch = String::from_utf8_lossy(&arch.stdout).trim().to_string();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let deb = target.join(format!(
        "debian/vigil_{}-1_{arch}.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(
        deb.is_file(),
        "{} is missing: build the package first with `cargo deb` (scripts/test.sh does)",
        deb.display()
    );
    deb
}

/// The files of the package `deb`, extracted into a directory of their own.
pub fn unpack(deb: &std::path::Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    run(
        "dpkg-deb",
        &["-x", deb.to_str().unwrap(), tmp.path().to_str().unwrap()],
    );
    tmp
}

/// Runs a command; panics unless it succeeds; returns stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
