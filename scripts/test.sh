#!/usr/bin/env bash
# The project's single test command.
#
# Run as root from the repository root on a Debian 12 machine (a fresh one is
# fine: this script installs and starts what the tests need):
#
#     bash scripts/test.sh
#
# Phases: Debian packages -> Rust toolchain (and cargo-deb) -> Docker engine ->
# busybox test image -> cargo build -> the .deb (scripts/deb.sh) -> the arm64
# .deb (scripts/deb.sh arm64: Debian's rustc-web cross toolchain, installed there)
# -> cargo test (ignored tests included, so nothing is skipped) -> a short fuzz run
# of every cargo-fuzz target (fuzz/, docs/fuzzing.md). The exit status is cargo
# test's when that fails, else 1 when a fuzz target crashed or could not be built.
#
# Environment:
#   VIGIL_TEST_SKIP_INSTALL=1   do not run apt-get (missing packages are only reported)
#   VIGIL_TEST_FUZZ_SECONDS=N   run each fuzz target N seconds (default 20)
#   VIGIL_TEST_FUZZ_STABLE=1    fuzz with the stable toolchain and RUSTC_BOOTSTRAP=1
#                               even when rustup has a nightly one
#   VIGIL_TEST_FUZZ_SANITIZER=S build the fuzz targets with sanitizer S (default none:
#                               the short run is for panics and wrong answers; see
#                               docs/fuzzing.md for long runs with AddressSanitizer)
#
# Every step is idempotent: a rerun installs nothing, reuses a running dockerd
# and the existing image. A dockerd started here is left running for later runs
# (its log is /var/log/dockerd.log). The tests start their own private
# dbus-daemons; this script only makes sure dbus-daemon is installed.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
    dbus docker.io busybox-static systemd-container minisign lintian curl jq
    qemu-user-static wrk nginx-light libxml2-utils systemd util-linux polkitd dpkg-dev apt faketime udev dosfstools e2fsprogs
    prometheus chromium smartmontools g++ gdb
)
CARGO_DEB_VERSION=3.8.0
CARGO_FUZZ_VERSION=0.13.2
FUZZ_TARGETS=(manifest bundle policy settings http_head)
FUZZ_SECONDS=${VIGIL_TEST_FUZZ_SECONDS:-20}
# The short run's build: no sanitizer and 16 codegen units build in a fraction of the time
# of cargo-fuzz's defaults (AddressSanitizer, one codegen unit) and catch what a short run
# finds in safe Rust (panics, failed checks, hangs, memory blow-ups). Its own target
# directory, so a long run's AddressSanitizer build in fuzz/target is left as it is.
FUZZ_BUILD=(--sanitizer "${VIGIL_TEST_FUZZ_SANITIZER:-none}" --codegen-units 16
    --target-dir fuzz/target/test-command)
TEST_IMAGE=vigil-test/busybox:1
DOCKERD_LOG=/var/log/dockerd.log
DOCKERD_WAIT_S=60

phase_started=$SECONDS
section() {
    # Free space with each phase: a disk that fills up fails tests far from the cause.
    printf '\n==== %s ==== (%s free on /)\n' "$*" "$(df -h --output=avail / | tail -n 1 | tr -d ' ')"
    phase_started=$SECONDS
}
done_in() {
    printf -- '---- done in %ds\n' "$((SECONDS - phase_started))"
}
die() {
    printf 'test.sh: error: %s\n' "$*" >&2
    exit 1
}

if [[ $(id -u) -ne 0 ]]; then
    die "run as root (the tests drive dockerd, systemd-nspawn and mounts)"
fi

# --- 1. Debian packages -------------------------------------------------------
section "1/9 Debian packages"
missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "all ${#PACKAGES[@]} packages installed"
elif [[ ${VIGIL_TEST_SKIP_INSTALL:-0} == 1 ]]; then
    echo "VIGIL_TEST_SKIP_INSTALL=1: not installing missing packages: ${missing[*]}" >&2
else
    echo "installing: ${missing[*]}"
    # Keep package scripts from starting services (nginx on :80, a second
    # dockerd): there is no systemd as PID 1 here. Only a policy-rc.d that this
    # script created is removed again.
    policy_rc=/usr/sbin/policy-rc.d
    created_policy_rc=0
    if [[ ! -e $policy_rc ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
        chmod 755 "$policy_rc"
        created_policy_rc=1
    fi
    apt_rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    } || apt_rc=$?
    if [[ $created_policy_rc == 1 ]]; then
        rm -f "$policy_rc"
    fi
    [[ $apt_rc -eq 0 ]] || die "apt-get failed (exit $apt_rc) installing: ${missing[*]}"
fi
# This script needs the first three itself; the tests need the rest.
for cmd in dockerd docker busybox dbus-daemon systemd-nspawn minisign curl jq xmllint; do
    if ! command -v "$cmd" >/dev/null; then
        case $cmd in
        dockerd | docker | busybox) die "'$cmd' is not on PATH (package missing?)" ;;
        *) echo "warning: '$cmd' is not on PATH; tests that need it will fail" >&2 ;;
        esac
    fi
done
done_in

# --- 2. Rust toolchain --------------------------------------------------------
section "2/9 Rust toolchain and cargo-deb"
# A rustup toolchain comes first when there is one: Debian's rustc-web, which the arm64
# phase installs as /usr/bin/cargo, must not take over the native build on a rerun.
if [[ -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    die "no Rust toolchain: 'cargo' is neither on PATH nor in ~/.cargo/bin.
  rustup cannot be downloaded from this machine; install a toolchain
  (rust-version in Cargo.toml or newer) by other means and rerun."
fi
cargo --version
rustc --version
# cargo-deb builds the .deb that the packaging and system tests install.
if [[ $(cargo deb --version 2>/dev/null) != "cargo-deb $CARGO_DEB_VERSION" ]]; then
    echo "installing cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
cargo deb --version
done_in

# --- 3. Docker engine ---------------------------------------------------------
section "3/9 Docker engine"
if docker info >/dev/null 2>&1; then
    echo "dockerd is answering on /var/run/docker.sock"
else
    echo "starting dockerd (log: $DOCKERD_LOG)"
    setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    dockerd_pid=$!
    waited=0
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited during start-up; see $DOCKERD_LOG"
        fi
        if ((waited >= DOCKERD_WAIT_S)); then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer within ${DOCKERD_WAIT_S}s; see $DOCKERD_LOG"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "dockerd (pid $dockerd_pid) ready after ${waited}s; left running"
fi
docker version --format 'engine {{.Server.Version}}, API {{.Server.APIVersion}}'
done_in

# --- 4. Busybox test image ----------------------------------------------------
section "4/9 test image $TEST_IMAGE"
if docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
    echo "$TEST_IMAGE present"
else
    # Exactly the TESTBED.md recipe: no registry is reachable, so the image is
    # imported from a tarball of a static busybox and its applet links.
    imgdir=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: the path is fixed
    trap "rm -rf '$imgdir'" EXIT
    (
        cd "$imgdir"
        mkdir -p img/bin
        cp "$(command -v busybox)" img/bin/busybox
        for c in sh sleep true false httpd nc wget cat echo; do
            ln -s busybox "img/bin/$c"
        done
        tar -C img -cf bb.tar .
        docker import bb.tar "$TEST_IMAGE"
    )
    rm -rf "$imgdir"
    trap - EXIT
    echo "$TEST_IMAGE built"
fi
done_in

# --- 5. Build -----------------------------------------------------------------
section "5/9 cargo build --all-targets --features test-hooks"
cargo build --all-targets --features test-hooks
done_in

# --- 6. The Debian package ----------------------------------------------------
# A release build without test hooks: what ships. tests/package.rs and
# tests/system.rs take it from target/debian/.
section "6/9 the .deb (scripts/deb.sh)"
bash scripts/deb.sh
done_in

# --- 7. The arm64 Debian package ---------------------------------------------
# The Jetson's: cross-built with Debian's own toolchain (scripts/deb.sh installs
# it and keeps it off the native build). tests/package_arm64.rs checks it and
# runs its binaries under qemu-aarch64-static.
section "7/9 the arm64 .deb (scripts/deb.sh arm64)"
bash scripts/deb.sh arm64
done_in

# --- 8. Test ------------------------------------------------------------------
section "8/9 cargo test --features test-hooks --no-fail-fast -- --include-ignored"
test_rc=0
cargo test --features test-hooks --no-fail-fast -- --include-ignored || test_rc=$?
done_in

# --- 9. Fuzz ------------------------------------------------------------------
# A short run of every cargo-fuzz target over its committed seeds (docs/fuzzing.md), so a
# change that makes one of them crash on a seed or nearby fails the test command. fuzz/ is
# its own workspace with its own target directory (fuzz/target). It needs a nightly
# toolchain: rustup's when there is one, else the stable one with RUSTC_BOOTSTRAP=1.
# A failure here does not stop the script; it decides the exit status after cargo test's.
section "9/9 fuzz: every target for ${FUZZ_SECONDS}s (cargo fuzz run ${FUZZ_BUILD[*]})"
fuzz_failed=()
fuzz_cargo=(cargo)
if [[ ${VIGIL_TEST_FUZZ_STABLE:-0} != 1 ]] && command -v rustup >/dev/null &&
    rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz_cargo=(cargo +nightly)
else
    echo "no nightly toolchain (or VIGIL_TEST_FUZZ_STABLE=1): stable with RUSTC_BOOTSTRAP=1"
    fuzz_cargo=(env RUSTC_BOOTSTRAP=1 cargo)
fi
"${fuzz_cargo[@]}" --version
if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" ||
        fuzz_failed+=("(cargo install cargo-fuzz)")
fi
if [[ ${#fuzz_failed[@]} -eq 0 ]] && ! "${fuzz_cargo[@]}" fuzz build "${FUZZ_BUILD[@]}"; then
    fuzz_failed+=("(cargo fuzz build)")
fi
if [[ ${#fuzz_failed[@]} -eq 0 ]]; then
    fuzz_tmp=$(mktemp -d)
    for target in "${FUZZ_TARGETS[@]}"; do
        # A fresh corpus each time; the seeds are read only. A crashing input goes to
        # fuzz/artifacts/TARGET/.
        mkdir "$fuzz_tmp/$target"
        flags=(-max_total_time="$FUZZ_SECONDS" -timeout=20 -print_final_stats=1)
        if [[ $target == bundle ]]; then
            flags+=(-rss_limit_mb=512)
        fi
        log=$fuzz_tmp/$target.log
        if "${fuzz_cargo[@]}" fuzz run "${FUZZ_BUILD[@]}" "$target" "$fuzz_tmp/$target" \
            "fuzz/seeds/$target" -- "${flags[@]}" >"$log" 2>&1; then
            # libFuzzer's last line: runs, coverage (cov: edges, ft: features), corpus.
            printf '%-10s ok: %s\n' "$target" "$(grep -a 'DONE  *cov:' "$log" | tail -n 1 || true)"
        else
            fuzz_rc=$?
            printf '%-10s FAILED (exit %d):\n' "$target" "$fuzz_rc" >&2
            grep -a -A4 -m3 'panicked at\|ERROR: AddressSanitizer\|ERROR: libFuzzer' "$log" >&2 || true
            printf -- '-- the end of its output:\n' >&2
            tail -n 25 "$log" >&2
            fuzz_failed+=("$target")
        fi
    done
    rm -rf "$fuzz_tmp"
fi
done_in

if [[ $test_rc -ne 0 ]]; then
    printf '\n==== FAIL (cargo test exited %d) ====\n' "$test_rc"
    if [[ ${#fuzz_failed[@]} -gt 0 ]]; then
        printf 'and fuzzing failed: %s\n' "${fuzz_failed[*]}"
    fi
    exit "$test_rc"
fi
if [[ ${#fuzz_failed[@]} -gt 0 ]]; then
    printf '\n==== FAIL (fuzzing: %s; a crashing input is kept under fuzz/artifacts/) ====\n' \
        "${fuzz_failed[*]}"
    exit 1
fi
printf '\n==== PASS ====\n'
exit 0
