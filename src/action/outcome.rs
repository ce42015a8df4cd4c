//! What an action did: the one result every actuator returns, recorded and signalled.

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it says, and how it went (`restarted`, `deleted 3 files, 12 MiB`).
    Done(String),
    /// It was not carried out, and why (nothing to do, not available in this build).
    Skipped(String),
    /// It was tried and failed, and why.
    Failed(String),
}

impl Outcome {
    /// One line for the store, the journal and D-Bus: `done: …`, `skipped: …`, `failed: …`.
    pub fn to_line(&self) -> String {
        match self {
            Outcome::Done(s) => format!("done: {s}"),
            Outcome::Skipped(s) => format!("skipped: {s}"),
            Outcome::Failed(s) => format!("failed: {s}"),
        }
    }
}
