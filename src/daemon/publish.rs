//! Publishing: the snapshot every surface reads, the D-Bus events, and systemd's `STATUS=`.

use std::sync::Arc;

use super::state::Daemon;
use crate::core::health::Transition;
use crate::core::incident::IncidentState;
use crate::core::status::{Event, IncidentCounts, Snapshot};
use crate::core::time::Now;
use crate::surface::notify;

impl Daemon {
    /// Something changed (a reading, a command, time passing): the rules run over the new
    /// state, and the outcome goes to every surface.
    pub(super) fn changed(&mut self, transitions: Vec<Transition>, now: Now) {
        let mut events: Vec<Event> = transitions.into_iter().map(Event::Transition).collect();
        // While an update run is active, rules hold off its targets.
        let hold = self.io.update.hold.borrow().clone();
        self.rules.engine.set_update_hold(hold);
        events.extend(self.evaluate_rules(now));
        self.publish(events);
    }

    /// Sends the current state and `events` to every surface. Nothing goes out when
    /// nothing changed. Publishing is coalesced: the watch channel keeps only the newest
    /// snapshot, and the D-Bus publisher takes it with every event since its last turn.
    pub(super) fn publish(&mut self, events: Vec<Event>) {
        self.checks.unpublished = false;
        let prev = self.io.snap_tx.borrow().clone();
        let m = self.rules.maintenance.as_ref();
        let c = &self.checks;
        let open = self.rules.engine.open_incidents();
        let mut incidents = IncidentCounts::default();
        for (.., state) in &open {
            match state {
                IncidentState::Open => incidents.open += 1,
                IncidentState::Acting => incidents.acting += 1,
                IncidentState::Exhausted => incidents.exhausted += 1,
                _ => {}
            }
        }
        let (open_list, recent_actions) = self.io.outbox.recent(&open);
        // One read of the update document, let go before anything else: a second
        // `borrow()` while the first is held waits behind the runner's `send_replace`,
        // which waits for the first — the loop, the runner and every D-Bus reader hang.
        let (update_state, update_offered) = {
            let doc = self.io.update.doc.borrow();
            let offered = doc
                .offered
                .as_ref()
                .map(|o| format!("{} {} at {}", o.name, o.version, o.bundle));
            (doc.state, offered)
        };
        let snap = Snapshot {
            started_at: self.started_at,
            started_mono: self.started_mono,
            status: c.model.overall(),
            checks: c.model.shared(),
            counts: c.model.counts(),
            maintenance: m.is_some(),
            maintenance_until: m.map(|m| m.until),
            maintenance_reason: m.map(|m| m.reason.clone()),
            maintenance_tunnel: m.and_then(|m| m.tunnel.clone()),
            maintenance_by: m.and_then(|m| m.by.clone()),
            update_state,
            update_offered,
            open_incidents: open.len() as u32,
            builtin_policies: c.builtin,
            store: self.io.store.health(),
            incidents,
            actions: self.io.outbox.actions(),
            push: self.io.push.borrow().clone(),
            open_list,
            recent_actions,
        };
        let line = snap.summary_line();
        if line != self.status_line {
            notify::status(&line);
            self.status_line = line;
        }
        if events.is_empty() && prev.same_as(&snap) {
            return;
        }
        self.io.snap_tx.send_replace(Arc::new(snap));
        self.io.outbox.push(events);
    }
}
