#!/usr/bin/env bash
# Footprint and restart speed of vigild beside Debian's monit and Docker's restart policy.
#
# Run as root from anywhere, after `cargo build --release` (monit, dbus-daemon, docker with
# a running dockerd, the vigil-test/busybox:1 image of scripts/test.sh, and python3 needed;
# `apt-get install monit`):
#
#     bash scripts/bench-footprint.sh
#
# 1. Footprint, side by side in one run. A local HTTP server (python's http.server) serves
#    ten files; monit and vigild each watch, every 5 s, the same 22 things: the root file
#    system, memory, ten programs `/bin/true`, ten HTTP GETs of that server. vigild runs
#    with everything on: a private dbus-daemon (every check object served), the heartbeat
#    and /metrics listener, its SQLite store. After BENCH_SETTLE s: RSS and threads; then
#    CPU (utime + stime, the reaped children's too: both fork the ten programs) over the
#    next BENCH_WINDOW s, as % of one core. Then where vigild's RSS lies, from
#    /proc/PID/smaps: the binary (text, read-only data), the main heap, glibc's per-thread
#    arenas (anonymous 64 MiB reservations), thread stacks, other anonymous memory.
# 2. Restart speed. Two busybox containers: one with `--restart=always` (Docker restarts
#    it), one with no restart policy that a vigild `container` check and the rule
#    `restart {target}` (no `for`) restart. Their main processes are killed (SIGKILL, a
#    crash: `docker kill` would count as stopping it by hand, which Docker's policy leaves
#    stopped) alternately, BENCH_RESTARTS times each, each only after it has run 11 s (so Docker's back-off,
#    100 ms doubling while a container lives under 10 s, is at its shortest); kill → the
#    engine's `start` event (its timeNano) is the figure: median and p90.
# Goals (issue 16): RSS <= 2.0x monit's, CPU <= 1.0x monit's, vigil's restart median <=
# Docker's. Only processes and containers started here are stopped.
#
# Environment:
#   BENCH_SETTLE=30 BENCH_WINDOW=120 BENCH_RESTARTS=20
#   BENCH_VIGILD   the binary (default: target/release/vigild)
#   BENCH_SKIP_RESTARTS=1   footprint only

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BENCH_VIGILD=${BENCH_VIGILD:-$ROOT/target/release/vigild}
export BENCH_SETTLE=${BENCH_SETTLE:-30}
export BENCH_WINDOW=${BENCH_WINDOW:-120}
export BENCH_RESTARTS=${BENCH_RESTARTS:-20}
export BENCH_SKIP_RESTARTS=${BENCH_SKIP_RESTARTS:-0}
export BENCH_IMAGE=vigil-test/busybox:1

fail() {
    echo "bench-footprint.sh: $*" >&2
    exit 1
}
[[ -x $BENCH_VIGILD ]] || fail "$BENCH_VIGILD is missing; run cargo build --release"
for cmd in monit dbus-daemon python3; do
    command -v "$cmd" >/dev/null || fail "$cmd is missing (apt-get install monit dbus python3)"
done
if [[ $BENCH_SKIP_RESTARTS != 1 ]]; then
    docker image inspect "$BENCH_IMAGE" >/dev/null 2>&1 ||
        fail "no dockerd answering, or no $BENCH_IMAGE image (scripts/test.sh makes both)"
fi

exec python3 - <<'PY'
import http.client, json, os, socket, statistics, subprocess, sys, tempfile, threading, time
import signal, urllib.parse

VIGILD = os.environ["BENCH_VIGILD"]
SETTLE = float(os.environ["BENCH_SETTLE"])
WINDOW = float(os.environ["BENCH_WINDOW"])
RESTARTS = int(os.environ["BENCH_RESTARTS"])
SKIP_RESTARTS = os.environ["BENCH_SKIP_RESTARTS"] == "1"
IMAGE = os.environ["BENCH_IMAGE"]
TICK = os.sysconf("SC_CLK_TCK")
PROGRAMS = HTTPS = 10
EVERY = 5


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(what, cond, timeout=60):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            sys.exit(f"bench-footprint.sh: {what} did not happen within {timeout} s")
        time.sleep(0.05)


def heartbeat_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime stime cutime cstime
    return sum(int(x) for x in fields[11:15])


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def smaps(pid):
    """vigild's RSS by kind of mapping, KiB. glibc's arenas are read-write anonymous maps at
    64 MiB-aligned addresses (the rest of each 64 MiB reservation is ---p); a thread stack
    is a read-write anonymous map right above a 4 KiB ---p guard page."""
    maps, exe = [], os.path.realpath(f"/proc/{pid}/exe")
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                maps.append({"lo": lo, "hi": hi, "perms": parts[1],
                             "name": parts[5] if len(parts) > 5 else "", "rss": 0})
            elif parts[0] == "Rss:":
                maps[-1]["rss"] = int(parts[1])
    out = {"binary": 0, "libraries": 0, "heap": 0, "arenas": 0, "stacks": 0, "other anon": 0}
    guard_ends = {m["hi"] for m in maps if m["perms"].startswith("---") and m["hi"] - m["lo"] == 4096}
    for m in maps:
        name = m["name"]
        if name == exe:
            k = "binary"
        elif name.startswith("/"):
            k = "libraries"
        elif name == "[heap]":
            k = "heap"
        elif name == "[stack]" or (name == "" and m["lo"] in guard_ends):
            k = "stacks"
        elif name == "" and m["lo"] % (64 << 20) == 0 and m["perms"].startswith("rw"):
            k = "arenas"
        else:
            k = "other anon"
        out[k] += m["rss"]
    return out


def stop(p, timeout=10):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def monit_version():
    r = subprocess.run(["monit", "-V"], capture_output=True, text=True)
    return r.stdout.split("version", 1)[1].split()[0] if "version" in r.stdout else "?"


def vigild_version():
    return subprocess.run([VIGILD, "--version"], capture_output=True, text=True).stdout.split()[-1]


def start_bus(work, name):
    sock = os.path.join(work, name)
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", f"--address=unix:path={sock}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    bus.stdout.readline()
    return bus, f"unix:path={sock}"


def start_vigild(work, tag, policy, bus_addr):
    pol = os.path.join(work, f"policies-{tag}")
    os.makedirs(pol)
    with open(os.path.join(pol, "bench.toml"), "w") as f:
        f.write(policy)
    conf = os.path.join(work, f"vigil-{tag}.toml")
    open(conf, "w").close()
    port = free_port()
    log = open(os.path.join(work, f"vigild-{tag}.log"), "w")
    v = subprocess.Popen(
        [VIGILD, "--foreground", "--config", conf, "--policies", pol,
         "--state-dir", os.path.join(work, f"state-{tag}"), "--bus", bus_addr,
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log,
        env={k: x for k, x in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        | {"RUST_LOG": "info"},
    )
    def up():
        if v.poll() is not None:
            sys.exit(f"vigild exited with {v.returncode}; see {log.name}")
        return heartbeat_ok(port)
    wait_until("vigild's heartbeat", up)
    return v, log.name


def footprint(work):
    web_root = os.path.join(work, "www")
    os.makedirs(web_root)
    for i in range(HTTPS):
        with open(os.path.join(web_root, f"{i}.txt"), "w") as f:
            f.write("ok\n")
    web_port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", web_root, str(web_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until("the HTTP server", lambda: socket.socket().connect_ex(("127.0.0.1", web_port)) == 0)

    mdir = os.path.join(work, "monit")
    os.makedirs(mdir)
    rc = [f"set daemon {EVERY}", f"set logfile {mdir}/monit.log", f"set idfile {mdir}/id",
          f"set statefile {mdir}/state", f"set pidfile {mdir}/pid", "",
          "check filesystem rootfs with path /", "  if space usage > 95% then alert", "",
          "check system bench", "  if memory usage > 95% then alert", ""]
    for i in range(PROGRAMS):
        rc += [f"check program true-{i} with path /bin/true", "  if status != 0 then alert", ""]
    for i in range(HTTPS):
        rc += [f"check host web-{i} with address 127.0.0.1",
               f'  if failed port {web_port} protocol http request "/{i}.txt" then alert', ""]
    monitrc = os.path.join(mdir, "monitrc")
    with open(monitrc, "w") as f:
        f.write("\n".join(rc))
    os.chmod(monitrc, 0o600)

    pol = ['[[check]]\nname = "root-disk"\nprobe = "disk"\npath = "/"\nevery = "5s"\ncrit = "used > 95%"\n',
           '[[check]]\nname = "memory"\nprobe = "memory"\nevery = "5s"\ncrit = "available < 5%"\n']
    for i in range(PROGRAMS):
        pol.append(f'[[check]]\nname = "true-{i}"\nprobe = "exec"\ncommand = ["/bin/true"]\nevery = "5s"\n')
    for i in range(HTTPS):
        pol.append(f'[[check]]\nname = "web-{i}"\nprobe = "http"\n'
                   f'url = "http://127.0.0.1:{web_port}/{i}.txt"\nevery = "5s"\n')

    bus, bus_addr = start_bus(work, "bus-fp")
    monit = subprocess.Popen(["monit", "-I", "-c", monitrc], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    v, vlog = start_vigild(work, "fp", "\n".join(pol), bus_addr)
    try:
        time.sleep(SETTLE)
        if monit.poll() is not None:
            sys.exit(f"monit exited with {monit.returncode}; see {mdir}/monit.log")
        rows = {}
        for name, p in (("monit", monit), ("vigild", v)):
            rows[name] = {"rss": status(p.pid, "VmRSS") / 1024, "threads": status(p.pid, "Threads")}
        where = smaps(v.pid)
        c0 = {n: stat(p.pid) for n, p in (("monit", monit), ("vigild", v))}
        t0 = time.monotonic()
        time.sleep(WINDOW)
        t1 = time.monotonic()
        for name, p in (("monit", monit), ("vigild", v)):
            rows[name]["cpu"] = 100.0 * (stat(p.pid) - c0[name]) / TICK / (t1 - t0)
            rows[name]["threads_end"] = status(p.pid, "Threads")
        with open(vlog) as f:
            ok = sum(1 for line in f if "unknown → ok" in line)
        if ok < 2 + PROGRAMS + HTTPS:
            sys.exit(f"only {ok} of vigild's checks turned ok; see {vlog}")
    finally:
        stop(v)
        stop(monit)
        stop(bus)
        stop(web)
    return rows, where


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path="/var/run/docker.sock", timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def inspect(name):
    c = UnixHTTP()
    c.request("GET", f"/containers/{name}/json")
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        sys.exit(f"inspect {name}: HTTP {r.status}")
    return json.loads(body)


def docker(*args):
    subprocess.run(["docker", *args], check=True, stdout=subprocess.DEVNULL)


def restarts(work):
    tag = f"bench-fp-{os.getpid()}"
    by_docker, by_vigil = f"{tag}-docker", f"{tag}-vigil"
    docker("run", "-d", "--name", by_docker, "--restart=always", IMAGE, "/bin/sleep", "1000000")
    docker("run", "-d", "--name", by_vigil, IMAGE, "/bin/sleep", "1000000")
    policy = (f'[[check]]\nname = "stack"\nprobe = "containers"\nmatch = ["{by_vigil}"]\nevery = "30s"\n\n'
              f'[[rule]]\nname = "restart-it"\non = "container:{by_vigil}"\nwhen = "crit"\n'
              'do = ["restart {target}"]\ncooldown = "0s"\nlimit = "1000 per 1h"\n')
    bus, bus_addr = start_bus(work, "bus-rs")
    v = None
    starts = {by_docker: [], by_vigil: []}
    cond = threading.Condition()
    try:
        v, vlog = start_vigild(work, "rs", policy, bus_addr)
        wait_until("vigild sees the container ok", lambda: f"container:{by_vigil} unknown → ok" in open(vlog).read())
        ev = UnixHTTP(timeout=None)
        filters = json.dumps({"type": ["container"], "event": ["start"],
                              "container": [by_docker, by_vigil]})
        ev.request("GET", "/events?filters=" + urllib.parse.quote(filters))
        resp = ev.getresponse()

        def follow():
            for line in resp:
                e = json.loads(line)
                name = e.get("Actor", {}).get("Attributes", {}).get("name")
                with cond:
                    if name in starts:
                        starts[name].append(e["timeNano"])
                        cond.notify_all()

        threading.Thread(target=follow, daemon=True).start()
        time.sleep(0.5)  # the stream is open before the first kill
        last_start = {by_docker: time.time(), by_vigil: time.time()}
        took = {by_docker: [], by_vigil: []}
        for i in range(RESTARTS):
            for name in (by_docker, by_vigil):
                wait = last_start[name] + 11 - time.time()
                if wait > 0:
                    time.sleep(wait)
                with cond:
                    seen = len(starts[name])
                pid = inspect(name)["State"]["Pid"]
                t0 = time.time_ns()
                os.kill(pid, signal.SIGKILL)
                with cond:
                    if not cond.wait_for(lambda: len(starts[name]) > seen, timeout=30):
                        tail = "".join(open(vlog).readlines()[-15:])
                        sys.exit(f"{name} was not started again within 30 s (round {i + 1}); vigild:\n{tail}")
                    t1 = starts[name][-1]
                took[name].append((t1 - t0) / 1e6)
                print(f"  round {i + 1}: {name} started again {took[name][-1]:.0f} ms after the kill",
                      file=sys.stderr)
                last_start[name] = t1 / 1e9
        ev.sock.shutdown(socket.SHUT_RDWR)  # ends the follower; close() would wait for it
    finally:
        if v:
            stop(v)
        stop(bus)
        subprocess.run(["docker", "rm", "-f", by_docker, by_vigil], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return took[by_docker], took[by_vigil]


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


with tempfile.TemporaryDirectory() as work:
    print("measuring monit and vigild side by side …", file=sys.stderr)
    rows, where = footprint(work)
    print("killing containers …", file=sys.stderr)
    rs = None if SKIP_RESTARTS else restarts(work)

m, v = rows["monit"], rows["vigild"]
print()
print(f"monit {monit_version()} beside vigild {vigild_version()} ({VIGILD}): "
      f"22 checks every {EVERY} s (root fs, memory, {PROGRAMS} x /bin/true, {HTTPS} x HTTP GET); "
      f"RSS and threads after {SETTLE:.0f} s, CPU (children included) over the next {WINDOW:.0f} s; "
      f"{os.cpu_count()} CPUs")
print()
print("| | monit | vigild | vigild / monit | goal |")
print("| --- | ---: | ---: | ---: | --- |")
rss_x, cpu_x = v["rss"] / m["rss"], (v["cpu"] / m["cpu"] if m["cpu"] else float("inf"))
print(f"| RSS | {m['rss']:.1f} MiB | {v['rss']:.1f} MiB | {rss_x:.2f}x | <= 2.0x: {'met' if rss_x <= 2.0 else 'MISSED'} |")
print(f"| CPU (% of a core) | {m['cpu']:.3f} % | {v['cpu']:.3f} % | {cpu_x:.2f}x | <= 1.0x: {'met' if cpu_x <= 1.0 else 'MISSED'} |")
print(f"| threads (start, end of window) | {m['threads']}, {m['threads_end']} | {v['threads']}, {v['threads_end']} | | |")
print()
print("vigild's RSS by mapping (smaps, after the settle time):")
print()
print("| " + " | ".join(where) + " | total |")
print("| " + " | ".join("---:" for _ in where) + " | ---: |")
print("| " + " | ".join(f"{k / 1024:.2f} MiB" for k in where.values()) + f" | {sum(where.values()) / 1024:.2f} MiB |")
if rs:
    d, g = rs
    print()
    print(f"restart: SIGKILL of the container's process -> the engine's start event, {len(d)} kills each, alternately")
    print()
    print("| restarted by | median | p90 | min | max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, xs in (("Docker (--restart=always)", d), ("vigil (restart {target})", g)):
        print(f"| {label} | {statistics.median(xs):.0f} ms | {p90(xs):.0f} ms | {min(xs):.0f} ms | {max(xs):.0f} ms |")
    ok = statistics.median(g) <= statistics.median(d)
    print()
    print(f"goal: vigil's median <= Docker's: {'met' if ok else 'MISSED'}")
PY
