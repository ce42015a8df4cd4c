//! The gate's reading of the health model: every check a gate selector matches must be `ok`
//! and must have been read since the gate began (a check still showing the `ok` it had
//! before the restart says nothing about the new release).

use std::collections::BTreeMap;

use crate::core::health::Status;
use crate::core::rule::Selector;
use crate::core::status::Snapshot;
use crate::core::time::Micros;

/// What the gate saw when it began: each check's last reading then.
#[derive(Debug, Clone, Default)]
pub struct GateWatch {
    pub selectors: Vec<Selector>,
    baseline: BTreeMap<String, Option<Micros>>,
}

impl GateWatch {
    /// Begins watching at `snap`.
    pub fn begin(selectors: Vec<Selector>, snap: &Snapshot) -> GateWatch {
        let baseline = snap
            .checks
            .iter()
            .filter(|c| selectors.iter().any(|s| s.matches(&c.name)))
            .map(|c| (c.name.clone(), c.last_probe))
            .collect();
        GateWatch {
            selectors,
            baseline,
        }
    }

    /// Whether every gate check is ok, fresh, and why not.
    pub fn reading(&self, snap: &Snapshot) -> (bool, String) {
        if self.selectors.is_empty() {
            return (true, "the bundle has no gate".into());
        }
        let matched: Vec<_> = snap
            .checks
            .iter()
            .filter(|c| self.selectors.iter().any(|s| s.matches(&c.name)))
            .collect();
        if matched.is_empty() {
            let names: Vec<String> = self.selectors.iter().map(|s| s.to_string()).collect();
            return (
                false,
                format!("no check matches the gate ({})", names.join(", ")),
            );
        }
        let mut bad = Vec::new();
        let mut stale = Vec::new();
        for c in &matched {
            if c.status != Status::Ok {
                bad.push(format!("{}: {} ({})", c.name, c.status, c.detail));
            } else if c.last_probe.is_none()
                || self
                    .baseline
                    .get(&c.name)
                    .is_some_and(|b| *b == c.last_probe)
            {
                stale.push(c.name.clone());
            }
        }
        let n = matched.len();
        if bad.is_empty() && stale.is_empty() {
            return (true, format!("all {n} gate check(s) ok"));
        }
        let ok = n - bad.len() - stale.len();
        let mut why = format!("{ok} of {n} gate check(s) ok");
        if !bad.is_empty() {
            why.push_str(&format!("; {}", bad.join("; ")));
        }
        if !stale.is_empty() {
            why.push_str(&format!(
                "; not read since the gate began: {}",
                stale.join(", ")
            ));
        }
        (false, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::health::CheckState;
    use std::sync::Arc;

    fn snap(checks: &[(&str, Status, Option<Micros>)]) -> Snapshot {
        let mut s = Snapshot::starting(0);
        s.checks = checks
            .iter()
            .map(|(n, st, at)| {
                Arc::new(CheckState {
                    name: n.to_string(),
                    probe: "exec".into(),
                    status: *st,
                    since: 0,
                    detail: "d".into(),
                    metrics: Default::default(),
                    last_probe: *at,
                })
            })
            .collect();
        s
    }

    #[test]
    fn ok_only_when_every_matched_check_was_read_ok_since_the_gate_began() {
        let sel = vec![Selector::parse("container:*"), Selector::parse("ollama")];
        let before = snap(&[
            ("container:app", Status::Ok, Some(1)),
            ("ollama", Status::Ok, Some(1)),
            ("disk", Status::Crit, Some(1)),
        ]);
        let g = GateWatch::begin(sel, &before);
        let (ok, why) = g.reading(&before);
        assert!(!ok);
        assert!(
            why.contains("not read since the gate began: container:app, ollama"),
            "{why}"
        );
        let after = snap(&[
            ("container:app", Status::Crit, Some(2)),
            ("ollama", Status::Ok, Some(2)),
            ("disk", Status::Crit, Some(2)),
        ]);
        let (ok, why) = g.reading(&after);
        assert!(!ok);
        assert!(
            why.starts_with("1 of 2 gate check(s) ok; container:app: crit"),
            "{why}"
        );
        let good = snap(&[
            ("container:app", Status::Ok, Some(3)),
            ("ollama", Status::Ok, Some(3)),
            ("container:new", Status::Ok, Some(3)),
        ]);
        assert_eq!(g.reading(&good), (true, "all 3 gate check(s) ok".into()));
        let none = snap(&[("disk", Status::Ok, Some(3))]);
        let (ok, why) = g.reading(&none);
        assert!(
            !ok && why.contains("no check matches the gate (container:*, ollama)"),
            "{why}"
        );
    }
}
