//! The store: SQLite at `STATE_DIR/vigil.db` in WAL mode, on its own thread.
//!
//! Writes are sent and not awaited, so a slow or broken disk never stalls the evaluation
//! loop or the heartbeat. A database that cannot be opened, is corrupt, or was written by
//! a newer vigild is moved aside (renamed with a timestamp, with its -wal and -shm files)
//! and a fresh one started; if even that fails, the store runs in memory and says so.
//! What a push could not deliver yet waits in a file of its own ([`push_queue`]).

pub mod db;
pub mod handle;
pub mod open;
pub mod push_queue;
pub mod record;
pub mod rows;

pub use db::Db;
pub use handle::{Store, BACKLOG_MAX};
pub use open::{Opened, DB_FILE, SCHEMA_VERSION};
pub use push_queue::{PushQueue, Queued, PUSH_QUEUE_FILE, PUSH_QUEUE_MAX};
pub use record::Record;
pub use rows::{ActionRow, IncidentRow, TransitionRow};

#[cfg(test)]
mod tests;
