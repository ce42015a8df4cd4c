#!/usr/bin/env bash
# Benchmark of applying a signed update bundle through vigild over D-Bus: how long a small
# bundle takes from ApplyUpdate to committed, and how long vigild takes, after a SIGKILL
# while the run is `applying`, to come back and roll the run back.
#
# Run as root from anywhere (busctl, dbus-daemon, minisign and python3 needed; docker too
# with BENCH_DOCKER=1; scripts/test.sh installs them all):
#
#     bash scripts/bench-update.sh
#
# It runs `cargo build --release --bins` first (BENCH_BUILD=0 skips that), then, all in
# one temporary directory (removed at the end):
#   - a private session dbus-daemon (`--fork --print-pid`, stopped by its PID at the end);
#   - a minisign key without a password (`minisign -G -W`), its public half in the keys_dir
#     of a vigil.toml with two hooks: `noop` (/bin/true) and `slow` (sh -c "sleep
#     BENCH_HOOK_SLEEP"); they run as nobody, vigild being root;
#   - a policy whose only check, `stack`, is an exec probe of /bin/true every 100 ms: the
#     gate of both bundles;
#   - two bundles of release 2.0.0 made by `vigilctl bundle create`: install compose.yml,
#     run a hook (`noop` in the commit bundle, `slow` in the kill bundle, so that `applying`
#     lasts long enough for a kill to land in it), gate on `stack` with window BENCH_WINDOW
#     and timeout 30 s. With BENCH_DOCKER=1 both also start with a docker-load step of the
#     test image vigil-test/busybox:1 `docker save`d under a tag of this run's own (the
#     tag is put back on the image between runs and removed at the end); by default there
#     is no docker step, so the figures are vigil's own overhead;
#   - a state directory with releases/1.0.0/compose.yml and releases/current -> 1.0.0,
#     reset before every run (releases and staging removed and made again; the update
#     journal, updates.db, is kept, as runs accumulate on a box).
# Every run starts vigild afresh (--foreground, a free 127.0.0.1 port, the private bus; the
# sd_notify and journal variables cleared) and waits until it answers GetUpdate on the bus;
# no timing includes that first start. Then:
#   (1) BENCH_RUNS runs of the commit bundle: t0 just before `busctl call … ApplyUpdate s
#       BUNDLE` is spawned, t1 when GetUpdate first shows the run `committed` (and vigild
#       idle); the figure is t1 - t0 - the gate window. What remains is verification,
#       staging, the backup, applying, the gate's wait for its first reading (the check
#       runs every 100 ms), the commit, and the busctl calls themselves.
#   (2) BENCH_RUNS runs of the kill bundle: once GetUpdate shows the run `applying`, vigild
#       gets SIGKILL; once it is reaped it is spawned again at once (t0), t1 when it first
#       answers GetUpdate ("on the bus"), t2 when GetUpdate shows the run `rolled-back`.
#       A run that got as far as `applying` gets its previous release back and gates it
#       again with the bundle's window, so t2 - t0 contains one gate window; the table has
#       the figure with and without it. The run's events must show it went from `applying`
#       to `rolling-back` (the kill landed in `applying`), or the script fails.
# States are read by polling GetUpdate (`busctl --json=short call`) every BENCH_POLL_MS ms,
# not from UpdateProgress signals: a time is that of the first answer showing the state,
# so each figure is late by up to one poll period (printed: the mean time between the
# starts of two polls). Median and p90 (nearest rank) over the runs. Two rows more split
# out the gate from the journal's own event times (GetUpdate's `events`, ms): from the
# run's last entry into `gating` to `committed` / `rolled-back`, less the window, i.e. how
# long the gate took past its window (its checks' first fresh reading, and how often
# vigild looks at the gate).
# One table: measurement | median | p90 | runs; then a line of versions and conditions.
#
# Environment:
#   BENCH_RUNS=10          runs of each measurement
#   BENCH_WINDOW=1         the gate window, in seconds (a whole number)
#   BENCH_HOOK_SLEEP=0.5   seconds the kill bundle's hook sleeps (`applying` lasts that long)
#   BENCH_POLL_MS=5        pause between two GetUpdate polls
#   BENCH_DOCKER=0         1: a docker-load step in both bundles (dockerd must run)
#   BENCH_BUILD=1          0: do not run cargo build --release first
#   BENCH_VIGILD, BENCH_VIGILCTL   the binaries (default: target/release/…)
#
# The machine's cores are shared with whatever else runs: the load average before and
# after is printed. Only processes started here are stopped, by PID (the hook a killed
# vigild leaves behind ends its own sleep).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BENCH_VIGILD=${BENCH_VIGILD:-$ROOT/target/release/vigild}
export BENCH_VIGILCTL=${BENCH_VIGILCTL:-$ROOT/target/release/vigilctl}
export BENCH_RUNS=${BENCH_RUNS:-10}
export BENCH_WINDOW=${BENCH_WINDOW:-1}
export BENCH_HOOK_SLEEP=${BENCH_HOOK_SLEEP:-0.5}
export BENCH_POLL_MS=${BENCH_POLL_MS:-5}
export BENCH_DOCKER=${BENCH_DOCKER:-0}
export BENCH_BUILD=${BENCH_BUILD:-1}
export BENCH_ROOT=$ROOT

die() {
    printf 'bench-update.sh: error: %s\n' "$*" >&2
    exit 1
}

[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive number"
[[ $BENCH_WINDOW =~ ^[1-9][0-9]*$ ]] || die "BENCH_WINDOW must be a positive whole number of seconds"
[[ $BENCH_HOOK_SLEEP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_HOOK_SLEEP must be a number of seconds"
[[ $BENCH_POLL_MS =~ ^[0-9]+$ ]] || die "BENCH_POLL_MS must be a number"
[[ $BENCH_DOCKER == 0 || $BENCH_DOCKER == 1 ]] || die "BENCH_DOCKER must be 0 or 1"
[[ $EUID == 0 ]] || die "run it as root (vigild runs the hooks as nobody, as on a box)"
command -v busctl >/dev/null || die "'busctl' not on PATH (apt-get install -y systemd)"
command -v dbus-daemon >/dev/null || die "'dbus-daemon' not on PATH (apt-get install -y dbus)"
command -v minisign >/dev/null || die "'minisign' not on PATH (apt-get install -y minisign)"
command -v python3 >/dev/null || die "'python3' not on PATH (apt-get install -y python3)"
if [[ $BENCH_DOCKER == 1 ]]; then
    command -v docker >/dev/null || die "BENCH_DOCKER=1 but 'docker' is not on PATH (apt-get install -y docker.io)"
    docker info --format '{{.ServerVersion}}' >/dev/null 2>&1 ||
        die "BENCH_DOCKER=1 but dockerd does not answer (start it as scripts/test.sh does)"
    docker image inspect vigil-test/busybox:1 >/dev/null 2>&1 ||
        die "BENCH_DOCKER=1 but the test image vigil-test/busybox:1 is missing (scripts/test.sh builds it)"
fi
if [[ $BENCH_BUILD == 1 ]]; then
    command -v cargo >/dev/null || die "'cargo' not on PATH (or BENCH_BUILD=0 with built binaries)"
    echo "== cargo build --release --bins" >&2
    (cd "$ROOT" && cargo build --release --bins) || die "cargo build --release failed"
fi
for bin in "$BENCH_VIGILD" "$BENCH_VIGILCTL"; do
    [[ -x $bin ]] || die "$bin is missing; run cargo build --release"
done

# --- cleanup: only what this script started ---------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench-update.XXXXXX")
# The hooks run as nobody: they must reach their working directory.
chmod 755 "$TMP"
export BENCH_TMP=$TMP
py_pid=''
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    # The python program stops its own children, and the dbus-daemon, by PID.
    if [[ -n $py_pid ]] && kill -0 "$py_pid" 2>/dev/null; then
        kill -TERM "$py_pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$py_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$py_pid" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat >"$TMP/bench.py" <<'PY'
import datetime, json, math, os, shutil, signal, socket, statistics, subprocess, sys, time

VIGILD = os.environ["BENCH_VIGILD"]
VIGILCTL = os.environ["BENCH_VIGILCTL"]
RUNS = int(os.environ["BENCH_RUNS"])
WINDOW = int(os.environ["BENCH_WINDOW"])
HOOK_SLEEP = os.environ["BENCH_HOOK_SLEEP"]
POLL = int(os.environ["BENCH_POLL_MS"]) / 1000.0
DOCKER = os.environ["BENCH_DOCKER"] == "1"
ROOT = os.environ["BENCH_ROOT"]
TMP = os.environ["BENCH_TMP"]
IMAGE = "vigil-test/busybox:1"
TAG = f"vigil-bench/update-{os.getpid()}:stack"
OLD, NEW = "1.0.0", "2.0.0"
FINAL = ("committed", "rolled-back", "failed", "refused")
DEADLINE = 60.0  # seconds any one wait may take

STATE = os.path.join(TMP, "state")
KEYS = os.path.join(TMP, "keys")
KEY = os.path.join(TMP, "signer.key")
POLICIES = os.path.join(TMP, "policies")
CONFIG = os.path.join(TMP, "vigil.toml")
LOG = os.path.join(TMP, "vigild.log")
BUS = "unix:path=" + os.path.join(TMP, "bus")

LIVE = []  # Popen objects not yet reaped: stopped on the way out, by PID
BUS_PID = None
TAGGED = False
POLLS = []  # (start of a poll) per poll, per wait loop: the poll period


def on_term(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, on_term)


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def log_tail(n=40):
    try:
        with open(LOG, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def fail(msg, doc=None):
    """Exits 1: vigild's last log lines, the run's document, and last the reason."""
    text = f"--- vigild's log, last lines ---\n{log_tail()}"
    if doc is not None:
        text += "--- the document ---\n" + json.dumps(doc, indent=2) + "\n"
    sys.exit(text + f"bench-update.sh: error: {msg}")


def run_ok(argv, what=None):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{what or ' '.join(argv)} failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- D-Bus, by busctl -------------------------------------------------------------
def call(method, *args):
    """A Manager method: (True, its first string out) or (False, the error)."""
    r = subprocess.run(
        ["busctl", f"--address={BUS}", "--json=short", "call", "org.vigil.Vigil1",
         "/org/vigil/Vigil1", "org.vigil.Vigil1.Manager", method, *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        return False, r.stderr.strip()
    try:
        return True, json.loads(r.stdout)["data"][0]
    except (ValueError, KeyError, IndexError) as e:
        return False, f"unreadable answer ({e}): {r.stdout!r}"


def get_update():
    ok, out = call("GetUpdate")
    if not ok:
        return None
    try:
        return json.loads(out)
    except ValueError:
        fail(f"GetUpdate answered no JSON: {out!r}")


def run_of(doc, run):
    r = doc.get("run") or {}
    return r if r.get("id") == run else None


def wait(what, pred, v):
    """Polls GetUpdate until pred(doc) is true; (the time of that answer, the doc).
    pred(None) is asked too when vigild does not answer (yet)."""
    start = time.monotonic()
    starts = []
    while True:
        starts.append(time.monotonic())
        doc = get_update()
        now = time.monotonic()
        if pred(doc):
            POLLS.append(starts)
            return now, doc
        if v.poll() is not None:
            fail(f"vigild exited ({v.returncode}) while waiting for {what}", doc)
        if now - start > DEADLINE:
            fail(f"{what}: not within {DEADLINE:.0f} s", doc)
        if POLL:
            time.sleep(POLL)


# --- vigild ---------------------------------------------------------------------------
def start_vigild():
    env = {k: val for k, val in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")}
    env["RUST_LOG"] = "info"
    log = open(LOG, "a")
    log.write(f"==== vigild started ({time.strftime('%H:%M:%S')})\n")
    log.flush()
    p = subprocess.Popen(
        [VIGILD, "--foreground", "--config", CONFIG, "--policies", POLICIES,
         "--state-dir", STATE, "--listen", f"127.0.0.1:{free_port()}", "--bus", BUS],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
    log.close()
    LIVE.append(p)
    return p


def stop_vigild(p, sig=signal.SIGTERM):
    if p.returncode is None:
        try:
            p.send_signal(sig)
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in LIVE:
        LIVE.remove(p)


def on_bus(v):
    return wait("vigild on the bus", lambda d: d is not None, v)[0]


def stop_all():
    for p in list(LIVE):
        stop_vigild(p, signal.SIGKILL)
    if BUS_PID:
        try:
            os.kill(BUS_PID, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if TAGGED:
        subprocess.run(["docker", "rmi", TAG], capture_output=True)


# --- the box --------------------------------------------------------------------------
def reset():
    """Release 1.0.0 current and alone, no staging; the journal stays."""
    releases = os.path.join(STATE, "releases")
    shutil.rmtree(releases, ignore_errors=True)
    shutil.rmtree(os.path.join(STATE, "staging"), ignore_errors=True)
    os.makedirs(os.path.join(releases, OLD))
    with open(os.path.join(releases, OLD, "compose.yml"), "w") as f:
        f.write(f"version {OLD}\n")
    os.symlink(OLD, os.path.join(releases, "current"))
    if DOCKER:
        run_ok(["docker", "tag", IMAGE, TAG])


def current():
    try:
        return os.readlink(os.path.join(STATE, "releases", "current"))
    except OSError:
        return "(none)"


def states(run):
    out = []
    for e in run.get("events", []):
        if e.get("what") in ("state", "begin") and (not out or out[-1] != e.get("state")):
            out.append(e.get("state"))
    return out


def gate_excess(run, end):
    """From the journal's event times (ms): the last entry into `gating` to `end`, less the
    window; None when the events do not show both."""
    def at(e):
        return datetime.datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp()
    ev = [e for e in run.get("events", []) if e.get("what") in ("state", "begin")]
    gating = [at(e) for e in ev if e.get("state") == "gating"]
    fin = [at(e) for e in ev if e.get("state") == end]
    if not gating or not fin:
        return None
    return fin[-1] - gating[-1] - WINDOW


def make_bundle(label, hook):
    work = os.path.join(TMP, f"make-{label}")
    payload = os.path.join(work, "payload")
    os.makedirs(os.path.join(payload, "images"))
    with open(os.path.join(payload, "compose.yml"), "w") as f:
        f.write(f"version {NEW}\n")
    steps = ""
    if DOCKER:
        run_ok(["docker", "save", "-o", os.path.join(payload, "images", "app.tar"), TAG])
        steps += '[[step]]\ndo = "docker-load"\nfile = "payload/images/app.tar"\n\n'
    steps += ('[[step]]\ndo = "install"\nfile = "payload/compose.yml"\nto = "compose.yml"\n\n'
              f'[[step]]\ndo = "hook"\nname = "{hook}"\n\n')
    manifest = os.path.join(work, "manifest.toml")
    with open(manifest, "w") as f:
        f.write(f'[bundle]\nname = "stack"\nversion = "{NEW}"\n\n{steps}'
                f'[gate]\nchecks = ["stack"]\nwindow = "{WINDOW}s"\ntimeout = "30s"\n')
    out = os.path.join(TMP, f"stack-{NEW}-{label}.vigil")
    run_ok([VIGILCTL, "bundle", "create", "--manifest", manifest, "--payload", payload,
            "--key", KEY, "-o", out], what="vigilctl bundle create")
    return out


def apply(bundle):
    ok, run = call("ApplyUpdate", "s", bundle)
    if not ok or not run:
        fail(f"ApplyUpdate {bundle}: {run}")
    return run


def ended(run):
    return lambda d: (d is not None and d.get("state") == "idle"
                      and (run_of(d, run) or {}).get("state") in FINAL)


def pct(xs, p):
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


try:
    # --- set-up ------------------------------------------------------------------------
    for d in (STATE, KEYS, POLICIES):
        os.makedirs(d)
    run_ok(["minisign", "-G", "-W", "-p", os.path.join(KEYS, "signer.pub"), "-s", KEY],
           what="minisign -G -W")
    with open(os.path.join(POLICIES, "gate.toml"), "w") as f:
        f.write('[[check]]\nname = "stack"\nprobe = "exec"\ncommand = ["/bin/true"]\n'
                'every = "100ms"\n')
    with open(CONFIG, "w") as f:
        f.write(f'[update]\nkeys_dir = "{KEYS}"\n\n'
                '[hooks.noop]\ncommand = ["/bin/true"]\n\n'
                f'[hooks.slow]\ncommand = ["/bin/sh", "-c", "sleep {HOOK_SLEEP}"]\n')
    out = subprocess.run(["dbus-daemon", "--session", f"--address={BUS}", "--fork",
                          "--print-pid", "--nopidfile"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"dbus-daemon failed: {out.stderr}")
    BUS_PID = int(out.stdout.split()[0])
    if DOCKER:
        TAGGED = True
        run_ok(["docker", "tag", IMAGE, TAG])
    commit_bundle = make_bundle("commit", "noop")
    kill_bundle = make_bundle("kill", "slow")
    load_before = loadavg()

    # --- (1) apply -> committed ------------------------------------------------------
    say(f"== apply -> committed: {RUNS} runs")
    commit, commit_gate = [], []
    for i in range(RUNS):
        reset()
        v = start_vigild()
        on_bus(v)
        t0 = time.monotonic()
        run = apply(commit_bundle)
        t1, doc = wait(f"run {run} to end", ended(run), v)
        r = run_of(doc, run)
        if r["state"] != "committed" or current() != NEW:
            fail(f"run {run} ended {r['state']} (current -> {current()}), not committed", r)
        want = ["verified", "staged", "backed-up", "applying", "gating", "committed"]
        if states(r) != want:
            fail(f"run {run} went through {states(r)}, not {want}", r)
        stop_vigild(v)
        commit.append(t1 - t0 - WINDOW)
        commit_gate.append(gate_excess(r, "committed"))
        say(f"  run {i + 1}: {t1 - t0:.3f} s, {commit[-1] * 1000:.0f} ms without the window")

    # --- (2) SIGKILL in applying -> restart -> rolled back ------------------------------
    say(f"== SIGKILL in applying -> restart -> rolled back: {RUNS} runs")
    total, to_bus, bus_to_end, kill_gate = [], [], [], []
    for i in range(RUNS):
        reset()
        v = start_vigild()
        on_bus(v)
        run = apply(kill_bundle)

        def applying(d, run=run):
            r = run_of(d, run) if d else None
            if r and r.get("state") not in ("verified", "staged", "backed-up", "applying"):
                fail(f"run {run} is {r.get('state')}: the kill did not land in applying", r)
            return bool(r) and r.get("state") == "applying"

        wait(f"run {run} applying", applying, v)
        v.send_signal(signal.SIGKILL)
        v.wait()
        LIVE.remove(v)
        t0 = time.monotonic()
        v = start_vigild()
        t1 = on_bus(v)
        t2, doc = wait(f"run {run} to end after the restart", ended(run), v)
        r = run_of(doc, run)
        st = states(r)
        if r["state"] != "rolled-back" or current() != OLD:
            fail(f"run {run} ended {r['state']} (current -> {current()}), not rolled-back", r)
        if "applying" not in st or st[st.index("applying") + 1:][:1] != ["rolling-back"]:
            fail(f"run {run} went through {st}: not from applying to rolling-back", r)
        stop_vigild(v)
        total.append(t2 - t0)
        to_bus.append(t1 - t0)
        bus_to_end.append(t2 - t1)
        kill_gate.append(gate_excess(r, "rolled-back"))
        say(f"  run {i + 1}: restart -> bus {to_bus[-1] * 1000:.0f} ms, "
            f"bus -> rolled back {bus_to_end[-1] * 1000:.0f} ms ({' → '.join(st)})")
    load_after = loadavg()
finally:
    stop_all()

# --- table -----------------------------------------------------------------------------
periods = [b - a for starts in POLLS for a, b in zip(starts, starts[1:])]
period = statistics.mean(periods) * 1000 if periods else float("nan")
version = run_ok([VIGILD, "--version"])
head = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                      capture_output=True, text=True).stdout.strip() or "?"
docker_note = (f"docker-load of {IMAGE} ({os.path.getsize(os.path.join(TMP, 'make-commit', 'payload', 'images', 'app.tar')) / 2**20:.1f} MiB) in each bundle"
               if DOCKER else "no docker step (vigil's own overhead)")


def ms(x):
    return f"{x * 1000:.0f} ms"


w = f"{WINDOW} s"
rows = [
    (f"apply → committed (gate window {w} excluded)", commit),
    (f"… of which the gate past its window (journal: gating → committed − {w})", commit_gate),
    (f"kill in applying: restart → rolled back (holds the rollback's gate window, {w})", total),
    ("… restart → on the bus", to_bus),
    (f"… on the bus → rolled back (holds the gate window, {w})", bus_to_end),
    (f"… of which the gate past its window (journal: gating → rolled-back − {w})", kill_gate),
    (f"kill in applying: restart → rolled back, gate window {w} excluded",
     [t - WINDOW for t in total]),
]
print()
build = ("release build" if VIGILD.endswith("/target/release/vigild")
         else f"binary {VIGILD}")
print(f"{version} (git {head}), {build}; bundle {NEW}: install compose.yml + a hook "
      f"(commit: /bin/true; kill: sleep {HOOK_SLEEP} s), gate `stack` (exec /bin/true every "
      f"100 ms), window {w}; {docker_note}")
print(f"{RUNS} runs each, a fresh vigild per run; states by polling GetUpdate with busctl "
      f"every {POLL * 1000:.0f} ms (mean poll period {period:.1f} ms); {os.cpu_count()} CPUs, "
      f"load average {load_before} before, {load_after} after")
print()
print("| measurement | median | p90 | runs |")
print("| --- | ---: | ---: | ---: |")
for name, xs in rows:
    xs = [x for x in xs if x is not None]
    if xs:
        print(f"| {name} | {ms(statistics.median(xs))} | {ms(pct(xs, 90))} | {len(xs)} |")
    else:
        print(f"| {name} | — | — | 0 |")
PY

python3 "$TMP/bench.py" &
py_pid=$!
wait "$py_pid"
