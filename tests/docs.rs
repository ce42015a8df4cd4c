//! The documentation names every metric thresholds can use.

use vigil::probe::ProbeKind;

#[test]
fn docs_metrics_lists_every_metric_of_every_probe() {
    let doc = std::fs::read_to_string("docs/metrics.md").unwrap();
    for kind in ProbeKind::ALL {
        assert!(
            doc.contains(&format!("`{}` —", kind.as_str())),
            "no section for {kind}"
        );
        for m in kind.metrics() {
            let unit = m.unit.to_string();
            let row = format!("| `{}` | {} |", m.name, unit);
            assert!(doc.contains(&row), "docs/metrics.md lacks the row {row:?}");
        }
    }
}
