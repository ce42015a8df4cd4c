//! Logging: structured journald entries when running under systemd's journal, readable
//! stderr otherwise. Events carry `VIGIL_EVENT`, `VIGIL_CHECK`, … fields; tracing fields
//! named `vigil_event`, `vigil_check` become exactly those journald fields.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Journal,
    Stderr,
}

/// Whether stderr is the journal (systemd sets `JOURNAL_STREAM` to its device:inode).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let v = v.to_string_lossy().into_owned();
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(meta.dev()) && ino.parse::<u64>().ok() == Some(meta.ino())
}

/// Sets up the global subscriber. `verbosity` counts `-v` flags; `RUST_LOG` overrides.
pub fn init(verbosity: u8) -> Sink {
    let default = match verbosity {
        0 => "info,zbus=warn",
        1 => "debug,zbus=info,hyper=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    if stderr_is_journal() {
        if let Ok(layer) = tracing_journald::layer() {
            let layer = layer
                .with_field_prefix(None)
                .with_syslog_identifier("vigild".into());
            tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .init();
            return Sink::Journal;
        }
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a person at a terminal, never into a file or pipe.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .init();
    Sink::Stderr
}
