//! The metrics each probe kind reports: names, units and help texts. Thresholds may name
//! only these, and docs/metrics.md lists them (a test keeps the two in step).

use crate::core::metric::{MetricSpec, Unit};

// `probe = "disk"`
/// Metrics of the `disk` probe.
pub const DISK: &[MetricSpec] = &[
    MetricSpec { name: "used", unit: Unit::Percent, help: "space used, as df computes Use%: used / (used + available to unprivileged users)", optional: false },
    MetricSpec { name: "used_bytes", unit: Unit::Bytes, help: "bytes used", optional: false },
    MetricSpec { name: "avail_bytes", unit: Unit::Bytes, help: "bytes available to unprivileged users", optional: false },
    MetricSpec { name: "size_bytes", unit: Unit::Bytes, help: "size of the file system", optional: false },
    MetricSpec { name: "inodes_used", unit: Unit::Percent, help: "inodes used (0 on file systems without an inode limit)", optional: false },
    MetricSpec { name: "fill_rate", unit: Unit::BytesPerSecond, help: "growth of used bytes over the last 15 minutes of readings (negative when shrinking; 0 until 5 minutes of readings exist)", optional: false },
    MetricSpec { name: "hours_to_full", unit: Unit::Hours, help: "available bytes divided by fill_rate; infinite (never matches `<`) when not growing", optional: false },
];

// `probe = "memory"`
/// Metrics of the `memory` probe.
pub const MEMORY: &[MetricSpec] = &[
    MetricSpec {
        name: "available",
        unit: Unit::Percent,
        help: "MemAvailable as a share of MemTotal",
        optional: false,
    },
    MetricSpec {
        name: "used",
        unit: Unit::Percent,
        help: "100 - available",
        optional: false,
    },
    MetricSpec {
        name: "available_bytes",
        unit: Unit::Bytes,
        help: "MemAvailable",
        optional: false,
    },
    MetricSpec {
        name: "total_bytes",
        unit: Unit::Bytes,
        help: "MemTotal",
        optional: false,
    },
    MetricSpec {
        name: "swap_used",
        unit: Unit::Percent,
        help: "swap used (0 without swap)",
        optional: false,
    },
    MetricSpec {
        name: "psi_memory_some_avg10",
        unit: Unit::Percent,
        help: "share of the last 10 s in which some task stalled on memory (/proc/pressure/memory)",
        optional: true,
    },
    MetricSpec {
        name: "psi_memory_full_avg10",
        unit: Unit::Percent,
        help: "share of the last 10 s in which all tasks stalled on memory",
        optional: true,
    },
    MetricSpec {
        name: "psi_memory_some_avg60",
        unit: Unit::Percent,
        help: "as psi_memory_some_avg10, over 60 s",
        optional: true,
    },
    MetricSpec {
        name: "psi_cpu_some_avg10",
        unit: Unit::Percent,
        help: "share of the last 10 s in which some task waited for a CPU",
        optional: true,
    },
    MetricSpec {
        name: "psi_io_some_avg10",
        unit: Unit::Percent,
        help: "share of the last 10 s in which some task stalled on I/O",
        optional: true,
    },
    MetricSpec {
        name: "psi_io_full_avg10",
        unit: Unit::Percent,
        help: "share of the last 10 s in which all tasks stalled on I/O",
        optional: true,
    },
    MetricSpec {
        name: "oom_kills",
        unit: Unit::Count,
        help: "oom_kill from /proc/vmstat: OOM kills since boot",
        optional: true,
    },
    MetricSpec {
        name: "oom_kills_new",
        unit: Unit::Count,
        help: "OOM kills since the previous reading (0 on the first)",
        optional: true,
    },
    MetricSpec {
        name: "load1",
        unit: Unit::Number,
        help: "1-minute load average",
        optional: true,
    },
    MetricSpec {
        name: "load5",
        unit: Unit::Number,
        help: "5-minute load average",
        optional: true,
    },
    MetricSpec {
        name: "load15",
        unit: Unit::Number,
        help: "15-minute load average",
        optional: true,
    },
];

// `probe = "thermal"`
/// Metrics of the `thermal` probe.
pub const THERMAL: &[MetricSpec] = &[
    MetricSpec {
        name: "temperature",
        unit: Unit::Celsius,
        help: "the hottest matched sensor",
        optional: false,
    },
    MetricSpec {
        name: "sensors",
        unit: Unit::Count,
        help: "number of matched sensors that gave a reading",
        optional: false,
    },
];

// `probe = "smart"`
/// Metrics of the `smart` probe. NVMe-only and ATA-only ones are optional: a threshold on
/// one is skipped on the other kind of disk.
pub const SMART: &[MetricSpec] = &[
    MetricSpec { name: "passed", unit: Unit::Number, help: "1 when the disk's overall SMART health self-assessment passed, 0 when it failed", optional: false },
    MetricSpec { name: "exit_status", unit: Unit::Number, help: "smartctl's exit status, a bitmask (see smartctl(8)); non-zero for a disk with problems too", optional: false },
    MetricSpec { name: "temperature", unit: Unit::Celsius, help: "the disk's temperature (absent where it reports none)", optional: true },
    MetricSpec { name: "power_on_hours", unit: Unit::Hours, help: "hours the disk has been powered on", optional: true },
    MetricSpec { name: "critical_warning", unit: Unit::Number, help: "NVMe: the critical-warning bitmask of the health log (0 when none is set)", optional: true },
    MetricSpec { name: "percentage_used", unit: Unit::Percent, help: "NVMe: the share of the rated endurance used, as the disk estimates it (may pass 100)", optional: true },
    MetricSpec { name: "available_spare", unit: Unit::Percent, help: "NVMe: spare capacity left", optional: true },
    MetricSpec { name: "available_spare_threshold", unit: Unit::Percent, help: "NVMe: the spare below which the disk itself warns", optional: true },
    MetricSpec { name: "media_errors", unit: Unit::Count, help: "NVMe: unrecovered data-integrity errors over the disk's life", optional: true },
    MetricSpec { name: "media_errors_new", unit: Unit::Count, help: "NVMe: media errors since the previous reading (0 on the first)", optional: true },
    MetricSpec { name: "reallocated_sectors", unit: Unit::Count, help: "ATA: attribute 5 (Reallocated_Sector_Ct), raw", optional: true },
    MetricSpec { name: "pending_sectors", unit: Unit::Count, help: "ATA: attribute 197 (Current_Pending_Sector), raw", optional: true },
    MetricSpec { name: "offline_uncorrectable", unit: Unit::Count, help: "ATA: attribute 198 (Offline_Uncorrectable), raw", optional: true },
];

// `probe = "systemd"`
/// Metrics of the `systemd` probe.
pub const SYSTEMD: &[MetricSpec] = &[
    MetricSpec {
        name: "active",
        unit: Unit::Number,
        help: "1 while ActiveState is active or reloading, else 0",
        optional: false,
    },
    MetricSpec {
        name: "n_restarts",
        unit: Unit::Count,
        help: "NRestarts: automatic restarts of the unit since it was last started by hand (services only)",
        optional: true,
    },
    MetricSpec {
        name: "exec_main_status",
        unit: Unit::Number,
        help: "ExecMainStatus: exit status (or signal number, when killed) of the main process's last run (services only)",
        optional: true,
    },
    MetricSpec {
        name: "memory_bytes",
        unit: Unit::Bytes,
        help: "MemoryCurrent: memory of the unit's cgroup (units with a cgroup and memory accounting)",
        optional: true,
    },
    MetricSpec {
        name: "tasks",
        unit: Unit::Count,
        help: "TasksCurrent: tasks (threads) in the unit's cgroup (units with a cgroup and tasks accounting)",
        optional: true,
    },
];

// `probe = "container"`
/// Metrics of the `container` and `containers` probes.
pub const CONTAINER: &[MetricSpec] = &[
    MetricSpec {
        name: "restart_count",
        unit: Unit::Count,
        help: "RestartCount: restarts by Docker's restart policy",
        optional: false,
    },
    MetricSpec {
        name: "exit_code",
        unit: Unit::Number,
        help: "ExitCode of the last run (0 while running)",
        optional: false,
    },
    MetricSpec {
        name: "oom_killed",
        unit: Unit::Number,
        help: "1 when the kernel OOM-killed the container's last run, else 0",
        optional: false,
    },
    MetricSpec {
        name: "running",
        unit: Unit::Number,
        help: "1 while the container runs (paused included), else 0",
        optional: false,
    },
    MetricSpec {
        name: "health_failing_streak",
        unit: Unit::Count,
        help: "consecutive failed health checks (only for containers with a HEALTHCHECK)",
        optional: true,
    },
];

// `probe = "ollama"`
/// Metrics of the `ollama` probe.
pub const OLLAMA: &[MetricSpec] = &[
    MetricSpec {
        name: "models_loaded",
        unit: Unit::Count,
        help: "models loaded (/api/ps)",
        optional: false,
    },
    MetricSpec {
        name: "vram_bytes",
        unit: Unit::Bytes,
        help: "sum of size_vram of the loaded models",
        optional: false,
    },
    MetricSpec {
        name: "version_ms",
        unit: Unit::Milliseconds,
        help: "time to answer /api/version",
        optional: false,
    },
    MetricSpec {
        name: "generate_ms",
        unit: Unit::Milliseconds,
        help: "time of the one-token /api/generate (only with probe_model)",
        optional: true,
    },
];

// `probe = "gpu"`
/// Metrics of the `gpu` probe.
pub const GPU: &[MetricSpec] = &[
    MetricSpec {
        name: "memory_used",
        unit: Unit::Percent,
        help: "GPU memory used, as a share of the total (Jetson: NvMapMemUsed of MemTotal, memory shared with the CPU)",
        optional: false,
    },
    MetricSpec {
        name: "memory_used_bytes",
        unit: Unit::Bytes,
        help: "GPU memory used (NVML: memory info `used`; Jetson: NvMapMemUsed)",
        optional: false,
    },
    MetricSpec {
        name: "memory_total_bytes",
        unit: Unit::Bytes,
        help: "GPU memory in all (NVML: memory info `total`; Jetson: MemTotal)",
        optional: false,
    },
    MetricSpec {
        name: "utilization",
        unit: Unit::Percent,
        help: "GPU busy (NVML: utilization rates `gpu`; Jetson: devfreq `device/load` ÷ 10)",
        optional: false,
    },
    MetricSpec {
        name: "temperature",
        unit: Unit::Celsius,
        help: "GPU temperature (Jetson: thermal zone `gpu-thermal`; absent while the sensor reads −256 °C, i.e. is off)",
        optional: true,
    },
    MetricSpec {
        name: "power_w",
        unit: Unit::Watts,
        help: "GPU power (NVML: power usage; Jetson: the INA3221 GPU rail, VDD_GPU_SOC, else the sum of all rails)",
        optional: true,
    },
    MetricSpec {
        name: "freq_mhz",
        unit: Unit::Number,
        help: "GPU clock in MHz (NVML: graphics clock; Jetson: devfreq `cur_freq`)",
        optional: true,
    },
    MetricSpec {
        name: "throttled",
        unit: Unit::Number,
        help: "1 while NVML reports a hardware slowdown, thermal slowdown or power-brake throttle reason, else 0 (NVML)",
        optional: true,
    },
    MetricSpec {
        name: "xid_errors",
        unit: Unit::Count,
        help: "critical XID error events seen since the probe started (NVML event API)",
        optional: true,
    },
    MetricSpec {
        name: "ecc_errors",
        unit: Unit::Count,
        help: "uncorrected ECC errors since the driver loaded (NVML, volatile counter; absent without ECC)",
        optional: true,
    },
];

// `probe = "http"`
/// Metrics of the `http` probe.
pub const HTTP: &[MetricSpec] = &[
    MetricSpec {
        name: "status_code",
        unit: Unit::Number,
        help: "HTTP status of the answer",
        optional: false,
    },
    MetricSpec {
        name: "latency_ms",
        unit: Unit::Milliseconds,
        help: "time to the answer's head",
        optional: false,
    },
];

// `probe = "tcp"`
/// Metrics of the `tcp` probe.
pub const TCP: &[MetricSpec] = &[MetricSpec {
    name: "latency_ms",
    unit: Unit::Milliseconds,
    help: "time to connect",
    optional: false,
}];

// `probe = "exec"`
/// Metrics of the `exec` probe.
pub const EXEC: &[MetricSpec] = &[
    MetricSpec {
        name: "exit_code",
        unit: Unit::Number,
        help: "exit status of the command (128 + N when killed by signal N)",
        optional: false,
    },
    MetricSpec {
        name: "duration_ms",
        unit: Unit::Milliseconds,
        help: "run time of the command",
        optional: false,
    },
];
