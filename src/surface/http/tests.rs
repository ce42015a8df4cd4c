//! The heartbeat's answers and the shedding policy, without sockets.

use super::*;

#[test]
fn heartbeat_has_exactly_the_contract_shape() {
    let mut s = Snapshot::starting(1_000_000);
    s.status = Overall::Ok;
    // The uptime comes from the monotonic clock, the timestamp from the wall clock.
    s.started_mono = 5_000_000;
    let now = Now {
        wall: 1_771_322_400_000_000,
        mono: 1_771_322_404_000_000,
    };
    let body = heartbeat_body(&s, now);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 4);
    assert!(
        body.starts_with("{\"status\":\"ok\",\"uptime\":1771322399,\"version\":\""),
        "{body}"
    );
    assert!(
        body.ends_with(",\"timestamp\":\"2026-02-17T10:00:00.000Z\"}"),
        "{body}"
    );
}

#[test]
fn routes_and_methods() {
    let mut s = Snapshot::starting(0);
    s.status = Overall::Degraded;
    assert_eq!(
        handle(&Method::GET, "/healthz", &s, Now::default()).status(),
        StatusCode::OK
    );
    s.status = Overall::Critical;
    assert_eq!(
        handle(&Method::GET, "/healthz", &s, Now::default()).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        handle(&Method::GET, "/", &s, Now::default()).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        handle(&Method::POST, "/nope", &s, Now::default()).status(),
        StatusCode::NOT_FOUND
    );
    let r = handle(&Method::POST, "/api/system/heartbeat", &s, Now::default());
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()[ALLOW], "GET, HEAD");
    assert_eq!(
        handle(&Method::HEAD, "/api/system/heartbeat", &s, Now::default()).status(),
        StatusCode::OK
    );
}

/// Open connections as (age in ms, silent), oldest first.
fn peers(spec: &[(u64, bool)]) -> Vec<Peer> {
    (spec.iter().enumerate())
        .map(|(i, &(age, silent))| Peer {
            id: i as u64,
            age: Duration::from_millis(age),
            silent,
        })
        .collect()
}

fn shed(open: &[Peer], cap: usize) -> Vec<u64> {
    to_shed(open.len(), open.iter().copied(), cap)
}

#[test]
fn below_the_crowd_mark_nothing_is_shed() {
    // 2 of a cap of 4 open: not crowded, so even an old silent one stays.
    assert!(!crowded(2, 4));
    assert!(shed(&peers(&[(9_000, true), (0, true)]), 4).is_empty());
}

#[test]
fn over_the_cap_the_oldest_silent_ones_go_first() {
    // Cap 4, a newcomer makes 5: the oldest silent one goes, not the one that spoke.
    let open = peers(&[
        (900, false),
        (800, true),
        (700, true),
        (600, false),
        (0, true),
    ]);
    assert_eq!(shed(&open, 4), vec![1]);
    // Two over: the two oldest silent ones.
    let open = peers(&[
        (900, true),
        (800, false),
        (700, true),
        (600, true),
        (5, true),
        (0, true),
    ]);
    assert_eq!(shed(&open, 4), vec![0, 2]);
}

#[test]
fn only_silent_connections_are_shed() {
    // Only the youngest is silent: it is the one that goes.
    let open = peers(&[(9_000, false), (9_000, false), (9_000, false), (5, true)]);
    assert_eq!(shed(&open, 3), vec![3]);
    // Nobody silent (spoke, or not read from yet): nothing to shed, even over the cap.
    let open = peers(&[(9_000, false), (9_000, false), (9_000, false)]);
    assert!(shed(&open, 2).is_empty());
}

#[test]
fn crowded_listeners_give_silent_connections_a_short_first_byte_deadline() {
    let deadline = CROWDED_FIRST_BYTE_SECS * 1000;
    // 3 of 4 open is crowded: every silent one past the deadline goes, the young stay.
    assert!(crowded(3, 4));
    let open = peers(&[(deadline + 1, true), (deadline, true), (deadline - 1, true)]);
    assert_eq!(shed(&open, 4), vec![0, 1]);
    // Past the deadline but it spoke: it stays.
    let open = peers(&[(deadline * 5, false), (deadline, true), (0, true)]);
    assert_eq!(shed(&open, 4), vec![1]);
}

#[test]
fn the_walk_stops_at_the_first_silent_connection_it_keeps() {
    // 5 open, cap 4: one goes; the walk reads no further than the one after it.
    let open = peers(&[(900, true), (800, true), (700, true), (600, true)]);
    let mut read = 0;
    let ids = to_shed(5, open.iter().inspect(|_| read += 1).copied(), 4);
    assert_eq!((ids, read), (vec![0], 2));
}

#[tokio::test]
async fn the_tracker_sheds_silent_connections_and_keeps_busy_ones() {
    let t = Tracker::new(2);
    let a = t.admit();
    let b = t.admit();
    // Not read from yet: maybe a request waits, so no room.
    assert!(!t.has_room());
    assert!(a.conn.waited() && !a.conn.waited());
    assert!(b.conn.spoke());
    assert!(t.has_room());
    // Full: a third takes the silent a's place, b has spoken and stays.
    let c = t.admit();
    assert!(a.conn.shed.is_cancelled() && !a.conn.spoke());
    assert!(!b.conn.shed.is_cancelled() && !c.conn.shed.is_cancelled());
    drop(a);
    assert!(c.conn.waited());
    assert!(c.conn.spoke());
    // Both open ones have spoken: no room until one closes.
    assert!(!t.has_room());
    drop(b);
    assert!(t.has_room());
    t.room().await;
}
