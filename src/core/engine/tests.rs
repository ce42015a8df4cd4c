//! The engine on a fake clock: hours of simulated time in milliseconds.

use super::*;
use crate::core::action;
use crate::core::rule::When;

const S: Micros = 1_000_000;

fn rule(on: &str, ladder: &[&str], limit: &str) -> Rule {
    Rule {
        name: "heal".into(),
        on: on.into(),
        when: When::Crit,
        hold: Duration::from_secs(30),
        ladder: ladder.iter().map(|a| action::parse(a).unwrap()).collect(),
        cooldown: Duration::from_secs(60),
        limit: Limit::parse(limit).unwrap(),
        mode: Mode::Enforce,
    }
}

fn acts(d: &[Decision]) -> Vec<String> {
    d.iter()
        .filter_map(|d| match d {
            Decision::Act { action, .. } => Some(action.to_string()),
            _ => None,
        })
        .collect()
}

/// One tick whose actions finish at once (as quick actions do).
fn run(
    e: &mut Engine,
    now: Micros,
    checks: &[(String, Status)],
    maintenance: bool,
) -> Vec<Decision> {
    let d = e.tick(now, checks, maintenance);
    done_all(e, &d, now);
    d
}

fn st(name: &str, s: Status) -> Vec<(String, Status)> {
    vec![(name.to_string(), s)]
}

#[test]
fn hysteresis_then_the_ladder_one_step_per_cooldown() {
    let mut e = Engine::new(
        vec![rule(
            "ollama",
            &[
                "unload-models ollama",
                "restart container:ollama",
                "restart unit:docker.service",
            ],
            "4 per 1h",
        )],
        Globals::default(),
    );
    // A blip shorter than `for` does nothing.
    assert!(run(&mut e, 0, &st("ollama", Status::Crit), false).is_empty());
    assert!(run(&mut e, 20 * S, &st("ollama", Status::Ok), false).is_empty());
    assert!(e
        .tick(25 * S, &st("ollama", Status::Crit), false)
        .is_empty());
    // Held for 30 s: incident and the first step.
    let d = run(&mut e, 55 * S, &st("ollama", Status::Crit), false);
    assert!(matches!(d[0], Decision::Opened { .. }), "{d:?}");
    assert_eq!(acts(&d), ["unload-models ollama"]);
    // Within the cooldown: nothing.
    assert!(e
        .tick(100 * S, &st("ollama", Status::Crit), false)
        .is_empty());
    assert_eq!(
        acts(&run(&mut e, 115 * S, &st("ollama", Status::Crit), false)),
        ["restart container:ollama"]
    );
    assert_eq!(
        acts(&run(&mut e, 175 * S, &st("ollama", Status::Crit), false)),
        ["restart unit:docker.service"]
    );
    // Past the end of the ladder the last step repeats, until the limit.
    assert_eq!(
        acts(&run(&mut e, 235 * S, &st("ollama", Status::Crit), false)),
        ["restart unit:docker.service"]
    );
    let d = run(&mut e, 295 * S, &st("ollama", Status::Crit), false);
    assert!(matches!(d[..], [Decision::Exhausted { .. }]), "{d:?}");
    assert!(
        run(&mut e, 400 * S, &st("ollama", Status::Crit), false).is_empty(),
        "exhausted: no more actions"
    );
    // Exhausted: ok must last EXHAUSTED_SETTLE before it resolves (a flap does not).
    assert!(run(&mut e, 500 * S, &st("ollama", Status::Ok), false).is_empty());
    assert!(run(&mut e, 530 * S, &st("ollama", Status::Ok), false).is_empty());
    let d = run(&mut e, 560 * S, &st("ollama", Status::Ok), false);
    assert!(matches!(d[..], [Decision::Resolved { .. }]), "{d:?}");
    assert!(e.open_incidents().is_empty());
}

#[test]
fn limit_forgets_on_its_own_and_ok_for_a_window_resets_the_ladder() {
    let mut e = Engine::new(
        vec![rule(
            "c",
            &["restart container:c", "restart unit:docker.service"],
            "1 per 10m",
        )],
        Globals::default(),
    );
    run(&mut e, 0, &st("c", Status::Crit), false);
    assert_eq!(
        acts(&run(&mut e, 30 * S, &st("c", Status::Crit), false)),
        ["restart container:c"]
    );
    // Recovers for 2 minutes (less than the window), fails again: next step, but the
    // window still holds the first action → exhausted.
    run(&mut e, 60 * S, &st("c", Status::Ok), false);
    run(&mut e, 180 * S, &st("c", Status::Crit), false);
    let d = run(&mut e, 210 * S, &st("c", Status::Crit), false);
    assert!(
        d.iter().any(|d| matches!(d, Decision::Exhausted { .. })),
        "{d:?}"
    );
    // Ok for a whole window: resolved, and the ladder back at step one.
    run(&mut e, 300 * S, &st("c", Status::Ok), false);
    run(&mut e, 300 * S + 10 * 60 * S, &st("c", Status::Ok), false);
    let t0 = 300 * S + 11 * 60 * S;
    run(&mut e, t0, &st("c", Status::Crit), false);
    assert_eq!(
        acts(&run(&mut e, t0 + 30 * S, &st("c", Status::Crit), false)),
        ["restart container:c"]
    );
}

#[test]
fn glob_rules_heal_whichever_container_failed() {
    let mut e = Engine::new(
        vec![rule("container:*", &["restart {target}"], "3 per 1h")],
        Globals::default(),
    );
    let checks = vec![
        ("container:db".to_string(), Status::Crit),
        ("container:web".to_string(), Status::Ok),
        ("root-disk".to_string(), Status::Crit),
    ];
    run(&mut e, 0, &checks, false);
    let d = run(&mut e, 30 * S, &checks, false);
    assert_eq!(acts(&d), ["restart container:db"]);
}

#[test]
fn observe_mode_records_and_maintenance_holds() {
    let mut r = rule("x", &["restart unit:x.service"], "5 per 1h");
    r.mode = Mode::Observe;
    let mut e = Engine::new(vec![r], Globals::default());
    run(&mut e, 0, &st("x", Status::Crit), false);
    let d = run(&mut e, 30 * S, &st("x", Status::Crit), false);
    assert!(
        d.iter()
            .any(|d| matches!(d, Decision::Act { observe: true, .. })),
        "{d:?}"
    );

    let mut e = Engine::new(
        vec![rule("x", &["restart unit:x.service"], "5 per 1h")],
        Globals::default(),
    );
    run(&mut e, 0, &st("x", Status::Crit), true);
    let d = run(&mut e, 30 * S, &st("x", Status::Crit), true);
    assert!(acts(&d).is_empty());
    assert!(
        d.iter()
            .any(|d| matches!(d, Decision::Held { reason, .. } if reason == "maintenance mode")),
        "{d:?}"
    );
    // Said once, not every tick.
    assert!(run(&mut e, 31 * S, &st("x", Status::Crit), true).is_empty());
    // Maintenance ends: the held step is taken.
    assert_eq!(
        acts(&run(&mut e, 40 * S, &st("x", Status::Crit), false)),
        ["restart unit:x.service"]
    );
}

#[test]
fn reboots_are_limited_globally() {
    let mut a = rule("a", &["reboot"], "5 per 1h");
    a.name = "a".into();
    let mut b = rule("b", &["reboot"], "5 per 1h");
    b.name = "b".into();
    let mut e = Engine::new(vec![a, b], Globals::default());
    let checks = vec![
        ("a".to_string(), Status::Crit),
        ("b".to_string(), Status::Crit),
    ];
    run(&mut e, 0, &checks, false);
    let d = run(&mut e, 30 * S, &checks, false);
    assert_eq!(acts(&d), ["reboot"], "only one of the two: {d:?}");
    assert!(d
        .iter()
        .any(|d| matches!(d, Decision::Held { reason, .. } if reason.contains("reboot limit"))));
}

#[test]
fn limits_parse() {
    assert_eq!(
        Limit::parse("4 per 1h").unwrap(),
        Limit {
            count: 4,
            window: Duration::from_secs(3600)
        }
    );
    assert!(Limit::parse("0 per 1h").unwrap_err().contains("never act"));
    assert!(Limit::parse("four per hour").is_err());
    assert!(Limit::parse("4/1h").unwrap_err().contains("N per DURATION"));
}

/// xorshift: reproducible random fault sequences without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn thousands_of_random_fault_sequences_keep_every_invariant() {
    let statuses = [Status::Ok, Status::Warn, Status::Crit, Status::Unknown];
    for seed in 1..=2000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let limit_count = 1 + (rng.next() % 4) as u32;
        let window = Duration::from_secs(60 * (1 + rng.next() % 30));
        let mut r = rule(
            "c",
            &[
                "restart container:c",
                "restart unit:docker.service",
                "reboot",
            ],
            "1 per 1h",
        );
        r.limit = Limit {
            count: limit_count,
            window,
        };
        r.hold = Duration::from_secs(rng.next() % 90);
        r.cooldown = Duration::from_secs(rng.next() % 120);
        if rng.next() % 4 == 0 {
            r.mode = Mode::Observe;
        }
        let mut e = Engine::new(vec![r.clone()], Globals::default());
        let mut now: Micros = 0;
        let mut acted: Vec<Micros> = Vec::new();
        let mut reboots: Vec<Micros> = Vec::new();
        let mut open: Option<u64> = None;
        let mut maintenance = false;
        for _ in 0..400 {
            now += (1 + rng.next() % 60) * S;
            if rng.next() % 50 == 0 {
                maintenance = !maintenance;
            }
            let status = statuses[(rng.next() % 4) as usize];
            let status = if rng.next() % 3 == 0 {
                Status::Crit
            } else {
                status
            };
            for d in e.tick(now, &st("c", status), maintenance) {
                match d {
                    Decision::Opened { incident, .. } => {
                        assert!(open.is_none(), "seed {seed}: two incidents at once");
                        open = Some(incident);
                    }
                    Decision::Act {
                        incident,
                        action,
                        observe,
                        ..
                    } => {
                        assert_eq!(
                            Some(incident),
                            open,
                            "seed {seed}: action outside an incident"
                        );
                        assert!(!maintenance, "seed {seed}: action during maintenance");
                        assert_eq!(observe, r.mode == Mode::Observe, "seed {seed}");
                        acted.push(now);
                        e.action_done("heal", "c", now);
                        if action.is_reboot() && !observe {
                            reboots.push(now);
                        }
                    }
                    Decision::Resolved { incident, .. } => {
                        assert_eq!(Some(incident), open, "seed {seed}");
                        assert_eq!(status, Status::Ok, "seed {seed}: resolved while not ok");
                        open = None;
                    }
                    Decision::Closed { .. } => panic!("seed {seed}: nothing is removed here"),
                    Decision::Skipped { .. } => panic!("seed {seed}: every step applies here"),
                    Decision::Exhausted { incident, .. } | Decision::Held { incident, .. } => {
                        assert_eq!(Some(incident), open, "seed {seed}");
                    }
                }
            }
            // The limit holds in every window ending now.
            let w = micros(window);
            let in_window = acted.iter().filter(|&&t| now - t < w).count() as u32;
            assert!(
                in_window <= limit_count,
                "seed {seed}: {in_window} actions in a window of {window:?}, limit {limit_count}"
            );
            let rw = 6 * 3600 * S;
            assert!(
                reboots.iter().filter(|&&t| now - t < rw).count() <= 1,
                "seed {seed}: reboot limit"
            );
            // Every incident is open for a reason: its condition held, or it waits for ok.
            if let Some(id) = open {
                let listed = e.open_incidents();
                assert!(
                    listed.iter().any(|(i, ..)| *i == id),
                    "seed {seed}: open incident not listed"
                );
            }
        }
    }
}

/// Marks every action of `d` done at `now` (as the daemon does when actuators return).
fn done_all(e: &mut Engine, d: &[Decision], now: Micros) {
    for x in d {
        if let Decision::Act { rule, check, .. } = x {
            e.action_done(rule, check, now);
        }
    }
}

#[test]
fn a_running_action_blocks_the_next_step_and_the_cooldown_counts_from_its_end() {
    let mut r = rule(
        "x",
        &["restart container:x", "restart unit:docker.service"],
        "5 per 1h",
    );
    r.hold = Duration::ZERO;
    r.cooldown = Duration::from_secs(10);
    let mut e = Engine::new(vec![r], Globals::default());
    assert_eq!(
        acts(&e.tick(0, &st("x", Status::Crit), false)),
        ["restart container:x"]
    );
    // Still running at 60 s: nothing new, however long it takes.
    assert!(acts(&e.tick(60 * S, &st("x", Status::Crit), false)).is_empty());
    e.action_done("heal", "x", 61 * S);
    assert!(
        acts(&e.tick(65 * S, &st("x", Status::Crit), false)).is_empty(),
        "cooldown from the end"
    );
    assert_eq!(
        acts(&e.tick(71 * S, &st("x", Status::Crit), false)),
        ["restart unit:docker.service"]
    );
}

#[test]
fn incidents_of_removed_rules_and_vanished_checks_are_closed() {
    let mut e = Engine::new(
        vec![rule("container:*", &["notify"], "5 per 1h")],
        Globals::default(),
    );
    let both = vec![
        ("container:a".to_string(), Status::Crit),
        ("container:b".to_string(), Status::Crit),
    ];
    e.tick(0, &both, false);
    let d = e.tick(30 * S, &both, false);
    done_all(&mut e, &d, 30 * S);
    assert_eq!(e.open_incidents().len(), 2);
    let d = e.tick(40 * S, &both[..1], false);
    assert!(d.iter().any(|d| matches!(d, Decision::Closed { check, reason, .. } if check == "container:b" && reason.contains("no longer exists"))), "{d:?}");
    assert_eq!(e.open_incidents().len(), 1);
    let d = e.set_rules(Vec::new(), Globals::default());
    assert!(
        matches!(&d[..], [Decision::Closed { reason, .. }] if reason.contains("rule was removed")),
        "{d:?}"
    );
    assert!(e.open_incidents().is_empty());
}

/// A `{target}` step on a check that names no container or unit is skipped, and the ladder
/// goes on to the next step instead of holding forever.
#[test]
fn a_step_that_cannot_apply_is_skipped_and_the_ladder_moves_on() {
    let mut e = Engine::new(
        vec![rule("*", &["restart {target}", "notify"], "5 per 1h")],
        Globals::default(),
    );
    let crit = vec![("marker".to_string(), Status::Crit)];
    assert!(e.tick(0, &crit, false).is_empty());
    let d = e.tick(30 * S, &crit, false);
    assert!(
        d.iter().any(|d| matches!(d, Decision::Skipped { step: 0, reason, .. } if reason.contains("{target}"))),
        "{d:?}"
    );
    let d = e.tick(31 * S, &crit, false);
    assert!(
        d.iter().any(|d| matches!(
            d,
            Decision::Act {
                step: 1,
                action: Action::Notify,
                ..
            }
        )),
        "{d:?}"
    );
}

#[test]
fn an_update_run_holds_actions_on_its_targets_and_they_act_after_it() {
    let mut e = Engine::new(
        vec![
            rule("container:*", &["restart {target}"], "5 per 1h"),
            Rule {
                name: "other".into(),
                ..rule("disk", &["notify"], "5 per 1h")
            },
        ],
        Globals::default(),
    );
    e.set_update_hold(Some(UpdateHold {
        run: "7".into(),
        targets: vec![Target::Container("app".into())],
    }));
    let checks = vec![
        ("container:app".to_string(), Status::Crit),
        ("container:db".to_string(), Status::Crit),
        ("disk".to_string(), Status::Crit),
    ];
    run(&mut e, 0, &checks, false);
    let d = run(&mut e, 31 * S, &checks, false);
    // db and the disk rule act; app is held, once, with the reason.
    let mut a = acts(&d);
    a.sort();
    assert_eq!(a, ["notify", "restart container:db"]);
    let held: Vec<_> = d
        .iter()
        .filter_map(|d| match d {
            Decision::Held { check, reason, .. } => Some((check.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(held, [("container:app", "update run 7 is in progress")]);
    assert!(run(&mut e, 32 * S, &checks, false)
        .iter()
        .all(|d| !matches!(d, Decision::Held { .. })));
    // The run ends: the held step is taken at the next tick.
    e.set_update_hold(None);
    let d = run(&mut e, 33 * S, &checks, false);
    assert_eq!(acts(&d), ["restart container:app"]);
    // Reboots and prunes wait for a run too.
    let h = UpdateHold {
        run: "8".into(),
        targets: vec![],
    };
    assert!(h.holds(&Action::Reboot).is_some());
    assert!(h.holds(&Action::PruneDocker).is_some());
    assert!(h.holds(&Action::Notify).is_none());
}

/// What a run of decisions held, counted.
#[derive(Default)]
struct Tally {
    acted: Vec<Micros>,
    opened: u32,
    exhausted: u32,
    resolved: u32,
}

impl Tally {
    fn add(&mut self, d: &[Decision], now: Micros) {
        for d in d {
            match d {
                Decision::Act { .. } => self.acted.push(now),
                Decision::Opened { .. } => self.opened += 1,
                Decision::Exhausted { .. } => self.exhausted += 1,
                Decision::Resolved { .. } => self.resolved += 1,
                _ => {}
            }
        }
    }
}

/// A check that flaps every 100 ms for five simulated minutes: restarts never exceed the
/// limit in any window, the rule gives up once in one incident that stays exhausted while
/// it flaps, and only a whole window of ok resolves it.
#[test]
fn a_check_flapping_every_100ms_keeps_one_exhausted_incident() {
    let mut r = rule("c", &["restart container:c"], "3 per 1m");
    r.hold = Duration::ZERO;
    r.cooldown = Duration::ZERO;
    let mut e = Engine::new(vec![r], Globals::default());
    let ms = S / 1000;
    let mut t = Tally::default();
    let mut now = 0;
    while now < 300 * S {
        let status = if (now / (100 * ms)) % 2 == 0 {
            Status::Crit
        } else {
            Status::Ok
        };
        let d = run(&mut e, now, &st("c", status), false);
        t.add(&d, now);
        now += 50 * ms;
    }
    for (i, &at) in t.acted.iter().enumerate() {
        let in_window = t.acted[i..]
            .iter()
            .take_while(|&&u| u < at + 60 * S)
            .count();
        assert!(
            in_window <= 3,
            "{in_window} restarts in the minute from {at}"
        );
    }
    assert!(t.acted.len() >= 3, "{:?}", t.acted);
    // The first incidents resolve with the ok after a restart; once the limit is spent the
    // rule gives up, and that incident lasts while the check flaps.
    assert!(t.opened <= 4, "{} incidents", t.opened);
    assert_eq!((t.exhausted, t.resolved), (1, t.opened - 1));
    // Ok for less than EXHAUSTED_SETTLE: still exhausted; for longer: resolved.
    let d = run(&mut e, now, &st("c", Status::Ok), false);
    t.add(&d, now);
    let d = run(&mut e, now + 30 * S, &st("c", Status::Ok), false);
    t.add(&d, now);
    assert_eq!(t.resolved, t.opened - 1);
    let d = run(&mut e, now + 61 * S, &st("c", Status::Ok), false);
    t.add(&d, now);
    assert_eq!(t.resolved, t.opened);
}
