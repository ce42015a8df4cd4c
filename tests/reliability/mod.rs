//! The reliability table: each fault, abuse and soak test writes its row of
//! docs/RELIABILITY.md (test, what was done, the figure, pass or fail) when it has measured,
//! before it asserts, so a failing run leaves FAIL in the table. Rows are keyed by test
//! name; a row is replaced when its test runs again, others stay. Test binaries run one
//! after the other and tests inside one in parallel: the file is locked while it changes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

const HEAD: &str = "# Reliability

What an unattended box must survive, as the test suite last saw it. Every row is written by
the test named in it, on each run of the README test command (`bash scripts/test.sh`), from
what it measured; the test then fails if the figure is out of bounds, so a FAIL here and a
red suite go together. Latency under attack is a figure with its target, said met or MISSED
in the row, not a pass mark (a timed bound on a shared 2-core machine measures the machine);
it is measured on the vigild the .deb ships (the release build), the other rows on the
debug build of the tree. Do not edit the rows by hand.

| test | what was done | figure | result |
| --- | --- | --- | --- |
";

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/RELIABILITY.md")
}

/// Writes (or replaces) the row of `test`: what it did, what it measured, and whether that
/// passed. Call it with the measured figure before asserting on it.
pub fn record(test: &str, what: &str, figure: &str, pass: bool) {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path())
        .expect("docs/RELIABILITY.md");
    let mut f = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock docs/RELIABILITY.md");
    let mut text = String::new();
    f.read_to_string(&mut text)
        .expect("read docs/RELIABILITY.md");
    let mut rows: BTreeMap<String, String> = text
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let key = l.split('`').nth(1)?.to_string();
            Some((key, l.to_string()))
        })
        .collect();
    rows.insert(
        test.to_string(),
        format!(
            "| `{}` | {} | {} | {} |",
            cell(test),
            cell(what),
            cell(figure),
            if pass { "pass" } else { "**FAIL**" }
        ),
    );
    let mut out = String::from(HEAD);
    for row in rows.values() {
        out.push_str(row);
        out.push('\n');
    }
    f.rewind().unwrap();
    f.set_len(0).unwrap();
    f.write_all(out.as_bytes()).unwrap();
    f.sync_all().unwrap();
}
