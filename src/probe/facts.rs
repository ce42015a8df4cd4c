//! Facts about this host that the built-in checks depend on. Gathering them scans sysfs,
//! opens NVML and makes a short TCP connect: blocking work the daemon runs off its loop.

use std::path::Path;
use std::time::Duration;

use crate::core::check::HostRoots;
use crate::policy::HostFacts;
use crate::probe::gpu::{jetson, nvml};
use crate::probe::thermal;

/// Ollama's standard address, tried for the built-in `ollama` check.
const OLLAMA_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 11434);
/// How long the Ollama port may take to accept.
const OLLAMA_CONNECT: Duration = Duration::from_millis(200);

/// Looks at the host under `roots`, with Docker's socket at `docker_socket`. Blocks.
pub fn gather(roots: &HostRoots, docker_socket: &Path) -> HostFacts {
    let ollama = std::net::SocketAddr::from(OLLAMA_ADDR);
    HostFacts {
        thermal_sensors: thermal::scan(&roots.sys)
            .iter()
            .any(|s| s.celsius.is_some()),
        gpu: jetson::JetsonBackend::discover(roots).is_ok() || nvml::open_live(0).is_ok(),
        docker_socket: docker_socket.exists(),
        ollama: std::net::TcpStream::connect_timeout(&ollama, OLLAMA_CONNECT).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::check::ProbeParams;
    use crate::policy::{builtin, load_dirs, LoadContext};

    const NO_SOCKET: &str = "/nonexistent/docker.sock";

    #[test]
    fn no_files_means_builtin_defaults_for_this_host() {
        let empty = tempfile::tempdir().unwrap();
        let sys = tempfile::tempdir().unwrap();
        let roots = HostRoots {
            proc: "/proc".into(),
            sys: sys.path().to_path_buf(),
        };
        let load = || {
            load_dirs(
                &[empty.path().to_path_buf()],
                &LoadContext::default(),
                || gather(&roots, Path::new(NO_SOCKET)),
            )
            .unwrap()
        };
        let set = load();
        assert!(set.builtin);
        let names: Vec<_> = set.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(&names[..2], ["root-disk", "memory"]);
        assert!(
            !names.contains(&"thermal"),
            "no sensors in this sysfs: no thermal check"
        );
        assert!(
            !names.contains(&"gpu"),
            "no ga10b in this sysfs and no NVIDIA driver here"
        );

        let before = set.checks.len();
        let zone = sys.path().join("class/thermal/thermal_zone0");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("type"), "cpu-thermal").unwrap();
        std::fs::write(zone.join("temp"), "40000").unwrap();
        let set = load();
        assert_eq!(set.checks.len(), before + 1);
        assert!(set.checks.iter().any(|x| x.name == "thermal"));
    }

    #[test]
    fn docker_containers_are_watched_when_the_socket_is_there() {
        let sys = tempfile::tempdir().unwrap();
        let roots = HostRoots {
            proc: "/proc".into(),
            sys: sys.path().to_path_buf(),
        };
        let none = builtin(&gather(&roots, Path::new(NO_SOCKET)));
        assert!(!none.checks.iter().any(|c| c.name == "docker"));
        let sock = sys.path().join("docker.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let with = builtin(&gather(&roots, &sock));
        let docker = with
            .checks
            .iter()
            .find(|c| c.name == "docker")
            .expect("a docker check");
        assert_eq!(
            docker.params,
            ProbeParams::Containers {
                patterns: vec!["*".into()]
            }
        );
    }
}
