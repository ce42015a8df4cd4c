//! Command lines of `vigild` and `vigilctl` (clap definitions, shared so man pages and
//! completions are generated from the same source), and `vigilctl`'s commands.

mod bus;
pub mod ctl;
mod redact;
mod show;
pub mod support;
mod support_collect;
pub mod update;
mod update_live;
mod update_show;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Keeps this appliance healthy: watches it, reports on it, and heals it by policy.
#[derive(Debug, Parser)]
#[command(name = "vigild", version, long_about = None)]
pub struct VigildArgs {
    /// Stay in the foreground (vigild never forks; systemd supervises it).
    #[arg(long)]
    pub foreground: bool,
    /// Settings file [default: /etc/vigil/vigil.toml, optional].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Policy directory; repeatable, later wins by file name. Replaces the defaults
    /// /usr/lib/vigil/policies.d and /etc/vigil/policies.d.
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// State directory [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/vigil, else ./state].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// D-Bus address to serve on instead of the system bus (falling back to the session bus).
    #[arg(long, value_name = "ADDRESS")]
    pub bus: Option<String>,
    /// Heartbeat address; repeatable [default: 127.0.0.1:9480; ignored under socket activation].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Asks vigild how this appliance is; shows incidents, sets maintenance, checks policies.
#[derive(Debug, Parser)]
#[command(name = "vigilctl", version, long_about = None)]
pub struct VigilctlArgs {
    /// D-Bus address of vigild [default: the system bus, then the session bus].
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub bus: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// vigilctl's commands.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Overall status and the checks that are not ok.
    Status,
    /// Every check with its status, since when, and why.
    Checks,
    /// Incidents: open ones, or all with --all.
    Incidents {
        /// Include resolved incidents.
        #[arg(long)]
        all: bool,
    },
    /// One incident with every action taken for it.
    Incident {
        /// The incident's id.
        id: u64,
    },
    /// Maintenance mode: suspend every recovery action for a while; checks go on.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
    },
    /// Policy files: check them, or show the effective set.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Updates: verify a bundle (offline), apply it with the health gate, follow, list or
    /// roll back runs, offer a USB stick.
    Update {
        #[command(subcommand)]
        command: UpdateCommand,
    },
    /// Make signed update bundles (offline).
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// Write a support bundle (tar.gz): status, checks, incidents, update history, policies,
    /// settings, vigild's journal, containers, units and system facts, secrets redacted. Written
    /// even when vigild is down (status.json then says why; exit 0 with a warning).
    SupportBundle(support::SupportBundleArgs),
    /// Versions of vigilctl and of the running vigild.
    Version,
}

/// `vigilctl update …`
#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Verify a bundle: signature, every entry, size and hash, version and hardware fit.
    /// Exit 0 when it may be applied here, 1 with the reason when not. Writes nothing.
    Verify {
        /// The bundle (NAME-VERSION.vigil).
        bundle: PathBuf,
        /// Trusted keys (*.pub) [default: [update] keys_dir, else /etc/vigil/keys].
        #[arg(long, value_name = "DIR")]
        keys: Option<PathBuf>,
        /// The installed version to check against [default: the current release of the
        /// state directory, if any].
        #[arg(long, value_name = "VERSION")]
        installed: Option<semver::Version>,
        /// Accept a bundle that is not newer than the installed version.
        #[arg(long)]
        allow_downgrade: bool,
        /// Settings (keys_dir, [device] model, state directory) [default: /etc/vigil/vigil.toml].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Apply a bundle: vigild verifies, stages, backs up, applies, waits for the health gate,
    /// then commits or rolls back. Shows each state as it passes; exit 0 when committed, 1
    /// when refused, rolled back or failed (with the reason).
    Apply {
        /// The bundle (NAME-VERSION.vigil), where user vigil can read it (vigild sees no
        /// /tmp and no home directories).
        bundle: PathBuf,
    },
    /// The update state: the active or last run with its events, and a bundle a stick offered.
    Status,
    /// The last update runs, newest first.
    History,
    /// Roll back the active run, or else the last committed one, and wait like apply: exit 0
    /// when rolled back, 1 when not.
    Rollback,
    /// Offer a mounted USB stick's newest bundle (*.vigil in it or in vigil/) to vigild, which
    /// applies or only announces it by [update] usb. When it applies, waits until the
    /// bundle is off the stick. vigil-usb@.service runs this for a stick plugged in.
    Usb {
        /// Where the stick is mounted.
        dir: PathBuf,
    },
}

/// `vigilctl bundle …`
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Build a signed bundle: the payload's files listed with size and SHA-256, the
    /// manifest signed (trusted comment `vigil-bundle NAME VERSION`), written atomically.
    Create {
        /// The manifest ([bundle], [[step]], [gate]; [[file]] may be left out).
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// The directory whose files become payload/….
        #[arg(long, value_name = "DIR")]
        payload: PathBuf,
        /// The minisign secret key.
        #[arg(long, value_name = "SECRET_KEY")]
        key: PathBuf,
        /// A file holding the key's password (an encrypted key without it is asked for on the terminal).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Compress the bundle with zstd.
        #[arg(long)]
        zstd: bool,
        /// The bundle to write [default: NAME-VERSION.vigil in the current directory].
        #[arg(short = 'o', long = "out", value_name = "OUT")]
        out: Option<PathBuf>,
    },
}

/// `vigilctl maintenance …`
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Turn it on; it ends by itself.
    On {
        /// How long, e.g. 30m, 2h.
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Why, for the journal and the status.
        #[arg(long)]
        reason: String,
        /// A tunnel unit for remote maintenance, one of `[maintenance] tunnel_units` in
        /// vigil.toml (e.g. wg-quick@wg0.service): started now, stopped when the window
        /// ends or is turned off.
        #[arg(long, value_name = "UNIT")]
        tunnel: Option<String>,
    },
    /// Turn it off now (and stop its tunnel).
    Off,
    /// Whether it is on, until when, why, by whom and with which tunnel.
    Status,
    /// Every maintenance session: who turned it on or off, when, why, and each start and
    /// stop of a tunnel with what systemd answered.
    Log,
}

/// `vigilctl policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files or directories (default: the installed ones); exit 1 on any error.
    Check {
        /// Files or directories.
        paths: Vec<PathBuf>,
        /// Settings to check rules against (clean_allow, hooks) [default: /etc/vigil/vigil.toml].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show the effective, merged checks of policy files or directories (default: installed).
    Show {
        /// Files or directories.
        paths: Vec<PathBuf>,
        /// Settings to check rules against [default: /etc/vigil/vigil.toml].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// vigilctl exit statuses.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// What was checked is bad (a policy, a bundle).
    pub const BAD: i32 = 1;
    /// Usage error (clap's own).
    pub const USAGE: i32 = 2;
    /// vigild cannot be reached.
    pub const UNREACHABLE: i32 = 3;
}
