//! Policy files as vigild and `vigilctl policy check` read them: any text either parses to
//! a `PolicySet` or gives errors, each located at FILE:LINE:COLUMN within that text.

#![no_main]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use vigil::policy::{parse, LoadContext};

fuzz_target!(|data: &[u8]| {
    // The loader reads a policy file as UTF-8 and refuses one that is not, before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The context the DESIGN example's settings give: `clean` under one tree, two hooks.
    let ctx = LoadContext {
        clean_allow: vec![PathBuf::from("/var/log/arasul")],
        hooks: vec!["db-backup".into(), "mark-boot-good".into()],
    };
    let a = PathBuf::from("/etc/vigil/policies/50-fuzz.toml");
    let files = [(a.clone(), text.to_string())];
    match parse(&files, &ctx) {
        Ok(set) => {
            assert_eq!(set.files, vec![a.clone()]);
            assert!(!set.builtin);
            let checks: BTreeSet<_> = set.checks.iter().map(|c| &c.name).collect();
            assert_eq!(checks.len(), set.checks.len(), "two checks of one name");
            let rules: BTreeSet<_> = set.rules.iter().map(|r| &r.name).collect();
            assert_eq!(rules.len(), set.rules.len(), "two rules of one name");
            // `policy show --json` and the text forms never fail on what was accepted.
            serde_json::to_string(&set).expect("a parsed set serializes");
            for r in &set.rules {
                let _ = (r.on.as_str(), r.when.as_str(), r.limit.to_string());
                for step in &r.ladder {
                    let _ = step.to_string();
                }
            }
            // The same, again: parsing is deterministic.
            assert_eq!(parse(&files, &ctx).as_ref(), Ok(&set));
            // The same text in a second file: every check and rule is defined twice, which
            // must be refused, with every error inside one of the two texts.
            if !set.checks.is_empty() || !set.rules.is_empty() {
                let b = PathBuf::from("/usr/lib/vigil/policies/60-again.toml");
                let twice = [(a.clone(), text.to_string()), (b.clone(), text.to_string())];
                let errors = parse(&twice, &ctx).expect_err("a name defined in two files");
                for d in &errors.0 {
                    assert!(d.file == a || d.file == b, "error in another file: {d}");
                    common::assert_within(text, d.line, d.column, d);
                }
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without an error");
            for d in &errors.0 {
                assert_eq!(d.file, a, "{d}");
                assert!(!d.message.trim().is_empty(), "an empty message at {d}");
                common::assert_within(text, d.line, d.column, d);
                let shown = d.to_string();
                let at = format!("{}:{}:{}: ", a.display(), d.line, d.column);
                assert!(shown.starts_with(&at), "{shown}");
            }
        }
    }
});
