#!/usr/bin/env bash
# Benchmark: a unit's failure in a real systemd -> vigild's `systemd` check turns crit.
#
# Run as root from anywhere, after `cargo build --release`, on a machine with
# systemd-container (systemd-nspawn), util-linux (nsenter), dbus and busctl:
#
#     bash scripts/bench-systemd.sh
#
# Boots a systemd with systemd-nspawn on an overlay of / (as the project's test-bed notes
# describes), runs vigild INSIDE it (so it talks to that systemd over the container's system
# bus) with one check `bench` on `vt-bench.service` and `every = "60s"` (only systemd's
# PropertiesChanged signal can explain a fast change), then BENCH_N times:
#   (kill)  start vt-bench.service (ExecStart=/bin/sleep), wait for the check to be ok, and
#           `systemctl kill --signal=KILL vt-bench.service`;
#   (start) `systemctl start vt-fail.service` whose ExecStart=/bin/false fails at once
#           (a second check `fail` watches it);
#   (pid)   start vt-bench.service, then SIGKILL its main process from the host with bash's
#           builtin `kill` (no fork, so T_cmd is as close to the failure as it gets).
#
# The timestamps (all CLOCK_REALTIME of the one kernel the host and the container share):
#   T_cmd   host `date +%s%N` taken just before nsenter runs the systemctl command (or just
#           before the builtin kill);
#   T_ret   host `date +%s%N` when `nsenter … systemctl kill` has returned (its own runtime,
#           printed for scale: forking nsenter and systemctl is most of "command -> crit");
#   T_exit  systemd's own ExecMainExitTimestamp of the unit (µs): when systemd reaped the
#           main process, i.e. when the failure became visible to anyone;
#   T_crit  the timestamp of vigild's "check NAME … → crit" log line (µs; logged by the
#           daemon loop right after the probe's reading that saw the failure).
# Reported: T_crit - T_cmd ("command -> crit": includes forking nsenter and systemctl) and
# T_crit - T_exit ("exit -> crit": systemd's signal, the D-Bus round trips of the reading,
# the daemon loop). Percentiles are nearest-rank over BENCH_N samples.
#
# Environment:
#   BENCH_N=50             failures per scenario (>= 50 for the goal's p99)
#   BENCH_VIGILD=PATH      the binary to measure (default: target/release/vigild)
#   BENCH_STRICT=1         exit 1 when a goal is missed (default: report only)
#
# Goal: p50 <= 50 ms, p99 <= 200 ms (command -> crit).
# Only what this script started is stopped on exit: the container (poweroff, then SIGKILL to
# the systemd-nspawn PID it started if needed), the overlay mount, the temp directory.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VIGILD=${BENCH_VIGILD:-$ROOT/target/release/vigild}
N=${BENCH_N:-50}
STRICT=${BENCH_STRICT:-0}

die() {
    printf 'bench-systemd.sh: error: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (mount, systemd-nspawn)"
[[ -x $VIGILD ]] || die "$VIGILD not found: run 'cargo build --release' first"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_N must be a positive number"
for cmd in systemd-nspawn nsenter dbus-daemon busctl mount; do
    command -v "$cmd" >/dev/null || die "'$cmd' not on PATH (apt-get install -y systemd-container util-linux dbus)"
done
VIGILD=$(readlink -f "$VIGILD")

T=$(mktemp -d /tmp/vigil-bench-systemd.XXXXXX)
NSPAWN_PID=
PID1=
MOUNTED=0
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        if [[ -n $PID1 ]]; then
            nsenter -t "$PID1" -a -r -w systemctl poweroff >/dev/null 2>&1 || true
        fi
        for ((i = 0; i < 300; i++)); do
            kill -0 "$NSPAWN_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    if ((MOUNTED)); then
        umount "$T/root" 2>/dev/null || umount -l "$T/root" || true
    fi
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- boot ------------------------------------------------------------------------
mkdir -p "$T/up/etc/systemd/system" "$T/work" "$T/root" "$T/share"
# Units that only slow the boot down (docker fails inside anyway).
for u in docker.service docker.socket postgresql.service postgresql@15-main.service; do
    ln -s /dev/null "$T/up/etc/systemd/system/$u"
done
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/up,workdir=$T/work" "$T/root"
MOUNTED=1
setsid systemd-nspawn -D "$T/root" -M "vigil-bench-$$" -b --register=no --keep-unit \
    --bind="$T/share:/vigil-test" --bind-ro="$(dirname "$VIGILD"):/vigil-bin" \
    </dev/null >"$T/boot.log" 2>&1 &
NSPAWN_PID=$!
for ((i = 0; i < 900; i++)); do
    # shellcheck disable=SC2013 # the file is one line of space-separated PIDs
    for c in $(cat /proc/"$NSPAWN_PID"/task/*/children 2>/dev/null); do
        if [[ $(cat "/proc/$c/comm" 2>/dev/null) == systemd ]]; then PID1=$c; fi
    done
    [[ -n $PID1 ]] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || die "systemd-nspawn exited: $(cat "$T/boot.log")"
    sleep 0.1
done
[[ -n $PID1 ]] || die "no systemd in the container: $(cat "$T/boot.log")"
in_box() { nsenter -t "$PID1" -a -r -w "$@"; }
for ((i = 0; i < 900; i++)); do
    state=$(in_box systemctl is-system-running 2>/dev/null || true)
    [[ $state == running || $state == degraded ]] && break
    sleep 0.1
done
[[ $state == running || $state == degraded ]] || die "container still '$state'"

# --- units, bus, vigild ------------------------------------------------------------
in_box sh -c 'cat > /run/systemd/system/vt-bench.service' <<'EOF'
[Service]
ExecStart=/bin/sleep 100000
EOF
in_box sh -c 'cat > /run/systemd/system/vt-fail.service' <<'EOF'
[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=/bin/false
EOF
in_box systemctl daemon-reload
mkdir -p "$T/share/policies"
cat >"$T/share/policies/bench.toml" <<'EOF'
[[check]]
name = "bench"
probe = "systemd"
unit = "vt-bench.service"
every = "60s"

[[check]]
name = "fail"
probe = "systemd"
unit = "vt-fail.service"
every = "60s"
EOF
in_box dbus-daemon --session --address=unix:path=/vigil-test/bus --fork --nopidfile
in_box sh -c "NO_COLOR=1 RUST_LOG=info setsid /vigil-bin/$(basename "$VIGILD") --foreground \
    --policies /vigil-test/policies --state-dir /vigil-test/state --listen 127.0.0.1:0 \
    --bus unix:path=/vigil-test/bus </dev/null >/vigil-test/vigild.log 2>&1 &"
LOG=$T/share/vigild.log

# count_lines PATTERN: lines of vigild's log matching PATTERN.
count_lines() { grep -c -- "$1" "$LOG" 2>/dev/null || true; }
# wait_lines PATTERN N: until the log has N lines matching PATTERN (10 s at most).
wait_lines() {
    local i
    for ((i = 0; i < 2000; i++)); do
        (($(count_lines "$1") >= $2)) && return 0
        sleep 0.005
    done
    die "no log line '$1' (#$2) within 10 s; log tail: $(tail -5 "$LOG")"
}
# stamp_of PATTERN N: the N-th matching line's timestamp in ns since the epoch.
stamp_of() {
    local ts
    ts=$(grep -- "$1" "$LOG" | sed -n "${2}p" | awk '{print $1}')
    date -d "$ts" +%s%N
}
# exit_stamp UNIT: systemd's ExecMainExitTimestamp in ns.
exit_stamp() {
    local path us
    path=/org/freedesktop/systemd1/unit/$(echo "$1" | sed 's/-/_2d/g; s/\./_2e/g')
    us=$(in_box busctl get-property org.freedesktop.systemd1 "$path" \
        org.freedesktop.systemd1.Service ExecMainExitTimestamp | awk '{print $2}')
    echo $((us * 1000))
}

wait_lines "check fail unknown → warn" 1
wait_lines "check bench unknown → warn" 1
: >"$T/kill-cmd" && : >"$T/kill-exit" && : >"$T/kill-ret" && : >"$T/start-cmd" && : >"$T/start-exit"
: >"$T/pid-cmd" && : >"$T/pid-exit"

echo "bench-systemd: $N failures per scenario, vigild $VIGILD inside nspawn" >&2
# --- kill -9 of a running unit ------------------------------------------------------
for ((k = 1; k <= N; k++)); do
    ok_before=$(count_lines "check bench .* → ok")
    crit_before=$(count_lines "check bench .* → crit")
    in_box systemctl reset-failed vt-bench.service 2>/dev/null || true
    # A start right after a failure is refused now and then ("a fatal signal was
    # delivered to the control process"): try once more.
    in_box systemctl start vt-bench.service 2>/dev/null || in_box systemctl start vt-bench.service
    wait_lines "check bench .* → ok" $((ok_before + 1))
    sleep 0.1
    t_cmd=$(date +%s%N)
    in_box systemctl kill --signal=KILL vt-bench.service
    t_ret=$(date +%s%N)
    wait_lines "check bench .* → crit" $((crit_before + 1))
    t_crit=$(stamp_of "check bench .* → crit" $((crit_before + 1)))
    t_exit=$(exit_stamp vt-bench.service)
    echo $(((t_crit - t_cmd) / 1000)) >>"$T/kill-cmd"
    echo $(((t_crit - t_exit) / 1000)) >>"$T/kill-exit"
    echo $(((t_ret - t_cmd) / 1000)) >>"$T/kill-ret"
done
# --- SIGKILL of the unit's main process from the host (bash's builtin kill: no fork) ---
# host_pid CPID: the host's PID of the container's process CPID (a child of PID 1).
host_pid() {
    local c
    # shellcheck disable=SC2013 # the file is one line of space-separated PIDs
    for c in $(cat /proc/"$PID1"/task/*/children); do
        if [[ $(awk '/^NSpid:/ {print $NF}' "/proc/$c/status" 2>/dev/null) == "$1" ]]; then
            echo "$c"
            return
        fi
    done
    die "no host PID for container PID $1"
}
for ((k = 1; k <= N; k++)); do
    ok_before=$(count_lines "check bench .* → ok")
    crit_before=$(count_lines "check bench .* → crit")
    in_box systemctl reset-failed vt-bench.service 2>/dev/null || true
    in_box systemctl start vt-bench.service 2>/dev/null || in_box systemctl start vt-bench.service
    wait_lines "check bench .* → ok" $((ok_before + 1))
    main=$(host_pid "$(in_box systemctl show -p MainPID --value vt-bench.service)")
    sleep 0.1
    t_cmd=$(date +%s%N)
    kill -KILL "$main"
    wait_lines "check bench .* → crit" $((crit_before + 1))
    t_crit=$(stamp_of "check bench .* → crit" $((crit_before + 1)))
    t_exit=$(exit_stamp vt-bench.service)
    echo $(((t_crit - t_cmd) / 1000)) >>"$T/pid-cmd"
    echo $(((t_crit - t_exit) / 1000)) >>"$T/pid-exit"
done
# --- start of a unit that fails at once ---------------------------------------------
for ((k = 1; k <= N; k++)); do
    crit_before=$(count_lines "check fail .* → crit")
    if ((k > 1)); then
        # Out of failed (inactive, Result=success: warn), so the next failure is a
        # transition again.
        back=$(count_lines "check fail crit → ")
        in_box systemctl reset-failed vt-fail.service
        wait_lines "check fail crit → " $((back + 1))
    fi
    sleep 0.1
    t_cmd=$(date +%s%N)
    in_box systemctl start vt-fail.service || true
    wait_lines "check fail .* → crit" $((crit_before + 1))
    t_crit=$(stamp_of "check fail .* → crit" $((crit_before + 1)))
    t_exit=$(exit_stamp vt-fail.service)
    echo $(((t_crit - t_cmd) / 1000)) >>"$T/start-cmd"
    echo $(((t_crit - t_exit) / 1000)) >>"$T/start-exit"
done

# --- table ------------------------------------------------------------------------
# stats FILE: "n min p50 p90 p99 max" in ms (nearest rank) from µs samples.
stats() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        n = NR
        r50 = int((50 * n + 99) / 100); r90 = int((90 * n + 99) / 100); r99 = int((99 * n + 99) / 100)
        printf "%d %.1f %.1f %.1f %.1f %.1f\n", n, v[1] / 1000, v[r50] / 1000, v[r90] / 1000, v[r99] / 1000, v[n] / 1000
    }'
}
printf '\n%-48s %4s %8s %8s %8s %8s %8s\n' "scenario (ms)" n min p50 p90 p99 max
miss=0
for s in "kill-cmd:systemctl kill -9 -> crit (command)" "kill-exit:systemctl kill -9 -> crit (unit exit)" \
    "kill-ret:  (runtime of nsenter systemctl kill)" \
    "start-cmd:start failing unit -> crit (command)" "start-exit:start failing unit -> crit (unit exit)" \
    "pid-cmd:kill -9 MainPID from host -> crit (kill)" "pid-exit:kill -9 MainPID from host -> crit (unit exit)"; do
    f=${s%%:*}
    read -r n mn p50 p90 p99 mx < <(stats "$T/$f")
    printf '%-48s %4s %8s %8s %8s %8s %8s\n' "${s#*:}" "$n" "$mn" "$p50" "$p90" "$p99" "$mx"
    if [[ $f == *-cmd ]] && { awk "BEGIN{exit !($p50 > 50 || $p99 > 200)}"; }; then miss=1; fi
done
echo "goal: p50 <= 50 ms, p99 <= 200 ms (command -> crit)"
if ((miss)); then
    echo "GOAL MISSED"
    ((STRICT)) && exit 1
fi
exit 0
