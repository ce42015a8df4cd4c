//! Probes: thin adapters that read one source and return a [`Reading`].
//!
//! A probe never decides health on thresholds; it reports named metrics (and, for probes
//! that know better, such as a failed unit, a status of their own). The health model and the
//! policy's thresholds turn readings into statuses. A probe whose source is missing or
//! broken returns [`Reading::Unknown`] with the reason; it never panics or blocks the runtime.

pub mod api;
pub mod build;
pub mod container;
pub mod disk;
pub mod exec;
pub mod facts;
pub mod gpu;
pub mod http;
pub mod memory;
pub mod ollama;
pub mod smart;
pub mod systemd;
pub mod tcp;
pub mod thermal;

pub use crate::core::check::HostRoots;
pub use crate::core::metric::{MetricSpec, Metrics, Reading, Unit};
pub use crate::core::probe_kind::ProbeKind;
pub use api::{Connections, Context, Probe};
pub use build::build;
