#!/usr/bin/env bash
# Benchmark of vigild's start-up, heartbeat and memory, with nginx as yardstick.
#
# Run as root from anywhere, after `cargo build --release`, on a machine with
# wrk, nginx-light, dbus, curl and python3 (scripts/test.sh installs them):
#
#     bash scripts/bench.sh
#
# Measures
#   (a) start -> READY=1: spawn of target/release/vigild until its sd_notify
#       READY=1 datagram, median of 5 starts (a python3 helper owns
#       NOTIFY_SOCKET and does the timing);
#   (b,c) GET /api/system/heartbeat with `wrk -t2 -c32 -d10s --latency`
#       against vigild and against nginx serving the same bytes from a file;
#   (d) vigild's VmRSS after BENCH_RSS_WAIT seconds of running its default
#       checks (and again after the load).
# and prints one table: metric | vigild | nginx | ratio | goal.
#
# Environment:
#   BENCH_RSS_WAIT=60      seconds from vigild's start to the idle RSS sample
#   BENCH_DURATION=10s     wrk duration per run
#   BENCH_STARTS=5         starts for the start -> READY median
#   BENCH_STRICT=1         exit 1 when a goal is missed (default: report only)
#   BENCH_VIGILD=PATH      the binary to measure (default: target/release/vigild)
#
# Fairness: vigild runs a multi-threaded tokio runtime, which uses both cores
# of the reference box; nginx with worker_processes 1 uses one. That row is the
# one the goal applies to (a single-purpose C server on one core is the bar
# for a heartbeat endpoint). A second nginx row with worker_processes auto is
# printed for information. wrk itself runs on the same 2 cores, for both.
# nginx logs nothing per request and keeps connections open as long as hyper
# does (keepalive_requests raised), so both serve the same keep-alive load.
#
# vigild is started the way an operator would, without --policies, so it uses
# /usr/lib/vigil/policies.d and /etc/vigil/policies.d, and its built-in default
# checks when neither holds a policy (a warning is printed if they do).
#
# Only processes started here are stopped on exit (by PID, trap EXIT).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VIGILD=${BENCH_VIGILD:-$ROOT/target/release/vigild}

RSS_WAIT=${BENCH_RSS_WAIT:-60}
DURATION=${BENCH_DURATION:-10s}
STARTS=${BENCH_STARTS:-5}
STRICT=${BENCH_STRICT:-0}

VIGILD_ADDR=127.0.0.1:19480
NGINX1_ADDR=127.0.0.1:19481     # worker_processes 1
NGINXN_ADDR=127.0.0.1:19482     # worker_processes auto
HEARTBEAT_PATH=/api/system/heartbeat
FALLBACK_BODY='{"status":"ok","uptime":1,"version":"0.1.0","timestamp":"2026-02-17T10:00:00.000Z"}'

die() {
    printf 'bench.sh: error: %s\n' "$*" >&2
    exit 1
}

# --- prerequisites ------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || die "run as root"
[[ -x $VIGILD ]] || die "$VIGILD not found: run 'cargo build --release' first"
for cmd in wrk nginx dbus-daemon curl python3; do
    command -v "$cmd" >/dev/null || die "'$cmd' not on PATH (apt-get install -y wrk nginx-light dbus curl python3)"
done
[[ $RSS_WAIT =~ ^[0-9]+$ ]] || die "BENCH_RSS_WAIT must be a number of seconds"
[[ $STARTS =~ ^[1-9][0-9]*$ ]] || die "BENCH_STARTS must be a positive number"
for dir in /usr/lib/vigil/policies.d /etc/vigil/policies.d; do
    if compgen -G "$dir/*.toml" >/dev/null; then
        echo "warning: $dir holds policies; vigild will run those, not its built-in defaults" >&2
    fi
done
if [[ -e /etc/vigil/vigil.toml ]]; then
    echo "warning: /etc/vigil/vigil.toml exists and may change vigild's behaviour" >&2
fi

# --- cleanup: only what this script started ---------------------------------
TMP=$(mktemp -d /tmp/vigil-bench.XXXXXX)
PIDS=()              # processes started here, stopped in reverse order
# shellcheck disable=SC2317 # called from the EXIT trap
stop_pid() {         # stop_pid PID: TERM, up to 5 s grace, then KILL
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    local rc=$? i pid
    trap - EXIT INT TERM
    # Daemons the python helper spawned and may not have reaped (interrupted):
    # stop them only if the PID still runs our binary (not a recycled PID).
    if [[ -f $TMP/ready-pids ]]; then
        while read -r pid; do
            if tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$VIGILD"; then
                stop_pid "$pid"
            fi
        done <"$TMP/ready-pids"
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    wait 2>/dev/null || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- private D-Bus ------------------------------------------------------------
BUS=unix:path=$TMP/bus
bus_pid=$(dbus-daemon --session --address="$BUS" --fork --print-pid)
PIDS+=("$bus_pid")
mkdir -p "$TMP/state"
VIGILD_ARGS=(--foreground --state-dir "$TMP/state" --bus "$BUS" --listen "$VIGILD_ADDR")

# --- (a) start -> READY=1 -----------------------------------------------------
cat >"$TMP/ready.py" <<'PY'
"""Spawn vigild STARTS times; time spawn -> READY=1 on NOTIFY_SOCKET (ms)."""
import os, signal, socket, statistics, struct, subprocess, sys, time

notify_path, pid_log, starts, argv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
TIMEOUT = 30.0

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(notify_path)
# Sender credentials, so a datagram from an earlier instance is never counted.
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
env = dict(os.environ, NOTIFY_SOCKET=notify_path)
env.pop("WATCHDOG_USEC", None)
env.pop("LISTEN_FDS", None)

def drain():
    sock.setblocking(False)
    try:
        while True:
            sock.recv(4096)
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)

def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

times = []
for i in range(starts):
    drain()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(notify_path + ".log", "ab"))
    with open(pid_log, "a") as f:
        f.write(f"{proc.pid}\n")
    ready = None
    try:
        deadline = t0 + TIMEOUT
        while ready is None:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                break
            sock.settimeout(min(left, 0.1))  # wake up to notice an early exit
            try:
                data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            if pid == proc.pid and b"READY=1" in data.split(b"\n"):
                ready = time.monotonic()
    finally:
        stop(proc)
    if ready is None:
        why = (f"exited with status {proc.returncode} before READY=1"
               if time.monotonic() - t0 < TIMEOUT else f"no READY=1 within {TIMEOUT:.0f}s")
        sys.exit(f"start {i + 1}: {why}; log: {notify_path}.log")
    times.append((ready - t0) * 1000.0)

print(" ".join(f"{t:.1f}" for t in times), file=sys.stderr)
print(f"{statistics.median(times):.1f}")
PY

echo "== (a) start -> READY=1, $STARTS starts"
if ! ready_ms=$(python3 "$TMP/ready.py" "$TMP/notify.sock" "$TMP/ready-pids" "$STARTS" \
    "$VIGILD" "${VIGILD_ARGS[@]}" 2>"$TMP/ready.err"); then
    cat "$TMP/ready.err" >&2
    [[ -f $TMP/notify.sock.log ]] && tail -n 20 "$TMP/notify.sock.log" >&2
    die "vigild did not become ready"
fi
echo "   runs (ms): $(cat "$TMP/ready.err"); median ${ready_ms} ms"

# --- the long-running vigild (b, c, d) ----------------------------------------
echo "== starting vigild on $VIGILD_ADDR"
"$VIGILD" "${VIGILD_ARGS[@]}" </dev/null >"$TMP/vigild.log" 2>&1 &
vigild_pid=$!
vigild_started=$SECONDS
PIDS+=("$vigild_pid")
for ((i = 0; ; i++)); do
    if curl -fsS -o "$TMP/heartbeat.json" "http://$VIGILD_ADDR$HEARTBEAT_PATH" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$vigild_pid" 2>/dev/null || ((i >= 300)); then
        tail -n 20 "$TMP/vigild.log" >&2
        die "vigild's heartbeat did not answer on $VIGILD_ADDR"
    fi
    sleep 0.1
done
if ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/heartbeat.json" 2>/dev/null; then
    echo "warning: vigild's heartbeat is not JSON; nginx serves the documented example" >&2
    printf '%s' "$FALLBACK_BODY" >"$TMP/heartbeat.json"
fi
echo "   heartbeat: $(cat "$TMP/heartbeat.json")"

# --- nginx serving the same bytes ---------------------------------------------
mkdir -p "$TMP/www${HEARTBEAT_PATH%/*}"
cp "$TMP/heartbeat.json" "$TMP/www$HEARTBEAT_PATH"
start_nginx() {      # start_nginx NAME WORKERS ADDR
    local name=$1 workers=$2 addr=$3 dir=$TMP/$1
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
# $name: worker_processes $workers, bench only
user root;
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen $addr;
        root $TMP/www;
        location = $HEARTBEAT_PATH {
            default_type application/json;
        }
        location / { return 404; }
    }
}
EOF
    nginx -q -t -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" ||
        die "nginx rejected $dir/nginx.conf"
    nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" </dev/null >"$dir/out.log" 2>&1 &
    PIDS+=("$!")
    printf -v "${name}_pid" '%s' "$!"
    for ((i = 0; ; i++)); do
        curl -fsS -o /dev/null "http://$addr$HEARTBEAT_PATH" 2>/dev/null && break
        ((i < 100)) || die "nginx ($name) did not answer on $addr; see $dir/error.log"
        sleep 0.1
    done
}
nginx1_pid=''        # set by start_nginx
start_nginx nginx1 1 "$NGINX1_ADDR"
start_nginx nginxn auto "$NGINXN_ADDR"
cmp -s <(curl -fsS "http://$NGINX1_ADDR$HEARTBEAT_PATH") "$TMP/heartbeat.json" ||
    die "nginx does not serve the same body as vigild"

# --- (c) wrk --------------------------------------------------------------------
run_wrk() {          # run_wrk NAME ADDR -> $TMP/NAME.wrk
    echo "== (c) wrk -t2 -c32 -d$DURATION --latency http://$2$HEARTBEAT_PATH ($1)"
    wrk -t2 -c32 -d"$DURATION" --latency "http://$2$HEARTBEAT_PATH" >"$TMP/$1.wrk"
    sed 's/^/   /' "$TMP/$1.wrk"
    if grep -q 'Non-2xx or 3xx responses' "$TMP/$1.wrk"; then
        echo "warning: $1 answered some requests with an error status" >&2
    fi
}
wrk_rps() {          # Requests/sec
    awk '/^Requests\/sec:/ { print $2 }' "$TMP/$1.wrk"
}
wrk_p99_ms() {       # the 99% line of the latency distribution, in ms
    awk '$1 == "99%" {
        v = $2; u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
        if (f < 0) { print "?"; exit }
        printf "%.3f\n", v * f }' "$TMP/$1.wrk"
}

# nginx first, while vigild idles towards its RSS sample.
run_wrk nginx1 "$NGINX1_ADDR"
run_wrk nginxn "$NGINXN_ADDR"

# --- (d) RSS --------------------------------------------------------------------
rss_kib() {          # VmRSS of one PID, in KiB
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
tree_rss_kib() {     # VmRSS of a PID and its children, in KiB
    local total child
    total=$(rss_kib "$1")
    for child in $(pgrep -P "$1" || true); do
        total=$((total + $(rss_kib "$child")))
    done
    echo "$total"
}
left=$((RSS_WAIT - (SECONDS - vigild_started)))
if ((left > 0)); then
    echo "== (d) waiting ${left}s more for vigild's idle RSS (BENCH_RSS_WAIT=$RSS_WAIT)"
    sleep "$left" &
    PIDS+=("$!")
    wait $!          # unlike a foreground sleep, wait lets INT/TERM in at once
fi
kill -0 "$vigild_pid" 2>/dev/null || die "vigild exited; see its log above"
rss_idle=$(rss_kib "$vigild_pid")
nginx1_rss=$(tree_rss_kib "$nginx1_pid")

run_wrk vigild "$VIGILD_ADDR"
kill -0 "$vigild_pid" 2>/dev/null || die "vigild exited under load"
rss_load=$(rss_kib "$vigild_pid")

# --- table ----------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a ~ /^[0-9.]+$/) printf "%.2f×", a / b; else print "—" }'; }
verdict() {          # verdict 1|0 -> PASS/MISS
    if [[ $1 == 1 ]]; then echo PASS; else echo MISS; fi
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

v_rps=$(wrk_rps vigild)
n1_rps=$(wrk_rps nginx1)
nn_rps=$(wrk_rps nginxn)
v_p99=$(wrk_p99_ms vigild)
n1_p99=$(wrk_p99_ms nginx1)
nn_p99=$(wrk_p99_ms nginxn)
rps_ok=$(awk -v a="$v_rps" -v b="$n1_rps" 'BEGIN { print (b > 0 && a / b >= 0.8) ? 1 : 0 }')
ready_ok=$(awk -v a="$ready_ms" 'BEGIN { print (a <= 100) ? 1 : 0 }')
rps_verdict=$(verdict "$rps_ok")
ready_verdict=$(verdict "$ready_ok")

{
    printf 'metric\tvigild\tnginx\tratio\tgoal\n'
    printf 'heartbeat req/s (nginx 1 worker)\t%s\t%s\t%s\t≥ 0.8× %s\n' \
        "$v_rps" "$n1_rps" "$(ratio "$v_rps" "$n1_rps")" "$rps_verdict"
    printf 'heartbeat req/s (nginx auto workers)\t%s\t%s\t%s\t(info)\n' \
        "$v_rps" "$nn_rps" "$(ratio "$v_rps" "$nn_rps")"
    printf 'heartbeat p99 ms (nginx 1 worker)\t%s\t%s\t%s\t—\n' \
        "$v_p99" "$n1_p99" "$(ratio "$v_p99" "$n1_p99")"
    printf 'heartbeat p99 ms (nginx auto workers)\t%s\t%s\t%s\t—\n' \
        "$v_p99" "$nn_p99" "$(ratio "$v_p99" "$nn_p99")"
    printf 'start → READY=1 ms (median of %s)\t%s\t—\t—\t≤ 100 ms %s\n' \
        "$STARTS" "$ready_ms" "$ready_verdict"
    printf 'RSS after %ss idle\t%s\t%s (1 worker)\t—\t—\n' \
        "$RSS_WAIT" "$(mib "$rss_idle")" "$(mib "$nginx1_rss")"
    printf 'RSS after wrk\t%s\t—\t—\t—\n' "$(mib "$rss_load")"
} >"$TMP/table.tsv"

echo
echo "== results ($(nproc) CPUs, $(uname -r))"
if command -v column >/dev/null; then
    column -t -s $'\t' -o ' | ' "$TMP/table.tsv"
else
    tr '\t' '|' <"$TMP/table.tsv"
fi

if [[ $STRICT == 1 && ($rps_ok != 1 || $ready_ok != 1) ]]; then
    exit 1
fi
exit 0
