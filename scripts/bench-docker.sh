#!/usr/bin/env bash
# Benchmark of the container probes against the real dockerd.
#
# Run as root from anywhere, after `cargo build --release`, with dockerd running
# and the test image built (scripts/test.sh does both), python3 on PATH:
#
#     bash scripts/bench-docker.sh
#
# Measures
#   (1) `docker kill` -> the check turns crit, over BENCH_KILLS kills of one
#       container watched by a `container` check with every = "60s" (so only
#       the events stream can be that fast):
#         t0 = wall clock just before the kill request is written to dockerd's
#              socket (POST /containers/NAME/kill, on an open connection);
#         t1 = at_us of the ok -> crit transition vigild stores in its state
#              database (vigild's wall clock when the probe's reading that
#              turned the check crit was taken).
#       Latency t1 - t0; p50 and p99 (nearest rank), min, max. The container is
#       started again between kills and the check is back to ok before the
#       next kill.
#   (1b) `docker kill` -> restart issued by vigil (a rule restarting the container), over
#       BENCH_KILLS kills: t1 = started_us of the action row vigild records just
#       before it asks dockerd to restart.
#   (2) vigild watching BENCH_CONTAINERS busybox containers (`sleep 100000`)
#       through one `containers` check matching all of them, every = "10s":
#       vigild's CPU time (utime + stime from /proc/PID/stat) over
#       BENCH_CPU_SECONDS, after every member check is ok, and its VmRSS and
#       VmHWM at the end.
# and prints one table.
#
# Environment:
#   BENCH_KILLS=50          kills for (1)
#   BENCH_CONTAINERS=200    containers for (2); 0 skips (2)
#   BENCH_CPU_SECONDS=60    CPU sampling window for (2)
#   BENCH_VIGILD=PATH       the binary (default: target/release/vigild)
#   DOCKER_SOCK=PATH        dockerd's socket (default: /var/run/docker.sock)
#
# Only the containers and the vigild started here are removed/stopped on exit,
# by name and PID.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BENCH_VIGILD=${BENCH_VIGILD:-$ROOT/target/release/vigild}
export BENCH_KILLS=${BENCH_KILLS:-50}
export BENCH_CONTAINERS=${BENCH_CONTAINERS:-200}
export BENCH_CPU_SECONDS=${BENCH_CPU_SECONDS:-60}
export DOCKER_SOCK=${DOCKER_SOCK:-/var/run/docker.sock}

[[ -x $BENCH_VIGILD ]] || {
    echo "bench-docker.sh: $BENCH_VIGILD missing: run 'cargo build --release' first" >&2
    exit 1
}
command -v python3 >/dev/null || {
    echo "bench-docker.sh: python3 is needed" >&2
    exit 1
}

exec python3 - <<'PY'
import http.client, json, os, signal, socket, sqlite3, subprocess, sys, tempfile, time

VIGILD = os.environ["BENCH_VIGILD"]
KILLS = int(os.environ["BENCH_KILLS"])
N = int(os.environ["BENCH_CONTAINERS"])
CPU_S = float(os.environ["BENCH_CPU_SECONDS"])
SOCK = os.environ["DOCKER_SOCK"]
IMAGE = "vigil-test/busybox:1"
API = "/v1.41"
TAG = f"vb{os.getpid()}"
HZ = os.sysconf("SC_CLK_TCK")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


conn = None


def api(method, path, body=None, ok=(200, 201, 204, 304)):
    global conn
    if conn is None:
        conn = UnixHTTP(SOCK)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, API + path, body=data, headers=headers)
    r = conn.getresponse()
    text = r.read()
    if r.status not in ok:
        raise SystemExit(f"bench-docker.sh: {method} {path}: HTTP {r.status}: {text[:300]!r}")
    return json.loads(text) if text and text[:1] in b"[{" else None


def die(msg):
    raise SystemExit(f"bench-docker.sh: {msg}")


try:
    api("GET", "/_ping")
except OSError as e:
    die(f"dockerd is not answering on {SOCK} ({e}); start it as scripts/test.sh does")
api("GET", f"/images/{IMAGE}/json", ok=(200,))

made = []          # container names to remove
procs = []         # vigild processes to stop
tmp = tempfile.TemporaryDirectory(prefix="vigil-bench-docker-")


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    for name in made:
        try:
            api("DELETE", f"/containers/{name}?force=1&v=1", ok=(204, 404))
        except Exception as e:  # keep removing the rest
            print(f"warning: could not remove {name}: {e}", file=sys.stderr)
    made.clear()


def create(name, cmd=("sleep", "100000")):
    api("POST", f"/containers/create?name={name}", {"Image": IMAGE, "Cmd": list(cmd)}, ok=(201,))
    made.append(name)
    api("POST", f"/containers/{name}/start", ok=(204,))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_vigild(label, policy):
    d = os.path.join(tmp.name, label)
    os.makedirs(os.path.join(d, "policies"))
    with open(os.path.join(d, "policies", "bench.toml"), "w") as f:
        f.write(policy)
    with open(os.path.join(d, "vigil.toml"), "w") as f:
        f.write(f'[docker]\nhost = "unix://{SOCK}"\n')
    env = dict(os.environ, RUST_LOG="info",
               DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent/bus",
               DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent/bus")
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"):
        env.pop(k, None)
    log = open(os.path.join(d, "vigild.log"), "w")
    p = subprocess.Popen(
        [VIGILD, "--foreground", "--config", os.path.join(d, "vigil.toml"),
         "--policies", os.path.join(d, "policies"), "--state-dir", os.path.join(d, "state"),
         "--listen", f"127.0.0.1:{free_port()}"],
        env=env, stdout=subprocess.DEVNULL, stderr=log)
    procs.append(p)
    return p, os.path.join(d, "state", "vigil.db"), os.path.join(d, "vigild.log")


def rows_after(db, last_id, check):
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            return c.execute(
                "SELECT id, from_status, to_status, at_us, detail FROM transitions "
                "WHERE id > ? AND check_name = ? ORDER BY id", (last_id, check)).fetchall()
        finally:
            c.close()
    except sqlite3.Error:
        return []


def wait_row(db, last_id, check, pred, what, timeout=30, logf=None):
    end = time.time() + timeout
    while time.time() < end:
        for row in rows_after(db, last_id, check):
            if pred(row):
                return row
        time.sleep(0.005)
    tail = open(logf).read()[-3000:] if logf else ""
    die(f"timed out waiting for {what}\n{tail}")


def pct(sorted_vals, p):
    # nearest rank
    k = max(1, -(-len(sorted_vals) * p // 100))
    return sorted_vals[int(k) - 1]


die_at = {}  # kill number -> timeNano of the container's die event (dockerd's clock)


def follow_die_events(name):
    """Records dockerd's own timestamp of each die event of `name` (a second opinion that
    splits the latency into dockerd's part and vigild's)."""
    import threading

    def run():
        c = UnixHTTP(SOCK)
        c.sock = None
        flt = json.dumps({"type": ["container"], "event": ["die"], "container": [name]})
        import urllib.parse
        c.request("GET", API + "/events?filters=" + urllib.parse.quote(flt))
        r = c.getresponse()
        n = 0
        while True:
            line = r.readline()
            if not line:
                return
            ev = json.loads(line)
            n += 1
            die_at[n] = ev["timeNano"] // 1000

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(0.3)


results = []
try:
    # ---- (1) docker kill -> crit ---------------------------------------------------
    name = f"{TAG}-kill"
    create(name)
    p, db, logf = start_vigild(
        "kill", f'[[check]]\nname = "web"\nprobe = "container"\ncontainer = "{name}"\nevery = "60s"\n')
    row = wait_row(db, 0, "web", lambda r: r[2] == "ok", "the check to be ok", logf=logf)
    last = row[0]
    follow_die_events(name)
    split = []
    time.sleep(0.5)
    lat = []
    for i in range(KILLS):
        t0 = time.time_ns() // 1000
        api("POST", f"/containers/{name}/kill", ok=(204,))
        row = wait_row(db, last, "web", lambda r: r[2] == "crit", f"kill {i + 1} to turn crit", logf=logf)
        lat.append((row[3] - t0) / 1000.0)
        end = time.time() + 2
        while i + 1 not in die_at and time.time() < end:
            time.sleep(0.001)
        if i + 1 in die_at:
            split.append(((die_at[i + 1] - t0) / 1000.0, (row[3] - die_at[i + 1]) / 1000.0))
        last = row[0]
        api("POST", f"/containers/{name}/start", ok=(204,))
        row = wait_row(db, last, "web", lambda r: r[2] == "ok", f"start {i + 1} to turn ok", logf=logf)
        last = row[0]
        time.sleep(0.1)
    lat.sort()
    results.append(("kill -> crit: kills", f"{len(lat)}", ""))
    results.append(("kill -> crit: p50", f"{pct(lat, 50):.1f} ms", "<= 50 ms"))
    results.append(("kill -> crit: p99", f"{pct(lat, 99):.1f} ms", "<= 200 ms"))
    results.append(("kill -> crit: min / max", f"{lat[0]:.1f} / {lat[-1]:.1f} ms", ""))
    results.append(("kill -> crit: mean", f"{sum(lat) / len(lat):.1f} ms", ""))
    if split:
        a = sorted(x for x, _ in split)
        b = sorted(y for _, y in split)
        results.append(("  of which kill -> die event (dockerd): p50 / p99", f"{pct(a, 50):.1f} / {pct(a, 99):.1f} ms", ""))
        results.append(("  of which die event -> crit (vigild): p50 / p99", f"{pct(b, 50):.1f} / {pct(b, 99):.1f} ms", ""))
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    cleanup()

    # ---- (1b) docker kill -> restart issued by vigil ----------------------------------
    #   t0 = just before the kill request; t1 = started_us of the action row vigild
    #   records before it calls dockerd's restart (rule: for 0s, cooldown 0s).
    name = f"{TAG}-heal"
    create(name, cmd=("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"))
    p, db, logf = start_vigild("heal", f"""[[check]]
name = "web"
probe = "container"
container = "{name}"
every = "60s"

[[rule]]
name = "heal-web"
on = "web"
when = "crit"
for = "0s"
do = ["restart container:{name}"]
cooldown = "0s"
limit = "1000 per 1h"
""")
    row = wait_row(db, 0, "web", lambda r: r[2] == "ok", "the healed check to be ok", logf=logf)
    last = row[0]

    def actions(db):
        try:
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
            try:
                return c.execute("SELECT id, started_us, result FROM actions ORDER BY id").fetchall()
            finally:
                c.close()
        except sqlite3.Error:
            return []

    heal = []
    for i in range(KILLS):
        n = len(actions(db))
        t0 = time.time_ns() // 1000
        api("POST", f"/containers/{name}/kill", ok=(204,))
        end = time.time() + 30
        while True:
            rows = actions(db)
            if len(rows) > n:
                heal.append((rows[n][1] - t0) / 1000.0)
                break
            if time.time() > end:
                die(f"kill {i + 1}: no restart recorded within 30 s; see {logf}")
            time.sleep(0.002)
        row = wait_row(db, last, "web", lambda r: r[2] == "ok", f"heal {i + 1} to turn ok", logf=logf)
        last = row[0]
        time.sleep(0.2)
    heal.sort()
    results.append(("kill -> restart issued by vigil: p50", f"{pct(heal, 50):.1f} ms", "<= 50 ms"))
    results.append(("kill -> restart issued by vigil: p99", f"{pct(heal, 99):.1f} ms", "<= 200 ms"))
    results.append(("kill -> restart issued: min / max", f"{heal[0]:.1f} / {heal[-1]:.1f} ms", ""))
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    cleanup()

    # ---- (2) 200 containers --------------------------------------------------------
    if N == 0:
        raise KeyboardInterrupt  # BENCH_CONTAINERS=0: kills only
    t = time.time()
    for i in range(N):
        create(f"{TAG}-many-{i:03d}")
    made_s = time.time() - t
    p, db, logf = start_vigild(
        "many", f'[[check]]\nname = "fleet"\nprobe = "containers"\nmatch = ["{TAG}-many-*"]\nevery = "10s"\n')
    want = f"{N} matched: {N} ok"
    t = time.time()
    wait_row(db, 0, "fleet", lambda r: r[4].startswith(want), f"'{want}'", timeout=120, logf=logf)
    ready_s = time.time() - t
    time.sleep(2)

    def cpu_ticks(pid):
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)

    def status_kb(pid, key):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    c0, w0 = cpu_ticks(p.pid), time.time()
    time.sleep(CPU_S)
    c1, w1 = cpu_ticks(p.pid), time.time()
    cpu_s = (c1 - c0) / HZ
    results.append((f"{N} containers: created in", f"{made_s:.1f} s", ""))
    results.append((f"{N} containers: start -> all ok", f"{ready_s:.2f} s", ""))
    results.append((f"{N} containers: CPU over {w1 - w0:.0f} s", f"{cpu_s:.2f} s ({100 * cpu_s / (w1 - w0):.2f} % of a core)", ""))
    results.append((f"{N} containers: VmRSS", f"{status_kb(p.pid, 'VmRSS') / 1024:.1f} MiB", ""))
    results.append((f"{N} containers: VmHWM", f"{status_kb(p.pid, 'VmHWM') / 1024:.1f} MiB", ""))
except KeyboardInterrupt:
    pass
finally:
    cleanup()
    tmp.cleanup()

w = max(len(r[0]) for r in results)
v = max(len(r[1]) for r in results)
print(f"\n{'metric':<{w}} | {'vigild':<{v}} | goal")
print(f"{'-' * w}-+-{'-' * v}-+-----")
for m, val, goal in results:
    print(f"{m:<{w}} | {val:<{v}} | {goal}")
PY
