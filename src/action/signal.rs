//! `signal process:NAME SIG`: signal every process whose name (`/proc/PID/comm`) is NAME.
//!
//! vigild's own processes (hooks) it signals itself. Another user's process it may not
//! (no CAP_KILL): that one goes through systemd's `KillUnit`, which polkit allows for the
//! main process of the units it lists, and nothing else.

use std::str::FromStr;

use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::outcome::Outcome;
use super::unit::kill_main;
use crate::core::action::Signal;

/// Pids of processes named `name`.
pub fn find(name: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .collect();
    pids.sort();
    pids
}

/// The kernel's signal for one vigil may send.
fn to_nix(sig: Signal) -> Result<nix::sys::signal::Signal, String> {
    nix::sys::signal::Signal::from_str(sig.as_str())
        .map_err(|_| format!("{sig} is not a signal of this system"))
}

/// Sends `sig` to every process named `name`; `bus` is where systemd is, for processes
/// vigild may not signal itself.
pub async fn send(name: &str, sig: Signal, bus: Option<&str>) -> Outcome {
    let full = sig.as_str();
    let signal = match to_nix(sig) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e),
    };
    let me = std::process::id() as i32;
    let pids: Vec<i32> = find(name).into_iter().filter(|p| *p != me).collect();
    if pids.is_empty() {
        return Outcome::Failed(format!("no process named {name:?} is running"));
    }
    let mut sent = Vec::new();
    let mut errors = Vec::new();
    for pid in pids {
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) => sent.push(pid.to_string()),
            Err(nix::errno::Errno::EPERM) => {
                match kill_main(pid as u32, signal as i32, bus).await {
                    Ok(unit) => sent.push(format!("{pid} (main process of {unit}, via systemd)")),
                    Err(e) => errors.push(format!("{pid}: {e}")),
                }
            }
            Err(e) => errors.push(format!("{pid}: {}", e.desc())),
        }
    }
    if errors.is_empty() {
        Outcome::Done(format!("sent {full} to {name} (pid {})", sent.join(", ")))
    } else {
        Outcome::Failed(format!(
            "sent {full} to pid [{}]; not to {}",
            sent.join(", "),
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_processes_by_name() {
        // A real process with a name of its own.
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("vigil-sigtest");
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = std::process::Command::new(&exe).arg("30").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(find("vigil-sigtest"), vec![child.id() as i32]);
        let out = send("vigil-sigtest", Signal::Term, None).await;
        assert!(
            matches!(out, Outcome::Done(ref s) if s.contains("sent SIGTERM")),
            "{out:?}"
        );
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
        assert!(
            matches!(send("vigil-sigtest", Signal::Term, None).await, Outcome::Failed(ref s) if s.contains("no process"))
        );
    }

    /// The signals a policy may name are exactly the kernel's, as nix knows them.
    #[test]
    fn every_signal_a_policy_may_name_is_one_of_the_kernel() {
        for (sig, name) in Signal::NAMES {
            assert_eq!(to_nix(*sig).unwrap().as_str(), *name);
        }
        for k in nix::sys::signal::Signal::iterator() {
            assert!(Signal::parse(k.as_str()).is_some(), "{k:?} missing");
        }
    }
}
