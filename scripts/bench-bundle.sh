#!/usr/bin/env bash
# Benchmark of `vigilctl update verify` on a large bundle, with sha256sum as yardstick.
#
# Run from anywhere, after `cargo build --release` (minisign, zstd, sha256sum and python3
# needed; about 3 × BENCH_SIZE_MIB of free space in $TMPDIR, or /tmp):
#
#     bash scripts/bench-bundle.sh
#
# What it does, all in one temporary directory (removed at the end):
#   - an encrypted minisign key (password piped to `minisign -G`; the crate `bundle
#     create` uses refuses an unencrypted -W key), passed with --password-file;
#   - BENCH_SIZE_MIB MiB of incompressible data (/dev/urandom) in up to 4 files, a manifest
#     with a docker-load step per file, and two bundles: `vigilctl bundle create … -o
#     plain.vigil` and the same with `--zstd -o zstd.vigil` (the payload is then deleted);
#   - on each bundle, with the page cache warm (every command is run once before it is
#     timed, so all of them read from memory, not from the disk), BENCH_RUNS interleaved
#     rounds of
#         sha256sum FILE
#         zstd -dc FILE | sha256sum               (zstd bundle only)
#         vigilctl update verify FILE --keys DIR --installed 0.0.1 --config EMPTY
#     (vigilctl must exit 0), each timed from spawn to exit; the median is kept.
#     Throughput = the bundle file's bytes / time, so for zstd it is compressed bytes/s
#     for every command and the ratio is a ratio of times.
#   - vigilctl's peak RSS on both bundles, and, to show it does not grow with the bundle,
#     on a BENCH_SMALL_MIB bundle too: ru_maxrss of each command run under GNU
#     /usr/bin/time -f %M (apt-get install time). Linux keeps a process's high-water mark
#     across exec, so a command forked straight from python would be charged python's
#     ~10-20 MiB; without GNU time that is what happens, and the header says so. The RSS
#     of `true` measured the same way is printed as the floor.
# One table: metric | vigilctl | reference | ratio | goal.
#
# Goals (the update-bundle issue): verify ≥ 0.9× the throughput of the reference,
# plain and zstd; peak RSS ≤ 32 MiB whatever the bundle's size. The reference a goal
# applies to: for the plain bundle `sha256sum FILE`; for the zstd bundle `zstd -dc FILE |
# sha256sum` (decompress + hash, the same work verify does); `sha256sum` of the zstd file
# is printed for information only.
# coreutils' sha256sum is plain C (no SHA-NI): where `openssl` is on PATH, `openssl dgst
# -sha256 FILE` (SHA-NI where the CPU has it) and `zstd -dc FILE | openssl dgst -sha256`
# are timed too and printed for information, a harder bar than the goal's.
#
# Environment:
#   BENCH_SIZE_MIB=1024   payload size (incompressible), MiB
#   BENCH_SMALL_MIB=16    the small bundle for the RSS comparison (0: leave it out)
#   BENCH_RUNS=3          timed rounds per bundle (median)
#   BENCH_STRICT=1        exit 1 when a goal is missed (default: report only)
#   BENCH_VIGILCTL=PATH   the binary to measure (default: target/release/vigilctl)
#
# Both cores are shared by everything here (zstd and sha256sum in the pipeline run in
# parallel, as verify does not); other work on the machine skews all figures alike, but
# the rounds are interleaved so a burst of it does not land on one command only. The load
# average before and after is printed. Only processes started here are stopped.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BENCH_VIGILCTL=${BENCH_VIGILCTL:-$ROOT/target/release/vigilctl}
export BENCH_SIZE_MIB=${BENCH_SIZE_MIB:-1024}
export BENCH_SMALL_MIB=${BENCH_SMALL_MIB:-16}
export BENCH_RUNS=${BENCH_RUNS:-3}
export BENCH_STRICT=${BENCH_STRICT:-0}

die() {
    printf 'bench-bundle.sh: error: %s\n' "$*" >&2
    exit 1
}

[[ -x $BENCH_VIGILCTL ]] || die "$BENCH_VIGILCTL is missing; run cargo build --release"
for cmd in minisign zstd sha256sum python3; do
    command -v "$cmd" >/dev/null || die "'$cmd' not on PATH (apt-get install -y minisign zstd coreutils python3)"
done
[[ $BENCH_SIZE_MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MIB must be a positive number"
[[ $BENCH_SMALL_MIB =~ ^[0-9]+$ ]] || die "BENCH_SMALL_MIB must be a number"
[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive number"

# --- cleanup: only what this script started ---------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench-bundle.XXXXXX")
export BENCH_TMP=$TMP
py_pid=''
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    # The python program stops its own children (by PID) when it is told to stop.
    if [[ -n $py_pid ]] && kill -0 "$py_pid" 2>/dev/null; then
        kill -TERM "$py_pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
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
import os, shutil, signal, statistics, subprocess, sys, time

VIGILCTL = os.environ["BENCH_VIGILCTL"]
SIZE_MIB = int(os.environ["BENCH_SIZE_MIB"])
SMALL_MIB = int(os.environ["BENCH_SMALL_MIB"])
RUNS = int(os.environ["BENCH_RUNS"])
STRICT = os.environ["BENCH_STRICT"] == "1"
TMP = os.environ["BENCH_TMP"]
MIB = 1 << 20
PASSWORD = "bench-password"
OPENSSL = shutil.which("openssl")  # a SHA-NI-using hasher, for information

LIVE = []  # Popen objects not yet reaped: stopped on the way out, by PID


def on_term(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, on_term)


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def stop_live():
    for p in LIVE:
        if p.returncode is None:
            try:
                p.kill()
                os.waitpid(p.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    LIVE.clear()


def find_gnu_time():
    """/usr/bin/time if it is GNU time (-f %M): it forks the command from a ~1 MiB process.
    A child's ru_maxrss also counts the memory of the process it was forked from (Linux
    keeps the high-water mark across exec), so forking from python would add its ~10-20
    MiB to every figure."""
    path = "/usr/bin/time"
    if not os.access(path, os.X_OK):
        return None
    out = os.path.join(TMP, "probe.rss")
    r = subprocess.run([path, "-o", out, "-f", "%M", "true"], capture_output=True)
    try:
        return path if r.returncode == 0 and int(open(out).read().split()[-1]) > 0 else None
    except (OSError, ValueError, IndexError):
        return None


def reap(p, rss_file):
    """wait4 on one child: (exit code, the command's peak RSS in KiB)."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    LIVE.remove(p)
    rss = ru.ru_maxrss
    if rss_file:
        try:
            rss = int(open(rss_file).read().split()[-1])
        except (OSError, ValueError, IndexError):
            rss = -1
    return p.returncode, rss


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    LIVE.append(p)
    return p


def wrap(argv, tag):
    """argv under GNU time (peak RSS to a file), if there is one; (argv, that file)."""
    if not GNU_TIME:
        return argv, None
    rss_file = os.path.join(TMP, f"{tag}.rss")
    return [GNU_TIME, "-o", rss_file, "-f", "%M", *argv], rss_file


def timed(argv, check_out=None):
    """Runs argv alone; (seconds, peak RSS KiB). Exits on a failure."""
    err = os.path.join(TMP, "err.log")
    cmd, rss_file = wrap(argv, "one")
    with open(err, "wb") as e:
        t0 = time.monotonic()
        p = spawn(cmd, stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE if check_out else subprocess.DEVNULL, stderr=e)
        out = p.stdout.read() if check_out else b""
        rc, rss = reap(p, rss_file)
        dt = time.monotonic() - t0
    if rc != 0:
        sys.exit(f"{' '.join(argv)}: exit {rc}\n{open(err, errors='replace').read()}"
                 f"{out.decode(errors='replace')}")
    if check_out:
        check_out(out.decode(errors="replace"))
    return dt, rss


def timed_pipe(a, b):
    """Runs a | b; (seconds until both exited, peak RSS KiB of a, of b)."""
    ca, fa = wrap(a, "a")
    cb, fb = wrap(b, "b")
    t0 = time.monotonic()
    pa = spawn(ca, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    pb = spawn(cb, stdin=pa.stdout, stdout=subprocess.DEVNULL)
    pa.stdout.close()
    rb, rss_b = reap(pb, fb)
    ra, rss_a = reap(pa, fa)
    dt = time.monotonic() - t0
    if ra != 0 or rb != 0:
        sys.exit(f"{' '.join(a)} | {' '.join(b)}: exit {ra}, {rb}")
    return dt, rss_a, rss_b


def run_quiet(argv, stdin_text=None, what=None):
    p = spawn(argv, stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = p.communicate(stdin_text.encode() if stdin_text is not None else None)
    LIVE.remove(p)
    if p.returncode != 0:
        sys.exit(f"{what or argv[0]} failed (exit {p.returncode}):\n{out.decode(errors='replace')}")
    return out.decode(errors="replace")


def make_payload(dir_, mib, label):
    os.makedirs(os.path.join(dir_, "images"))
    n = min(4, mib)
    sizes = [mib // n + (1 if i < mib % n else 0) for i in range(n)]
    names, done, t0 = [], 0, time.monotonic()
    for i, s in enumerate(sizes):
        name = f"images/part{i}.tar"
        with open(os.path.join(dir_, name), "wb") as f:
            for _ in range(s // 4):
                f.write(os.urandom(4 * MIB))
                done += 4
                if done % 128 == 0:
                    say(f"  {label}: {done} / {mib} MiB of random data "
                        f"({done / max(time.monotonic() - t0, 1e-9):.0f} MiB/s)")
            for _ in range(s % 4):
                f.write(os.urandom(MIB))
                done += 1
        names.append(name)
    return names


def manifest(path, names, version):
    with open(path, "w") as f:
        f.write(f'[bundle]\nname = "bench"\nversion = "{version}"\n')
        for n in names:
            f.write(f'\n[[step]]\ndo = "docker-load"\nfile = "payload/{n}"\n')


def create(label, mib, version):
    payload = os.path.join(TMP, f"payload-{label}")
    names = make_payload(payload, mib, label)
    man = os.path.join(TMP, f"manifest-{label}.toml")
    manifest(man, names, version)
    out = {}
    for kind, extra in (("plain", []), ("zstd", ["--zstd"])):
        dst = os.path.join(TMP, f"{label}-{kind}.vigil")
        say(f"  {label}: bundle create{' --zstd' if extra else ''} -> {os.path.basename(dst)}")
        t0 = time.monotonic()
        run_quiet([VIGILCTL, "bundle", "create", "--manifest", man, "--payload", payload,
                   "--key", KEY, "--password-file", PWFILE, *extra, "-o", dst],
                  what="vigilctl bundle create")
        say(f"    {os.path.getsize(dst) / MIB:.1f} MiB in {time.monotonic() - t0:.1f} s")
        out[kind] = dst
    for root, dirs, files in os.walk(payload, topdown=False):
        for f in files:
            os.remove(os.path.join(root, f))
        for d in dirs:
            os.rmdir(os.path.join(root, d))
    os.rmdir(payload)
    return out


def verify_argv(path):
    return [VIGILCTL, "update", "verify", path, "--keys", KEYS, "--installed", "0.0.1",
            "--config", CONFIG]


def expect(compressed):
    def check(out):
        if "verified" not in out or (", zstd" in out) != compressed:
            sys.exit(f"unexpected output of update verify (zstd expected: {compressed}):\n{out}")
    return check


def cpu_facts():
    model, flags = "?", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k = k.strip()
            if k == "model name" and model == "?":
                model = v.strip()
            elif k == "flags" and not flags:
                flags = set(v.split())
    return model, flags


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


try:
    # --- keys, config --------------------------------------------------------------
    KEYS = os.path.join(TMP, "keys")
    os.makedirs(KEYS)
    KEY = os.path.join(TMP, "bench.key")
    PWFILE = os.path.join(TMP, "password")
    CONFIG = os.path.join(TMP, "vigil.toml")
    with open(PWFILE, "w") as f:
        f.write(PASSWORD + "\n")
    with open(CONFIG, "w") as f:
        f.write("")
    run_quiet(["minisign", "-G", "-p", os.path.join(KEYS, "bench.pub"), "-s", KEY],
              stdin_text=f"{PASSWORD}\n{PASSWORD}\n", what="minisign -G")
    GNU_TIME = find_gnu_time()
    # What the measuring itself adds to a peak RSS: that of `true`, measured the same way.
    RSS_FLOOR = timed(["true"])[1]
    load_before = loadavg()

    # --- bundles -------------------------------------------------------------------
    say(f"== making bundles: {SIZE_MIB} MiB of incompressible payload")
    big = create("big", SIZE_MIB, "1.0.0")
    small = create("small", SMALL_MIB, "1.0.0") if SMALL_MIB > 0 else None

    # --- timing --------------------------------------------------------------------
    results = {}
    for kind in ("plain", "zstd"):
        path = big[kind]
        size = os.path.getsize(path)
        z = kind == "zstd"
        say(f"== {kind}: {size / MIB:.1f} MiB; warm-up (page cache), then {RUNS} timed rounds")
        # Warm-up: every command once, untimed, so each timed run reads from memory.
        timed(["sha256sum", path])
        if z:
            timed_pipe(["zstd", "-dc", path], ["sha256sum"])
        if OPENSSL:
            timed([OPENSSL, "dgst", "-sha256", path])
            if z:
                timed_pipe(["zstd", "-dc", path], [OPENSSL, "dgst", "-sha256"])
        timed(verify_argv(path), check_out=expect(z))
        sha, pipe, ossl, ossl_pipe, ver, rss, zrss = [], [], [], [], [], [], []
        sha_rss = 0
        for r in range(RUNS):
            dt, srss = timed(["sha256sum", path])
            sha.append(dt)
            sha_rss = max(sha_rss, srss)
            if z:
                dt, ra, rb = timed_pipe(["zstd", "-dc", path], ["sha256sum"])
                pipe.append(dt)
                zrss.append(ra + rb)
            if OPENSSL:
                ossl.append(timed([OPENSSL, "dgst", "-sha256", path])[0])
                if z:
                    ossl_pipe.append(timed_pipe(["zstd", "-dc", path],
                                                [OPENSSL, "dgst", "-sha256"])[0])
            dt, vrss = timed(verify_argv(path))
            ver.append(dt)
            rss.append(vrss)
            say(f"  round {r + 1}: sha256sum {sha[-1]:.3f} s"
                + (f", zstd -dc | sha256sum {pipe[-1]:.3f} s" if z else "")
                + (f", openssl dgst {ossl[-1]:.3f} s" if ossl else "")
                + (f", zstd -dc | openssl dgst {ossl_pipe[-1]:.3f} s" if ossl_pipe else "")
                + f", update verify {ver[-1]:.3f} s ({vrss / 1024:.1f} MiB peak)")
        results[kind] = dict(
            size=size, sha=statistics.median(sha), pipe=statistics.median(pipe) if z else None,
            ver=statistics.median(ver), rss=max(rss), sha_rss=sha_rss,
            zrss=max(zrss) if z else None,
            ossl=statistics.median(ossl) if ossl else None,
            ossl_pipe=statistics.median(ossl_pipe) if ossl_pipe else None)
    small_rss = {}
    if small:
        for kind in ("plain", "zstd"):
            timed(verify_argv(small[kind]), check_out=expect(kind == "zstd"))
            small_rss[kind] = max(timed(verify_argv(small[kind]))[1] for _ in range(RUNS))
    load_after = loadavg()
finally:
    stop_live()

# --- table -------------------------------------------------------------------------
model, flags = cpu_facts()
version = subprocess.run([VIGILCTL, "--version"], capture_output=True, text=True).stdout.strip()
rss_goal_kib = 32 * 1024
missed = []


def mibs(size, secs):
    return size / MIB / secs


def goal_ratio(name, ratio):
    ok = ratio >= 0.9
    if not ok:
        missed.append(name)
    return f"≥ 0.9× {'PASS' if ok else 'MISS'}"


def goal_rss(name, kib):
    ok = kib <= rss_goal_kib
    if not ok:
        missed.append(name)
    return f"≤ 32 MiB {'PASS' if ok else 'MISS'}"


rows = []
p, z = results["plain"], results["zstd"]
v, ref = mibs(p["size"], p["ver"]), mibs(p["size"], p["sha"])
rows.append(("plain: throughput vs `sha256sum FILE`",
             f"{v:.0f} MiB/s ({p['ver']:.3f} s)", f"{ref:.0f} MiB/s ({p['sha']:.3f} s)",
             f"{v / ref:.2f}×", goal_ratio("plain throughput", v / ref)))
v, ref = mibs(z["size"], z["ver"]), mibs(z["size"], z["pipe"])
rows.append(("zstd: throughput vs zstd -dc FILE, piped to sha256sum (decompress+hash)",
             f"{v:.0f} MiB/s ({z['ver']:.3f} s)", f"{ref:.0f} MiB/s ({z['pipe']:.3f} s)",
             f"{v / ref:.2f}×", goal_ratio("zstd throughput", v / ref)))
ref = mibs(z["size"], z["sha"])
rows.append(("zstd: throughput vs `sha256sum FILE` (hash only)",
             f"{v:.0f} MiB/s", f"{ref:.0f} MiB/s ({z['sha']:.3f} s)", f"{v / ref:.2f}×",
             "(info)"))
if p["ossl"]:
    v, ref = mibs(p["size"], p["ver"]), mibs(p["size"], p["ossl"])
    rows.append(("plain: throughput vs `openssl dgst -sha256 FILE` (SHA-NI)",
                 f"{v:.0f} MiB/s", f"{ref:.0f} MiB/s ({p['ossl']:.3f} s)", f"{v / ref:.2f}×",
                 "(info)"))
    v, ref = mibs(z["size"], z["ver"]), mibs(z["size"], z["ossl_pipe"])
    rows.append(("zstd: throughput vs zstd -dc FILE, piped to openssl dgst -sha256",
                 f"{v:.0f} MiB/s", f"{ref:.0f} MiB/s ({z['ossl_pipe']:.3f} s)",
                 f"{v / ref:.2f}×", "(info)"))
rows.append((f"plain: peak RSS, {p['size'] / MIB:.0f} MiB bundle (ref: sha256sum)",
             f"{p['rss'] / 1024:.1f} MiB", f"{p['sha_rss'] / 1024:.1f} MiB", "—",
             goal_rss("plain RSS", p["rss"])))
rows.append((f"zstd: peak RSS, {z['size'] / MIB:.0f} MiB bundle (ref: zstd -dc + sha256sum)",
             f"{z['rss'] / 1024:.1f} MiB", f"{z['zrss'] / 1024:.1f} MiB", "—",
             goal_rss("zstd RSS", z["rss"])))
for kind in small_rss:
    rows.append((f"{kind}: peak RSS, {SMALL_MIB} MiB bundle (growth)",
                 f"{small_rss[kind] / 1024:.1f} MiB", "—", "—", "(info)"))

print()
print(f"vigilctl {VIGILCTL} ({version}); {model}, {os.cpu_count()} CPUs, "
      f"sha_ni {'yes' if 'sha_ni' in flags else 'no'}, avx2 {'yes' if 'avx2' in flags else 'no'}; "
      f"{os.uname().release}")
print(f"payload {SIZE_MIB} MiB incompressible in {min(4, SIZE_MIB)} file(s); median of {RUNS} "
      f"interleaved rounds, page cache warm (each command run once before timing); "
      f"load average {load_before} before, {load_after} after")
print(f"peak RSS: ru_maxrss of each command, "
      + (f"forked by {GNU_TIME} -f %M" if GNU_TIME else
         "forked by python (no GNU /usr/bin/time: figures include python's own memory)")
      + f"; `true` measured so reads {RSS_FLOOR / 1024:.1f} MiB")
print()
print("| metric | vigilctl | reference | ratio | goal |")
print("| --- | ---: | ---: | ---: | --- |")
for r in rows:
    print("| " + " | ".join(r) + " |")
if missed:
    print()
    print("goals missed: " + ", ".join(missed))
    if STRICT:
        sys.exit(1)
PY

python3 "$TMP/bench.py" &
py_pid=$!
wait "$py_pid"
