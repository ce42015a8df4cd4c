//! `exec`: a command's exit status.
//!
//! The command is an argv (no shell, no PATH lookup: `command[0]` is an absolute path). Under
//! systemd it runs in a `vigil-run@….service` unit of its own (a dynamic user, no groups, no
//! access to vigil's state or Docker; see [`crate::sys::sandbox`]), else as a child of
//! vigild. It runs with stdin from /dev/null, in `/`, with an environment of only
//! `PATH=/usr/sbin:/usr/bin:/sbin:/bin` and `LANG=C.UTF-8`, in a process group of its own.
//! When vigild runs as root, the command runs as `nobody` (uid and gid 65534, no
//! supplementary groups). Exit 0 is `ok`; any other exit, a signal, a timeout or a command
//! that cannot be started is `crit`. The last bytes of its output (stdout and stderr
//! together) go into the detail. On timeout the whole process group is killed (SIGKILL);
//! anything the command leaves running in its group when it exits is killed as well.

use std::time::Duration;

use async_trait::async_trait;

use super::api::Probe;
use crate::core::health::Status;
use crate::core::metric::{Metrics, Reading};
use crate::sys::command::{with_output, Ran};
use crate::sys::http::{budget, human};
use crate::sys::sandbox;

/// Runs one command.
pub struct ExecProbe {
    command: Vec<String>,
    timeout: Duration,
}

impl ExecProbe {
    /// A probe running `command` (argv) within `timeout`.
    pub fn new(command: Vec<String>, timeout: Duration) -> Self {
        ExecProbe { command, timeout }
    }
}

fn crit(detail: String, metrics: Metrics) -> Reading {
    Reading::Value {
        status: Some(Status::Crit),
        detail,
        metrics,
    }
}

#[async_trait]
impl Probe for ExecProbe {
    async fn read(&mut self) -> Reading {
        let Some(prog) = self.command.first() else {
            return Reading::Unknown("exec check without a command".into());
        };
        let (ran, _) = sandbox::run("exec", prog, &self.command, &[], budget(self.timeout)).await;
        match ran {
            Ran::CannotStart(why) => crit(why, Metrics::new()),
            Ran::CannotWait(why) => Reading::Unknown(why),
            Ran::TimedOut {
                output,
                duration_ms,
            } => crit(
                with_output(
                    format!("{prog} timed out after {} (killed)", human(self.timeout)),
                    &output,
                ),
                Metrics::from([("duration_ms".to_string(), duration_ms)]),
            ),
            Ran::Ended {
                success,
                code,
                what,
                output,
                duration_ms,
            } => {
                let metrics = Metrics::from([
                    ("exit_code".to_string(), code as f64),
                    ("duration_ms".to_string(), duration_ms),
                ]);
                if success {
                    Reading::metrics(
                        with_output(format!("{prog} exited 0 in {duration_ms:.0} ms"), &output),
                        metrics,
                    )
                } else {
                    crit(with_output(format!("{prog} {what}"), &output), metrics)
                }
            }
        }
    }
}
