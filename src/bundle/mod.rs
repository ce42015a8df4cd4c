//! Update bundles on disk: the manifest file, the trusted keys and signatures, the
//! streaming verifier, and `bundle create`. The manifest model and the rules a bundle
//! keeps are the core's (`core::bundle`).

pub mod create;
pub mod keys;
pub mod manifest;
pub mod verify;

pub use create::{create, Create, Created};
pub use keys::{load_keys, TrustedKey, KEYS_DIR_DEFAULT};
pub use verify::{verify, verify_file, Check, Discard, Sink, Verified};
