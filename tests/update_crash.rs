//! Power cuts during updates: vigild is killed with SIGKILL at every state of a run — of one
//! that commits and of one that rolls back — and at random points, started again, and left
//! to finish what it found. After each: the box is wholly on the old release or wholly on
//! the new one (the `current` link, the installed files, the stack's image tag, the hooks'
//! database and commit marker), the journal says which, every state it went through is a
//! legal step of the machine, and no run is missing.
//!
//! `VIGIL_UPDATE_KILLS` sets the number of random points (default 120, the short run of the
//! test command; the soak is `VIGIL_UPDATE_KILLS=500`, see docs/updates.md). Real dockerd, real
//! SQLite, a private dbus-daemon; the kills land when vigild's own `UpdateProgress` signal
//! says the run entered the state, or after a random delay.

mod common;
mod docker_support;
mod reliability;
mod update_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use update_support::{UpdateBed, OLD};

/// The machine's legal moves, as the journal records states.
const LEGAL: &[(&str, &str)] = &[
    ("verified", "staged"),
    ("verified", "refused"),
    ("staged", "backed-up"),
    ("staged", "rolling-back"),
    ("backed-up", "applying"),
    ("backed-up", "rolling-back"),
    ("applying", "gating"),
    ("applying", "rolling-back"),
    ("gating", "committed"),
    ("gating", "rolling-back"),
    ("gating", "rolled-back"),
    ("gating", "failed"),
    ("rolling-back", "gating"),
    ("rolling-back", "rolled-back"),
    ("rolling-back", "failed"),
    // A run resumed after a crash starts its rollback again from the beginning.
    ("rolling-back", "rolling-back"),
];

struct Kill {
    /// Kill when the run enters this state (the nth time), or after a delay.
    at: Option<(&'static str, usize)>,
    delay: Duration,
    broken: bool,
}

/// The journal's view of run `id`: its state, and the states its events went through.
fn journal(bed: &UpdateBed, id: &str) -> (String, Vec<String>, Vec<(String, String)>) {
    let db = rusqlite::Connection::open_with_flags(
        bed.state.join("updates.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let state: String = db
        .query_row("SELECT state FROM runs WHERE id = ?1", [id], |r| r.get(0))
        .unwrap();
    let mut q = db
        .prepare("SELECT state, what, detail FROM events WHERE run = ?1 ORDER BY seq")
        .unwrap();
    let rows: Vec<(String, String, String)> = q
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let states = rows
        .iter()
        .filter(|(_, w, _)| w == "state" || w == "begin")
        .map(|(s, _, _)| s.clone())
        .collect();
    let pieces = rows.into_iter().map(|(_, w, d)| (w, d)).collect();
    (state, states, pieces)
}

fn runs_in_journal(bed: &UpdateBed) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        bed.state.join("updates.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_state_and_at_random_points_leaves_the_old_or_the_new_release() {
    let bed = UpdateBed::new("crash", "0.05");
    let (good, new_id) = bed.bundle("2.0.0", false, "stack", "200ms", "10s");
    let (broken, _) = bed.bundle("3.0.0", true, "stack", "200ms", "1s");
    let conn = zbus::connection::Builder::address(bed.bus.address.as_str())
        .build()
        .await
        .unwrap();
    let manager = zbus::Proxy::new(
        &conn,
        "org.vigil.Vigil1",
        "/org/vigil/Vigil1",
        "org.vigil.Vigil1.Manager",
    )
    .await
    .unwrap();

    let mut kills: Vec<Kill> = Vec::new();
    for s in ["verified", "staged", "backed-up", "applying", "gating"] {
        kills.push(Kill {
            at: Some((s, 1)),
            delay: Duration::ZERO,
            broken: false,
        });
    }
    for (s, n) in [
        ("applying", 1),
        ("gating", 1),
        ("rolling-back", 1),
        ("gating", 2),
    ] {
        kills.push(Kill {
            at: Some((s, n)),
            delay: Duration::ZERO,
            broken: true,
        });
    }
    // One run of each, uninterrupted: how long they take here (the random delays spread
    // over that), and that both end as they should.
    let mut took = Vec::new();
    for (bundle, want) in [(&good, "committed"), (&broken, "rolled-back")] {
        bed.reset();
        let v = bed.vigild();
        let t = Instant::now();
        let run: String = manager
            .call("ApplyUpdate", &(bundle.to_str().unwrap(),))
            .await
            .unwrap();
        let doc = bed.wait_final(&v, &run, Duration::from_secs(60));
        assert_eq!(doc["state"], want, "{doc:#}");
        took.push(t.elapsed());
    }
    let random: usize = std::env::var("VIGIL_UPDATE_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(120);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..random {
        let r = next();
        let broken = r % 3 == 0;
        let span = took[usize::from(broken)].as_millis() as u64 + 1;
        kills.push(Kill {
            at: None,
            delay: Duration::from_millis((r >> 8) % span),
            broken,
        });
    }

    // A kill that breaks the box fails the test at once: its row says FAIL and where.
    let mut row = FailRow {
        kills: kills.len(),
        done: 0,
    };
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut killed_in: BTreeMap<String, usize> = BTreeMap::new();
    let mut recoveries = Vec::new();
    for (i, k) in kills.iter().enumerate() {
        bed.reset();
        let mut v = bed.vigild();
        let mut progress = manager.receive_signal("UpdateProgress").await.unwrap();
        let bundle = if k.broken { &broken } else { &good };
        let run: String = match manager
            .call("ApplyUpdate", &(bundle.to_str().unwrap(),))
            .await
        {
            Ok(r) => r,
            Err(e) => panic!("kill {i}: ApplyUpdate: {e}\n{}", v.log()),
        };
        match k.at {
            Some((state, nth)) => {
                let mut seen = 0;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                loop {
                    let m = tokio::time::timeout_at(deadline, progress.next())
                        .await
                        .unwrap_or_else(|_| panic!("kill {i}: never saw {state} #{nth}"))
                        .unwrap();
                    let (r, s, _f): (String, String, f64) = m.body().deserialize().unwrap();
                    if r == run && s == state {
                        seen += 1;
                        if seen == nth {
                            break;
                        }
                    }
                    // The fraction moves within a state: count entries, not reports.
                    if r == run && s != state && seen > 0 && seen < nth {
                        continue;
                    }
                }
            }
            None => tokio::time::sleep(k.delay).await,
        }
        // A power cut, or systemd killing vigild's control group: vigild and every
        // process it started (a hook half way) die together.
        let mut doomed = vec![v.pid()];
        let mut i_d = 0;
        while i_d < doomed.len() {
            doomed.extend(children(doomed[i_d]));
            i_d += 1;
        }
        for pid in doomed {
            common::kill(pid, common::SIGKILL);
        }
        let _ = v.child.wait();
        let (state_at_kill, _, _) = journal(&bed, &run);
        *killed_in.entry(state_at_kill.clone()).or_default() += 1;
        drop(progress);

        let t = Instant::now();
        let v2 = bed.vigild();
        let doc = bed.wait_final(&v2, &run, Duration::from_secs(60));
        if !["committed", "rolled-back", "refused"].contains(&state_at_kill.as_str()) {
            recoveries.push(t.elapsed());
        }
        let end = doc["state"].as_str().unwrap().to_string();
        *outcomes.entry(end.clone()).or_default() += 1;
        let what = format!(
            "kill {i} ({:?}, broken {}) in {state_at_kill} → {end}",
            k.at, k.broken
        );

        // Wholly new, or wholly old.
        if end == "committed" {
            assert!(!k.broken, "{what}: a broken release was committed");
            assert_eq!(bed.current(), "2.0.0", "{what}");
            assert_eq!(
                bed.release_file("2.0.0").as_deref(),
                Some("version 2.0.0\n"),
                "{what}"
            );
            assert_eq!(bed.tag_id(), new_id, "{what}");
            assert_eq!(bed.db(), "schema 2.0.0\n", "{what}");
            assert_eq!(
                std::fs::read_to_string(bed.shared.join("committed"))
                    .ok()
                    .as_deref(),
                Some("2.0.0\n"),
                "{what}"
            );
        } else {
            assert!(
                ["rolled-back", "refused"].contains(&end.as_str()),
                "{what}: {doc:#}\n{}",
                v2.log()
            );
            assert_eq!(bed.current(), OLD, "{what}");
            assert!(
                bed.release_file("2.0.0").is_none() && bed.release_file("3.0.0").is_none(),
                "{what}"
            );
            assert_eq!(
                bed.release_file(OLD).as_deref(),
                Some("version 1.0.0\n"),
                "{what}"
            );
            assert_eq!(bed.tag_id(), bed.old_id, "{what}");
            assert_eq!(bed.db(), "schema 1.0.0\n", "{what}");
            assert!(!bed.shared.join("committed").exists(), "{what}");
        }
        assert!(
            bed.staging_left().is_empty(),
            "{what}: staging left {:?}",
            bed.staging_left()
        );
        // The journal: ended in what the document says, by legal steps only.
        let (state, states, pieces) = journal(&bed, &run);
        assert_eq!(state, end, "{what}");
        assert_eq!(
            states.first().map(String::as_str),
            Some("verified"),
            "{what}: {states:?}"
        );
        for w in states.windows(2) {
            assert!(
                w[0] == w[1] || LEGAL.contains(&(w[0].as_str(), w[1].as_str())),
                "{what}: illegal step {} → {} in {states:?}",
                w[0],
                w[1]
            );
        }
        // Every piece begun was ended, except at most the ones the kill cut short.
        let mut open: Vec<&str> = Vec::new();
        for (w, d) in &pieces {
            if d == "begun" {
                open.push(w);
            } else if d.starts_with("done") || d.starts_with("failed") {
                if let Some(p) = open.iter().rposition(|o| o == w) {
                    open.remove(p);
                }
            }
        }
        assert!(
            open.len() <= 1,
            "{what}: pieces begun and never ended: {open:?}"
        );
        drop(v2);
        row.done = i + 1;
    }
    assert_eq!(runs_in_journal(&bed), kills.len() as i64 + 2, "no run lost");
    for s in [
        "verified",
        "staged",
        "backed-up",
        "applying",
        "gating",
        "rolling-back",
    ] {
        assert!(
            killed_in.contains_key(s),
            "no kill landed in {s}: {killed_in:?}"
        );
    }
    recoveries.sort();
    let median = recoveries
        .get(recoveries.len() / 2)
        .copied()
        .unwrap_or_default();
    std::mem::forget(row);
    reliability::record(
        "update_crash",
        &format!(
            "SIGKILL of vigild and its hooks at every state of a committing and a rolling-back \
             run, and at {random} random points of apply or rollback; restarted each time"
        ),
        &format!(
            "{} kills in {:.0?}, killed in {killed_in:?}; ended {outcomes:?}; 0 torn releases, \
             0 runs lost ({} in the journal), 0 illegal steps; restart → run ended median \
             {median:.2?}",
            kills.len(),
            started.elapsed(),
            runs_in_journal(&bed)
        ),
        true,
    );
    println!(
        "uninterrupted: commit {:.2?}, rollback {:.2?}",
        took[0], took[1]
    );
    println!(
        "{} kills in {:.0?}; killed in {killed_in:?}; ended {outcomes:?}; restart → run ended: median {median:.2?}, max {:.2?}",
        kills.len(),
        started.elapsed(),
        recoveries.last().copied().unwrap_or_default()
    );
}

/// Writes the FAIL row when a kill broke the box (the test panics past it).
struct FailRow {
    kills: usize,
    done: usize,
}

impl Drop for FailRow {
    fn drop(&mut self) {
        reliability::record(
            "update_crash",
            "SIGKILL of vigild and its hooks during apply and rollback",
            &format!(
                "kill {} of {} left the box torn or a record missing (see the test's output)",
                self.done + 1,
                self.kills
            ),
            false,
        );
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}
