//! `GET /metrics` render time: the snapshot of 10 to 2,000 checks (500 is the figure the
//! project quotes) rendered to Prometheus text, every check with all of its probe's
//! metrics. `cargo bench --bench metrics` prints a table.

use std::sync::Arc;
use std::time::Instant;

use vigil::core::health::{CheckState, Status};
use vigil::core::probe_kind::ProbeKind;
use vigil::core::status::{PushStatus, Snapshot};
use vigil::surface::metrics::render;

/// A snapshot of `n` checks, the probe kinds in turn, each with every metric of its kind.
fn snapshot(n: usize) -> Snapshot {
    let mut s = Snapshot::starting(1_771_322_400_000_000);
    s.checks = (0..n)
        .map(|i| {
            let kind = ProbeKind::ALL[i % ProbeKind::ALL.len()];
            let metrics = kind
                .metrics()
                .iter()
                .enumerate()
                .map(|(j, m)| (m.name.to_string(), (i * 7 + j) as f64 * 1.5))
                .collect();
            Arc::new(CheckState {
                name: format!("{}-{i}", kind.as_str()),
                probe: kind.as_str().to_string(),
                status: [Status::Ok, Status::Warn, Status::Crit, Status::Unknown][i % 4],
                since: 0,
                detail: "fine".into(),
                metrics,
                last_probe: None,
            })
        })
        .collect();
    s.push = vec![PushStatus {
        name: "heartbeat".into(),
        ok_total: 100,
        ..Default::default()
    }];
    s
}

fn main() {
    let rounds: usize = std::env::var("VIGIL_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    println!("| checks | samples | bytes | median µs | p90 µs | max µs |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in [10, 100, 500, 2000] {
        let snap = snapshot(n);
        let text = render(&snap); // warm up
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        let mut times: Vec<f64> = (0..rounds)
            .map(|_| {
                let t = Instant::now();
                let out = render(&snap);
                let us = t.elapsed().as_secs_f64() * 1e6;
                assert_eq!(out.len(), text.len());
                us
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "| {n} | {samples} | {} | {:.0} | {:.0} | {:.0} |",
            text.len(),
            at(0.5),
            at(0.9),
            times[times.len() - 1]
        );
    }
}
