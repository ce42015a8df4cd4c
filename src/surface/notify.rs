//! sd_notify: READY, STATUS, WATCHDOG, RELOADING, STOPPING. Every call is a no-op when
//! `NOTIFY_SOCKET` is unset (not started by systemd).

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!("sd_notify failed: {e}");
    }
}

/// `READY=1` with the first status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `STATUS=…`
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// `RELOADING=1` (systemd 249 needs no MONOTONIC_USEC).
pub fn reloading() {
    send(&[NotifyState::Reloading, NotifyState::Status("reloading")]);
}

/// `WATCHDOG=1`
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// `STOPPING=1`
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The interval at which to ping the watchdog: half of `WATCHDOG_USEC`, when it is on.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}
