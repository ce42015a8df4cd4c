//! What happens (the events the surfaces signal) and what the snapshot says of it: actions
//! counted by rule, kind and result (for `/metrics`), the last few actions and the incidents
//! going on (for the status page).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::core::health::Transition;
use crate::core::incident::IncidentState;
use crate::core::time::Micros;

/// Something that happened, for signals and logs (the snapshot says how things are).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Transition(Transition),
    IncidentOpened {
        id: u64,
        rule: String,
        check: String,
    },
    ActionTaken {
        incident: u64,
        action: String,
        result: String,
    },
    IncidentResolved {
        id: u64,
    },
}

/// Most incidents the snapshot lists (`open_incidents` counts them all).
pub const OPEN_INCIDENTS_LISTED: usize = 50;
/// Most actions the snapshot remembers.
pub const RECENT_ACTIONS_KEPT: usize = 10;

/// An incident going on: its id, rule, check, state, and when it opened (if seen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub id: u64,
    pub rule: String,
    pub check: String,
    pub state: IncidentState,
    pub opened: Option<Micros>,
}

/// An action taken (or observed, or skipped), when its event was seen (wall time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentAction {
    pub at: Micros,
    pub incident: u64,
    pub rule: String,
    pub action: String,
    pub result: String,
}

/// Which action: its rule, its kind (`restart`, `notify`, …) and how it ended (`done`,
/// `skipped`, `failed`, `observed`).
pub type ActionKey = (String, String, String);
/// Actions taken, by [`ActionKey`].
pub type ActionCounts = BTreeMap<ActionKey, u64>;

/// Most incidents whose rule the tally remembers (an action's result may come after its
/// incident ended); the oldest are forgotten first.
pub const TALLY_INCIDENTS_KEPT: usize = 4096;

/// Counts actions from the events that say they were taken, and keeps the last few. Events
/// name the incident, so the tally remembers which rule opened each, and when.
#[derive(Debug, Default)]
pub struct ActionTally {
    rules: BTreeMap<u64, (String, Micros)>,
    counts: Arc<ActionCounts>,
    recent: Arc<VecDeque<RecentAction>>,
}

impl ActionTally {
    /// Takes note of one event, seen at `at` (wall time).
    pub fn note(&mut self, event: &Event, at: Micros) {
        match event {
            Event::IncidentOpened { id, rule, .. } => {
                self.rules.insert(*id, (rule.clone(), at));
                while self.rules.len() > TALLY_INCIDENTS_KEPT {
                    self.rules.pop_first();
                }
            }
            Event::ActionTaken {
                incident,
                action,
                result,
            } => {
                let (rule, _) = self.rules.get(incident).cloned().unwrap_or_default();
                let kind = action.split_whitespace().next().unwrap_or("").to_string();
                let how = result.split(':').next().unwrap_or("").trim().to_string();
                *Arc::make_mut(&mut self.counts)
                    .entry((rule.clone(), kind, how))
                    .or_default() += 1;
                let recent = Arc::make_mut(&mut self.recent);
                recent.push_back(RecentAction {
                    at,
                    incident: *incident,
                    rule,
                    action: action.clone(),
                    result: result.clone(),
                });
                while recent.len() > RECENT_ACTIONS_KEPT {
                    recent.pop_front();
                }
            }
            _ => {}
        }
    }

    /// The counts so far (shared until the next action).
    pub fn counts(&self) -> Arc<ActionCounts> {
        self.counts.clone()
    }

    /// The last actions, oldest first (shared until the next action).
    pub fn recent(&self) -> Arc<VecDeque<RecentAction>> {
        self.recent.clone()
    }

    /// When incident `id` opened, if its event was seen.
    pub fn opened_at(&self, id: u64) -> Option<Micros> {
        self.rules.get(&id).map(|r| r.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_actions_by_rule_kind_and_result() {
        let mut t = ActionTally::default();
        let opened = |id: u64, rule: &str| Event::IncidentOpened {
            id,
            rule: rule.into(),
            check: "c".into(),
        };
        let taken = |incident: u64, action: &str, result: &str| Event::ActionTaken {
            incident,
            action: action.into(),
            result: result.into(),
        };
        t.note(&opened(1, "heal-ollama"), 5);
        t.note(&taken(1, "restart ollama.service", "done: restarted"), 6);
        t.note(&taken(1, "restart ollama.service", "done: restarted"), 7);
        t.note(&taken(1, "reboot", "failed: no"), 8);
        for at in 9..30 {
            t.note(&taken(9, "notify", "skipped: none"), at);
        }
        let r = t.recent();
        assert_eq!(
            (r.len(), r[0].at, r[9].at),
            (RECENT_ACTIONS_KEPT, 20, 29),
            "the newest"
        );
        assert_eq!((r[9].rule.as_str(), r[9].incident), ("", 9));
        assert_eq!((t.opened_at(1), t.opened_at(9)), (Some(5), None));
        let c = t.counts();
        let key = |r: &str, a: &str, h: &str| (r.to_string(), a.to_string(), h.to_string());
        assert_eq!(c[&key("heal-ollama", "restart", "done")], 2);
        assert_eq!(c[&key("heal-ollama", "reboot", "failed")], 1);
        assert_eq!(
            c[&key("", "notify", "skipped")],
            21,
            "an incident it never saw"
        );
    }
}
