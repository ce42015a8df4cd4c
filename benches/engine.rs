//! Policy evaluation per tick: 1,000 checks and 1,000 rules, on a fake clock.
//! `cargo bench --bench engine` prints a table.

use std::time::{Duration, Instant};

use vigil::core::action;
use vigil::core::engine::{Engine, Globals};
use vigil::core::health::Status;
use vigil::core::rule::{Limit, Mode, Rule, When};

fn main() {
    let n = 1000;
    let checks: Vec<(String, Status)> =
        (0..n).map(|i| (format!("check-{i}"), Status::Ok)).collect();
    let rules: Vec<Rule> = (0..n)
        .map(|i| Rule {
            name: format!("rule-{i}"),
            on: format!("check-{i}").into(),
            when: When::Crit,
            hold: Duration::from_secs(30),
            ladder: vec![
                action::parse("restart container:x").unwrap(),
                action::parse("notify").unwrap(),
            ],
            cooldown: Duration::from_secs(60),
            limit: Limit {
                count: 4,
                window: Duration::from_secs(3600),
            },
            mode: Mode::Enforce,
        })
        .collect();
    let glob_rules: Vec<Rule> = (0..n)
        .map(|i| Rule {
            on: format!("check-{i}*").into(),
            name: format!("glob-{i}"),
            ..rules[0].clone()
        })
        .collect();
    println!("| scenario | ticks | mean µs/tick | p99 µs/tick |");
    println!("| --- | --- | --- | --- |");
    for (label, set, failing) in [
        (
            "1,000 checks × 1,000 exact rules, all ok",
            rules.clone(),
            0usize,
        ),
        (
            "1,000 checks × 1,000 exact rules, 10% crit",
            rules.clone(),
            n / 10,
        ),
        (
            "1,000 checks × 1,000 glob rules, 10% crit",
            glob_rules.clone(),
            n / 10,
        ),
    ] {
        let mut engine = Engine::new(set, Globals::default());
        let mut statuses = checks.clone();
        for s in statuses.iter_mut().take(failing) {
            s.1 = Status::Crit;
        }
        let ticks = 200;
        let mut times = Vec::with_capacity(ticks);
        let mut now = 0u64;
        for _ in 0..ticks {
            now += 1_000_000;
            let t = Instant::now();
            let d = engine.tick(now, &statuses, false);
            times.push(t.elapsed());
            std::hint::black_box(d);
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / ticks as u32;
        let p99 = times[ticks * 99 / 100];
        println!(
            "| {label} | {ticks} | {:.0} | {:.0} |",
            mean.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
}
