//! The update state machine on a fake clock: gates that hold, flap and time out, in
//! microseconds of pretend time.

use super::*;
use crate::core::action::Target;

const S: Mono = 1_000_000;

fn steps() -> Vec<Step> {
    vec![
        Step::DockerLoad {
            file: "payload/images/app.tar".into(),
        },
        Step::Install {
            file: "payload/compose.yml".into(),
            to: "compose.yml".into(),
        },
        Step::Restart {
            target: Target::Container("app".into()),
        },
        Step::Hook {
            name: "migrate".into(),
        },
    ]
}

fn gate(window_s: u64, timeout_s: u64) -> Gate {
    Gate {
        checks: vec!["app".into()],
        window: Duration::from_secs(window_s),
        timeout: Duration::from_secs(timeout_s),
    }
}

fn ok(b: bool) -> Event {
    Event::Gate {
        ok: b,
        detail: if b {
            "all ok".into()
        } else {
            "app: crit".into()
        },
    }
}

/// Drives a run from new to the gate; returns it and the time the gate began.
fn to_gate(window_s: u64, timeout_s: u64) -> (Run, Mono) {
    let mut r = Run::new(steps(), &gate(window_s, timeout_s));
    assert_eq!(r.state, UpdateState::Verified);
    let t = 10 * S;
    assert_eq!(r.on(Event::Staged, t).unwrap(), vec![Effect::Backup]);
    assert_eq!(r.state, UpdateState::Staged);
    assert_eq!(r.on(Event::BackedUp, t).unwrap(), vec![Effect::Prepare]);
    assert_eq!(r.state, UpdateState::BackedUp);
    assert!(!r.applied());
    // Load, install, then the switch before the restart, the restart, the hook.
    let expected = [
        Effect::Step(0),
        Effect::Step(1),
        Effect::Switch,
        Effect::Step(2),
        Effect::Step(3),
        Effect::WatchGate,
    ];
    for e in expected {
        assert_eq!(r.on(Event::Applied, t).unwrap(), vec![e.clone()], "{e:?}");
        if e != Effect::WatchGate {
            assert_eq!(r.state, UpdateState::Applying);
        }
    }
    assert!(r.applied() && r.switched());
    assert_eq!(r.state, UpdateState::Gating);
    (r, t)
}

#[test]
fn a_healthy_release_is_committed_after_its_window() {
    let (mut r, t) = to_gate(60, 300);
    assert_eq!(
        r.gate_due(),
        Some(t + 300 * S),
        "the timeout, until a reading is ok"
    );
    assert_eq!(r.on(ok(true), t + S).unwrap(), vec![]);
    assert_eq!(r.gate_due(), Some(t + 61 * S), "the end of the window");
    // One microsecond short of the window: still gating.
    assert_eq!(r.on(Event::Tick, t + 61 * S - 1).unwrap(), vec![]);
    assert!(r.fraction(t + 31 * S) > 0.49 && r.fraction(t + 31 * S) < 0.51);
    assert_eq!(
        r.on(Event::Tick, t + 61 * S).unwrap(),
        vec![Effect::CommitHook]
    );
    assert!(r.gate_passed);
    assert_eq!(
        r.state,
        UpdateState::Gating,
        "committed only after the hook"
    );
    assert_eq!(
        r.on(Event::CommitDone, t + 62 * S).unwrap(),
        vec![Effect::Finish]
    );
    assert_eq!(r.state, UpdateState::Committed);
    assert_eq!(r.fraction(t), 1.0);
}

#[test]
fn a_flapping_gate_restarts_its_window_and_times_out_into_a_rollback() {
    let (mut r, t) = to_gate(60, 300);
    // ok for 50 s, crit for 1 s, again and again: never 60 s in one piece.
    let mut now = t;
    let mut effects = vec![];
    while effects.is_empty() {
        now += S;
        let crit = (now - t) / S % 51 == 50;
        effects = r.on(ok(!crit), now).unwrap();
    }
    assert_eq!(now, t + 300 * S, "rolled back exactly at the timeout");
    assert_eq!(effects, vec![Effect::Rollback { applied: true }]);
    assert_eq!(r.state, UpdateState::RollingBack);
    assert!(
        r.detail.contains("did not pass within 5 min"),
        "{}",
        r.detail
    );
    // The previous release is back: it gates again, and passes.
    assert_eq!(
        r.on(Event::RolledBack, now).unwrap(),
        vec![Effect::WatchGate]
    );
    assert_eq!(r.state, UpdateState::Gating);
    assert!(r.rolling_back);
    r.on(ok(true), now + S).unwrap();
    assert_eq!(
        r.on(Event::Tick, now + 61 * S).unwrap(),
        vec![Effect::Finish]
    );
    assert_eq!(r.state, UpdateState::RolledBack);
    assert!(r.detail.contains("did not pass"), "{}", r.detail);
}

#[test]
fn a_gate_that_flaps_then_settles_passes_a_window_after_it_settled() {
    let (mut r, t) = to_gate(60, 300);
    for i in 1..=40 {
        assert_eq!(r.on(ok(i % 2 == 0), t + i * S).unwrap(), vec![]);
    }
    // ok since t+40 s (the last reading was ok): passes at t+100 s, not before.
    assert_eq!(r.on(Event::Tick, t + 99 * S).unwrap(), vec![]);
    assert_eq!(
        r.on(Event::Tick, t + 100 * S).unwrap(),
        vec![Effect::CommitHook]
    );
}

#[test]
fn the_timeout_runs_without_readings_and_a_failed_rollback_gate_is_failed() {
    let (mut r, t) = to_gate(60, 300);
    assert_eq!(r.on(Event::Tick, t + 299 * S).unwrap(), vec![]);
    assert_eq!(
        r.on(Event::Tick, t + 300 * S).unwrap(),
        vec![Effect::Rollback { applied: true }]
    );
    let t2 = t + 301 * S;
    r.on(Event::RolledBack, t2).unwrap();
    r.on(ok(false), t2 + S).unwrap();
    let effects = r.on(Event::Tick, t2 + 300 * S).unwrap();
    assert_eq!(r.state, UpdateState::Failed);
    assert!(matches!(effects.as_slice(), [Effect::Alert(a)] if a.contains("previous release")));
}

#[test]
fn a_failing_step_rolls_back_and_a_failed_commit_hook_too() {
    let mut r = Run::new(steps(), &gate(1, 10));
    r.on(Event::Staged, 0).unwrap();
    r.on(Event::BackedUp, 0).unwrap();
    r.on(Event::Applied, 0).unwrap();
    let e = r
        .on(Event::ApplyFailed("load: no space".into()), S)
        .unwrap();
    assert_eq!(e, vec![Effect::Rollback { applied: true }]);
    assert_eq!(r.detail, "load: no space");

    let (mut r, t) = to_gate(1, 10);
    r.on(ok(true), t).unwrap();
    assert_eq!(r.on(Event::Tick, t + S).unwrap(), vec![Effect::CommitHook]);
    let e = r.on(Event::CommitFailed("exit 1".into()), t + S).unwrap();
    assert_eq!(e, vec![Effect::Rollback { applied: true }]);
    assert!(!r.gate_passed);
}

#[test]
fn a_rollback_before_anything_was_applied_needs_no_gate() {
    let mut r = Run::new(steps(), &gate(60, 300));
    r.on(Event::Staged, 0).unwrap();
    let e = r.on(Event::ApplyFailed("backup hook failed".into()), 0);
    assert_eq!(e.unwrap(), vec![Effect::Rollback { applied: false }]);
    assert_eq!(r.on(Event::RolledBack, S).unwrap(), vec![Effect::Finish]);
    assert_eq!(r.state, UpdateState::RolledBack);
}

#[test]
fn refusal_while_staging_ends_the_run_and_nothing_else_may_come_first() {
    let mut r = Run::new(steps(), &gate(60, 300));
    assert_eq!(
        r.on(Event::BackedUp, 0),
        Err(Misstep {
            state: UpdateState::Verified,
            event: "backed-up"
        })
    );
    assert!(r.on(Event::RollbackAsked("x".into()), 0).is_err());
    assert_eq!(r.on(Event::Refused("hash".into()), 0).unwrap(), vec![]);
    assert_eq!(r.state, UpdateState::Refused);
    for e in [Event::Staged, Event::Tick, Event::RollbackAsked("x".into())] {
        assert!(r.on(e, 0).is_err(), "nothing after the end");
    }
}

#[test]
fn transitions_assert_where_they_come_from() {
    let (mut r, t) = to_gate(60, 300);
    for e in [
        Event::Staged,
        Event::BackedUp,
        Event::Applied,
        Event::CommitDone,
        Event::RolledBack,
    ] {
        let name = e.name();
        assert_eq!(
            r.on(e, t),
            Err(Misstep {
                state: UpdateState::Gating,
                event: name
            })
        );
    }
    assert!(Misstep {
        state: UpdateState::Gating,
        event: "staged"
    }
    .to_string()
    .contains("cannot come in state gating"));
}

#[test]
fn the_operator_may_roll_back_once_while_the_run_is_active() {
    let (mut r, t) = to_gate(60, 300);
    let e = r
        .on(Event::RollbackAsked("asked by root".into()), t)
        .unwrap();
    assert_eq!(e, vec![Effect::Rollback { applied: true }]);
    assert!(r.on(Event::RollbackAsked("again".into()), t).is_err());
}

#[test]
fn no_restart_step_switches_after_the_last_step() {
    let mut r = Run::new(
        vec![Step::Install {
            file: "payload/a".into(),
            to: "a".into(),
        }],
        &gate(1, 5),
    );
    r.on(Event::Staged, 0).unwrap();
    r.on(Event::BackedUp, 0).unwrap();
    assert_eq!(r.on(Event::Applied, 0).unwrap(), vec![Effect::Step(0)]);
    assert_eq!(r.on(Event::Applied, 0).unwrap(), vec![Effect::Switch]);
    assert_eq!(r.on(Event::Applied, 0).unwrap(), vec![Effect::WatchGate]);
    // Even with no steps at all, the release is switched to before the gate.
    let mut r = Run::new(vec![], &gate(1, 5));
    r.on(Event::Staged, 0).unwrap();
    r.on(Event::BackedUp, 0).unwrap();
    assert_eq!(r.on(Event::Applied, 0).unwrap(), vec![Effect::Switch]);
    assert_eq!(r.on(Event::Applied, 0).unwrap(), vec![Effect::WatchGate]);
}

#[test]
fn resuming_finishes_every_state_the_safe_way() {
    use UpdateState as U;
    let g = gate(60, 300);
    /// state, applied, gate passed, rolling back → state, effects
    type Case<'a> = (U, bool, bool, bool, U, &'a [Effect]);
    let cases: &[Case] = &[
        (U::Verified, false, false, false, U::Refused, &[]),
        (
            U::Staged,
            false,
            false,
            false,
            U::RollingBack,
            &[Effect::Rollback { applied: false }],
        ),
        (
            U::BackedUp,
            false,
            false,
            false,
            U::RollingBack,
            &[Effect::Rollback { applied: false }],
        ),
        (
            U::Applying,
            true,
            false,
            false,
            U::RollingBack,
            &[Effect::Rollback { applied: true }],
        ),
        (
            U::Gating,
            true,
            false,
            false,
            U::RollingBack,
            &[Effect::Rollback { applied: true }],
        ),
        (
            U::Gating,
            true,
            true,
            false,
            U::Gating,
            &[Effect::CommitHook],
        ),
        (
            U::Committed,
            true,
            true,
            false,
            U::Committed,
            &[Effect::Finish],
        ),
        (
            U::RollingBack,
            true,
            false,
            false,
            U::RollingBack,
            &[Effect::Rollback { applied: true }],
        ),
        (
            U::Gating,
            true,
            false,
            true,
            U::RollingBack,
            &[Effect::Rollback { applied: true }],
        ),
        (U::RolledBack, true, false, true, U::RolledBack, &[]),
        (U::Failed, true, false, true, U::Failed, &[]),
        (U::Refused, false, false, false, U::Refused, &[]),
    ];
    for (state, applied, passed, back, want, effects) in cases {
        let (mut r, e) = Run::resume(Kind::Apply, *state, steps(), &g, *applied, *passed, *back);
        assert_eq!((r.state, e.as_slice()), (*want, *effects), "from {state}");
        // A resumed rollback continues like any other: back, gated, done.
        if r.state == U::RollingBack {
            r.on(Event::RolledBack, 0).unwrap();
            if *applied {
                r.on(ok(true), 0).unwrap();
                assert_eq!(r.on(Event::Tick, 60 * S).unwrap(), vec![Effect::Finish]);
            }
            assert_eq!(r.state, U::RolledBack, "from {state}");
            assert!(r.detail.contains(state.as_str()), "{}", r.detail);
        }
    }
}

#[test]
fn a_rollback_of_a_committed_run_gates_the_previous_release() {
    let (mut r, e) = Run::rollback_of_committed(&gate(5, 60), "asked by root".into());
    assert_eq!(
        (r.kind, r.state),
        (Kind::Rollback, UpdateState::RollingBack)
    );
    assert_eq!(e, vec![Effect::Rollback { applied: true }]);
    assert_eq!(r.on(Event::RolledBack, 0).unwrap(), vec![Effect::WatchGate]);
    r.on(ok(true), S).unwrap();
    assert_eq!(r.on(Event::Tick, 6 * S).unwrap(), vec![Effect::Finish]);
    assert_eq!(r.state, UpdateState::RolledBack);
}

/// A day of gating on a gate that is crit one second in every minute: hours of pretend
/// time, every reading judged, never a pass, one rollback at the timeout.
#[test]
fn hours_of_readings_in_milliseconds() {
    let (mut r, t) = to_gate(120, 6 * 3600);
    let started = std::time::Instant::now();
    let mut rolled = None;
    for i in 1..=(24 * 3600u64) {
        let e = r.on(ok(i % 60 != 0), t + i * S).unwrap_or_default();
        if !e.is_empty() {
            rolled = Some(i);
            break;
        }
    }
    assert_eq!(rolled, Some(6 * 3600));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(Kind::parse("rollback"), Some(Kind::Rollback));
}
