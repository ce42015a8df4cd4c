//! Policies: the `[[check]]` and `[[rule]]` tables of TOML files, validated with every
//! error located at FILE:LINE:COLUMN.
//!
//! [`parse`] is pure: texts in, a [`PolicySet`] or every error out. [`load_dirs`] and
//! [`load_files`] are the small loader around it that reads directories and files; with no
//! file at all, [`builtin`] picks checks from [`HostFacts`].

pub mod builtin;
pub mod check;
pub mod diag;
mod fields;
pub mod load;
pub mod parse;
pub mod rules;
pub mod set;

pub use builtin::{builtin, HostFacts, DOCKER_SOCKET};
pub use check::OLLAMA_URL_DEFAULT;
pub use diag::{Diagnostic, Diagnostics};
pub use load::{load_dirs, load_files, policy_files, read_policy_file, ADMIN_DIR, VENDOR_DIR};
pub use parse::parse;
pub use rules::LoadContext;
pub use set::PolicySet;

#[cfg(test)]
mod tests;
