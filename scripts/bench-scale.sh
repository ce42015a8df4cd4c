#!/usr/bin/env bash
# Benchmark of vigild with many checks: memory, CPU and start-up as the check count grows,
# and `vigilctl policy check` on the same policy files.
#
# Run from anywhere, after `cargo build --release` (dbus-daemon and python3 needed;
# scripts/test.sh installs them):
#
#     bash scripts/bench-scale.sh
#
# For each N in BENCH_COUNTS, a policy file with N `disk` checks on / (every 10 s, with
# thresholds) is written; then
#   - `vigilctl policy check` on it is timed (median of 3);
#   - vigild is started on it with a private dbus-daemon (so the D-Bus publisher runs and
#     every check object is served), and the time from spawn to the first answered
#     heartbeat is measured;
#   - after BENCH_SETTLE seconds, vigild's CPU time over the next BENCH_WINDOW seconds
#     (utime + stime from /proc/PID/stat) and its VmRSS at the end are read.
# One table: N | policy check | start -> heartbeat | RSS | CPU % of a core; then each
# figure per check from 100 to the largest N, to show growth (linear means flat).
#
# Environment:
#   BENCH_COUNTS="10 100 1000 10000"
#   BENCH_SETTLE=10   seconds before the CPU window (start-up work is not counted)
#   BENCH_WINDOW=30   seconds of the CPU window
#   BENCH_VIGILD, BENCH_VIGILCTL   the binaries (default: target/release/…)
#
# Goals at 1,000 checks (issue "harden the foundation"): RSS <= 40 MiB, CPU <= 2 % of a
# core at a 10 s interval, policy check <= 0.2 s. Only processes started here are stopped.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BENCH_VIGILD=${BENCH_VIGILD:-$ROOT/target/release/vigild}
export BENCH_VIGILCTL=${BENCH_VIGILCTL:-$ROOT/target/release/vigilctl}
export BENCH_COUNTS=${BENCH_COUNTS:-"10 100 1000 10000"}
export BENCH_SETTLE=${BENCH_SETTLE:-10}
export BENCH_WINDOW=${BENCH_WINDOW:-30}

for bin in "$BENCH_VIGILD" "$BENCH_VIGILCTL"; do
    [[ -x $bin ]] || {
        echo "bench-scale.sh: $bin is missing; run cargo build --release" >&2
        exit 1
    }
done
command -v dbus-daemon >/dev/null || {
    echo "bench-scale.sh: dbus-daemon is missing (apt-get install dbus)" >&2
    exit 1
}

exec python3 - <<'PY'
import os, socket, statistics, subprocess, sys, tempfile, time

VIGILD = os.environ["BENCH_VIGILD"]
VIGILCTL = os.environ["BENCH_VIGILCTL"]
COUNTS = [int(n) for n in os.environ["BENCH_COUNTS"].split()]
SETTLE = float(os.environ["BENCH_SETTLE"])
WINDOW = float(os.environ["BENCH_WINDOW"])
TICK = os.sysconf("SC_CLK_TCK")


def policy(n):
    parts = []
    for i in range(n):
        parts.append(
            f'[[check]]\nname = "disk-{i}"\nprobe = "disk"\npath = "/"\nevery = "10s"\n'
            f'warn = "used > 99%"\ncrit = ["used > 99.5%", "inodes_used > 99.5%"]\n'
        )
    return "\n".join(parts)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def heartbeat_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def policy_check(path):
    times = []
    for _ in range(3):
        t = time.monotonic()
        r = subprocess.run([VIGILCTL, "policy", "check", path], capture_output=True)
        times.append(time.monotonic() - t)
        if r.returncode != 0:
            sys.exit(f"policy check failed: {r.stdout.decode()} {r.stderr.decode()}")
    return statistics.median(times)


def run_one(n, work):
    pol = os.path.join(work, f"p{n}")
    os.makedirs(pol)
    path = os.path.join(pol, "checks.toml")
    with open(path, "w") as f:
        f.write(policy(n))
    check_s = policy_check(path)
    bus_sock = os.path.join(work, f"bus{n}")
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", f"--address=unix:path={bus_sock}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    bus.stdout.readline()
    port = free_port()
    log = open(os.path.join(work, f"vigild{n}.log"), "w")
    started = time.monotonic()
    v = subprocess.Popen(
        [VIGILD, "--foreground", "--policies", pol, "--state-dir", os.path.join(work, f"state{n}"),
         "--bus", f"unix:path={bus_sock}", "--listen", f"127.0.0.1:{port}",
         "--config", os.path.join(work, "vigil.toml")],
        stdout=subprocess.DEVNULL, stderr=log,
        env={k: val for k, val in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")} | {"RUST_LOG": "warn"},
    )
    try:
        while not heartbeat_ok(port):
            if v.poll() is not None:
                sys.exit(f"vigild exited with {v.returncode}; see {log.name}")
            if time.monotonic() - started > 120:
                sys.exit("no heartbeat within 120 s")
            time.sleep(0.005)
        first = time.monotonic() - started
        time.sleep(SETTLE)
        c0, t0 = cpu_ticks(v.pid), time.monotonic()
        time.sleep(WINDOW)
        c1, t1 = cpu_ticks(v.pid), time.monotonic()
        cpu = 100.0 * (c1 - c0) / TICK / (t1 - t0)
        rss = rss_kib(v.pid) / 1024.0
    finally:
        v.terminate()
        try:
            v.wait(10)
        except subprocess.TimeoutExpired:
            v.kill()
        bus.terminate()
        bus.wait()
    return check_s, first, rss, cpu


with tempfile.TemporaryDirectory() as work:
    with open(os.path.join(work, "vigil.toml"), "w") as f:
        f.write("")
    rows = []
    for n in COUNTS:
        rows.append((n,) + run_one(n, work))
        print(f"  measured {n} checks", file=sys.stderr)

print()
print(f"vigild {VIGILD}: checks every 10 s, CPU over {WINDOW:.0f} s after {SETTLE:.0f} s")
print()
print("| checks | policy check | start -> heartbeat | RSS | CPU (% of a core) |")
print("| ---: | ---: | ---: | ---: | ---: |")
for n, check_s, first, rss, cpu in rows:
    print(f"| {n:,} | {check_s * 1000:.0f} ms | {first * 1000:.0f} ms | {rss:.1f} MiB | {cpu:.2f} % |")
base = [r for r in rows if r[0] >= 100]
if len(base) >= 2:
    print()
    print("per check (growth; flat means linear):")
    print()
    print("| checks | policy check / check | RSS / check | CPU / check |")
    print("| ---: | ---: | ---: | ---: |")
    for n, check_s, first, rss, cpu in base:
        print(f"| {n:,} | {check_s * 1e6 / n:.1f} µs | {rss * 1024 / n:.2f} KiB | {cpu * 1000 / n:.3f} m% |")
at = {r[0]: r for r in rows}
if 1000 in at:
    n, check_s, first, rss, cpu = at[1000]
    print()
    print("goals at 1,000 checks: "
          f"RSS {rss:.1f} MiB (<= 40: {'met' if rss <= 40 else 'MISSED'}), "
          f"CPU {cpu:.2f} % (<= 2: {'met' if cpu <= 2 else 'MISSED'}), "
          f"policy check {check_s:.3f} s (<= 0.2: {'met' if check_s <= 0.2 else 'MISSED'})")
PY
