//! Tests of policy loading against real files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::core::check::{valid_name, GpuChoice, ProbeParams, EVERY_DEFAULT_SECS};
use crate::core::rule::Mode;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn errors_of(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "p.toml", text);
    let errs = load_files(&[p], &LoadContext::default()).unwrap_err();
    errs.0
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

const GOOD: &str = r#"
[[check]]
name = "root-disk"
probe = "disk"
path = "/"
warn = "used > 85%"
crit = ["used > 95%", "inodes_used > 95%"]

[[check]]
name = "memory"
probe = "memory"
every = "5s"
timeout = "1s"
warn = "available < 10%"

[[check]]
name = "temps"
probe = "thermal"
sensors = ["cpu-*", "gpu-*"]
crit = "temperature > 90"
"#;

#[test]
fn loads_the_design_schema() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "a.toml", GOOD);
    let set = load_files(std::slice::from_ref(&p), &LoadContext::default()).unwrap();
    assert_eq!(set.checks.len(), 3);
    let disk = &set.checks[0];
    assert_eq!(disk.params, ProbeParams::Disk { path: "/".into() });
    assert_eq!(disk.every, Duration::from_secs(EVERY_DEFAULT_SECS));
    assert_eq!(disk.crit.len(), 2);
    assert_eq!(disk.origin, format!("{}:2", p.display()));
    assert_eq!(set.checks[1].every, Duration::from_secs(5));
    assert_eq!(set.checks[1].timeout, Duration::from_secs(1));
    assert_eq!(
        set.checks[2].params,
        ProbeParams::Thermal {
            sensors: vec!["cpu-*".into(), "gpu-*".into()]
        }
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let e = errors_of("[[check]]\nname = \"x\nprobe = \"disk\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("2:"), "{e:?}");
}

#[test]
fn every_error_in_a_file_is_reported_with_position() {
    let text = r#"[[check]]
name = "Bad Name"
probe = "disk"
path = "/"
colour = "red"

[[check]]
name = "m"
probe = "memory"
every = "soon"
warn = "availble < 10%"
crit = ["available < 5"]

[[check]]
name = "g"
probe = "gpu"
backend = "cuda"

[[check]]
name = "x"
probe = "warp-drive"

[[check]]
probe = "disk"
path = "relative/dir"
"#;
    let e = errors_of(text);
    let expect = [
        "2:8: invalid check name \"Bad Name\"",
        "5:1: unknown key `colour` in [[check]]",
        "10:9: `every` is not a duration",
        "11:9: probe `memory` has no metric `availble`",
        "12:23: `available` is a percentage",
        "17:11: backend must be auto, nvml, jetson or none, got \"cuda\"",
        "21:9: unknown probe \"warp-drive\"",
        "[[check]] is missing the key `name`",
        "25:8: path must be absolute",
    ];
    for want in expect {
        assert!(
            e.iter().any(|got| got.contains(want)),
            "missing {want:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), expect.len(), "{e:#?}");
}

#[test]
fn duplicate_names_across_files_point_to_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.toml",
        "[[check]]\nname = \"m\"\nprobe = \"memory\"\n",
    );
    let b = write(
        dir.path(),
        "b.toml",
        "\n[[check]]\nname = \"m\"\nprobe = \"memory\"\n",
    );
    let e = load_files(&[a.clone(), b.clone()], &LoadContext::default()).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].file, b);
    assert_eq!(e.0[0].line, 3);
    assert!(
        e.0[0]
            .message
            .contains(&format!("first defined at {}:2:8", a.display())),
        "{}",
        e.0[0]
    );
}

#[test]
fn probe_specific_keys() {
    let text = r#"
[[check]]
name = "docker-unit"
probe = "systemd"
unit = "docker.service"

[[check]]
name = "ollama"
probe = "container"

[[check]]
name = "stack"
probe = "containers"
match = ["arasul-*", "ollama"]

[[check]]
name = "llm"
probe = "ollama"
probe_model = "llama3.2:1b"
timeout = "3s"

[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/health"
expect_status = [200, 204]

[[check]]
name = "db"
probe = "tcp"
address = "127.0.0.1:5432"

[[check]]
name = "marker"
probe = "exec"
command = ["/usr/bin/test", "-e", "/run/ok"]

[[check]]
name = "gpu"
probe = "gpu"
crit = ["memory_used > 95%", "temperature > 90"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "p.toml", text);
    let set = load_files(&[p], &LoadContext::default()).unwrap();
    let params: Vec<_> = set.checks.iter().map(|c| c.params.clone()).collect();
    assert_eq!(
        params[0],
        ProbeParams::Systemd {
            unit: "docker.service".into()
        }
    );
    assert_eq!(
        params[1],
        ProbeParams::Container {
            container: "ollama".into()
        }
    );
    assert_eq!(
        params[2],
        ProbeParams::Containers {
            patterns: vec!["arasul-*".into(), "ollama".into()]
        }
    );
    assert_eq!(
        params[3],
        ProbeParams::Ollama {
            url: OLLAMA_URL_DEFAULT.into(),
            probe_model: Some("llama3.2:1b".into())
        }
    );
    assert_eq!(
        params[4],
        ProbeParams::Http {
            url: "http://127.0.0.1:8080/health".into(),
            expect_status: vec![200, 204]
        }
    );
    assert_eq!(
        params[5],
        ProbeParams::Tcp {
            address: "127.0.0.1:5432".into()
        }
    );
    assert_eq!(
        params[6],
        ProbeParams::Exec {
            command: vec!["/usr/bin/test".into(), "-e".into(), "/run/ok".into()]
        }
    );
    assert_eq!(
        params[7],
        ProbeParams::Gpu {
            backend: GpuChoice::Auto,
            device: 0
        }
    );

    let e = errors_of("[[check]]\nname = \"s\"\nprobe = \"containers\"\n\n[[check]]\nname = \"x\"\nprobe = \"exec\"\ncommand = [\"sh\", \"-c\", \"true\"]\n\n[[check]]\nname = \"t\"\nprobe = \"tcp\"\naddress = \"localhost\"\n\n[[check]]\nname = \"h\"\nprobe = \"http\"\nurl = \"ftp://x\"\nexpect_status = 700\n\n[[check]]\nname = \"u\"\nprobe = \"systemd\"\npath = \"/\"\n");
    for want in [
        "1:1: [[check]] with probe \"containers\" is missing the key `match`",
        // About the command's value, so at the value (8:11), not at its table (5:1).
        "8:11: exec `command` must start with an absolute path",
        // Every key of the kind is read, so a bad value next to a bad url is found too.
        "19:17: `expect_status` must be between 100 and 599",
        "13:11: address must be HOST:PORT",
        "18:7: url must start with http:// or https://",
        "21:1: [[check]] is missing the key `unit`",
        "24:1: unknown key `path` in [[check]]",
    ] {
        assert!(
            e.iter().any(|got| got.contains(want)),
            "missing {want:?} in {e:#?}"
        );
    }
}

const RULES: &str = r#"
[[check]]
name = "ollama"
probe = "ollama"

[[check]]
name = "stack"
probe = "containers"
match = ["arasul-*"]

[[rule]]
name = "heal-ollama"
on = "ollama"
when = "crit"
for = "30s"
do = [
  "unload-models ollama",
  "restart container:ollama",
  "restart unit:docker.service",
]
cooldown = "1m"
limit = "4 per 1h"
mode = "enforce"

[[rule]]
name = "heal-stack"
on = "container:*"
do = ["restart {target}"]
mode = "observe"
"#;

#[test]
fn rules_of_the_design_parse() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "r.toml", RULES);
    let set = load_files(&[p], &LoadContext::default()).unwrap();
    assert_eq!(set.rules.len(), 2);
    let r = &set.rules[0];
    assert_eq!((r.name.as_str(), r.on.as_str()), ("heal-ollama", "ollama"));
    assert_eq!(r.hold, Duration::from_secs(30));
    assert_eq!(r.ladder.len(), 3);
    assert_eq!(r.limit.count, 4);
    assert_eq!(set.rules[1].mode, Mode::Observe);
    assert_eq!(
        set.rules[1].cooldown,
        Duration::from_secs(rules::COOLDOWN_DEFAULT_SECS)
    );
}

#[test]
fn rule_errors_are_located() {
    let text = r#"[[check]]
name = "m"
probe = "memory"

[[rule]]
name = "r1"
on = "nope"
when = "sometimes"
do = ["restart pod:x", "clean /etc older-than 1d", "hook backup", "unload-models m"]
limit = "lots"
mode = "yolo"
colour = "red"

[[rule]]
name = "r1"
on = "m"
do = []
"#;
    let e = errors_of(text);
    let expect = [
        "8:8: when must be crit, warn, not-ok or unknown",
        "9:8: unknown target `pod:x`",
        "9:25: clean /etc: not under a directory allowed by [actions] clean_allow",
        "9:53: hook \"backup\" is not defined in vigil.toml",
        "10:9: limit: expected `N per DURATION`",
        "11:8: mode must be enforce or observe",
        "12:1: unknown key `colour` in [[rule]]",
        "15:8: duplicate rule name \"r1\"",
        "`do` is empty",
    ];
    for want in expect {
        assert!(
            e.iter().any(|got| got.contains(want)),
            "missing {want:?} in {e:#?}"
        );
    }
    // A rule on a check that does not exist, and unload-models on a non-ollama check.
    let e = errors_of("[[check]]\nname = \"m\"\nprobe = \"memory\"\n\n[[rule]]\nname = \"r\"\non = \"nope\"\ndo = [\"unload-models m\"]\n");
    assert!(
        e.iter()
            .any(|m| m.starts_with("7:6: rule \"r\" is on \"nope\", but no check has that name")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("8:8: unload-models m: no check \"m\" with probe \"ollama\"")),
        "{e:?}"
    );
}

#[test]
fn clean_inside_the_allow_list_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "r.toml", "[[check]]\nname = \"d\"\nprobe = \"disk\"\npath = \"/\"\n\n[[rule]]\nname = \"r\"\non = \"d\"\ndo = [\"clean /var/log/arasul/old older-than 7d\", \"clean /var/log/arasul/../../etc older-than 1d\"]\n");
    let ctx = LoadContext {
        clean_allow: vec!["/var/log/arasul".into()],
        hooks: vec![],
    };
    let e = load_files(&[p], &ctx).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert!(
        e.0[0].message.contains("clean /var/log/arasul/../../etc"),
        "{e}"
    );
}

#[test]
fn unknown_sections_and_wrong_types() {
    let e = errors_of("[checks]\nx = 1\n[[check]]\nname = 5\nprobe = \"memory\"\n");
    assert!(
        e.iter()
            .any(|m| m.starts_with("1:2: unknown key `checks` in the policy file")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("`name` must be a string, not an integer")),
        "{e:?}"
    );
}

#[test]
fn directories_merge_by_file_name_later_wins() {
    let vendor = tempfile::tempdir().unwrap();
    let admin = tempfile::tempdir().unwrap();
    write(
        vendor.path(),
        "10-disk.toml",
        "[[check]]\nname = \"d\"\nprobe = \"disk\"\npath = \"/\"\n",
    );
    write(
        vendor.path(),
        "20-mem.toml",
        "[[check]]\nname = \"m\"\nprobe = \"memory\"\n",
    );
    write(vendor.path(), "README", "not a policy");
    let over = write(
        admin.path(),
        "20-mem.toml",
        "[[check]]\nname = \"m2\"\nprobe = \"memory\"\n",
    );
    let set = load_dirs(
        &[
            vendor.path().to_path_buf(),
            admin.path().to_path_buf(),
            "/nonexistent/x".into(),
        ],
        &LoadContext::default(),
        || panic!("host facts are asked for only when there is no policy file"),
    )
    .unwrap();
    let names: Vec<_> = set.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["d", "m2"]);
    assert_eq!(set.files[1], over);
    assert!(!set.builtin);
}

#[test]
fn names() {
    for good in ["a", "root-disk", "container:ollama", "x_1.y"] {
        assert!(valid_name(good), "{good}");
    }
    for bad in ["", "-a", "A", "a b", "é"] {
        assert!(!valid_name(bad), "{bad}");
    }
}

/// `{target}` on a rule whose matched checks name no container or unit is refused where
/// the step is written; on container members it is fine.
#[test]
fn target_needs_a_thing_behind_the_check() {
    let e = errors_of("[[check]]\nname = \"marker\"\nprobe = \"exec\"\ncommand = [\"/bin/true\"]\n\n[[rule]]\nname = \"r\"\non = \"*\"\ndo = [\"restart {target}\", \"notify\"]\n");
    assert!(
        e.iter()
            .any(|m| m.starts_with("9:8: {target} has no meaning for check \"marker\"")),
        "{e:#?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "ok.toml",
        "[[check]]\nname = \"stack\"\nprobe = \"containers\"\nmatch = \"*\"\n\n[[rule]]\nname = \"r\"\non = \"container:*\"\ndo = [\"restart {target}\"]\n",
    );
    load_files(&[p], &LoadContext::default()).unwrap();
}

/// A probe interval below the floor is refused, with the floor in the message.
#[test]
fn every_has_a_floor() {
    let e = errors_of("[[check]]\nname = \"m\"\nprobe = \"memory\"\nevery = \"1ms\"\n");
    assert_eq!(
        e,
        ["4:9: `every` must be at least 100ms: a shorter interval only burns CPU"]
    );
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "ok.toml",
        "[[check]]\nname = \"m\"\nprobe = \"memory\"\nevery = \"100ms\"\n",
    );
    load_files(&[p], &LoadContext::default()).unwrap();
}

/// Errors name where and what was expected, never the value: a URL or address may carry
/// credentials.
#[test]
fn errors_never_repeat_the_value() {
    let e = errors_of("[[check]]\nname = \"h\"\nprobe = \"http\"\nurl = \"ftp://user:s3cret@x\"\n\n[[check]]\nname = \"t\"\nprobe = \"tcp\"\naddress = \"s3cret\"\n\n[[check]]\nname = \"d\"\nprobe = \"disk\"\npath = \"s3cret\"\ntimeout = \"s3cret\"\n");
    assert_eq!(e.len(), 4, "{e:#?}");
    for m in &e {
        assert!(!m.contains("s3cret"), "{m}");
    }
}
