#!/usr/bin/env bash
# Builds the Debian package for one architecture:
#
#     bash scripts/deb.sh [amd64|arm64]      # default: this machine's architecture
#
# and prints its path on the last line: target/debian/vigil_VERSION-1_ARCH.deb.
#
# amd64 (native) is `cargo deb` with the toolchain on PATH, as in scripts/test.sh.
#
# arm64 (the Jetson AGX Orin) is cross-built with Debian 12's own packages only, installed
# here when missing (as root; VIGIL_TEST_SKIP_INSTALL=1 only reports them):
#   rustc-web, cargo-web        Rust 1.96 as /usr/bin/rustc and /usr/bin/cargo
#   libstd-rust-web-dev:arm64   its standard library for aarch64 (`dpkg --add-architecture arm64`)
#   libc6:arm64                 (pulled in by the above) arm64 glibc, for running it under qemu
#   gcc-aarch64-linux-gnu, libc6-dev-arm64-cross   linker and C compiler (sqlite, zstd, ring)
# Debian's toolchain is used for this build alone, by absolute path: a rustup toolchain
# earlier on PATH keeps building everything else (it has no aarch64 standard library, and
# Debian's would otherwise shadow it). cargo-deb is whichever `cargo deb` finds (the test
# command installs it). Objects go to target/aarch64-unknown-linux-gnu/ (plus Debian
# rustc's own build scripts under target/release/build/, apart from the native ones by
# their hashes), so the native build is not disturbed.
#
# Environment:
#   VIGIL_TEST_SKIP_INSTALL=1   do not run apt-get
#   VIGIL_DEB_PROFILE=release   the cargo profile packaged (release is what ships)

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    printf 'deb.sh: error: %s\n' "$*" >&2
    exit 1
}

native=$(dpkg --print-architecture)
arch=${1:-$native}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ -n $version ]] || die "no version in Cargo.toml"
out=target/debian/vigil_${version}-1_${arch}.deb
mkdir -p target/debian

if [[ $arch == "$native" ]]; then
    cargo deb --output "$out"
    ls -l "$out"
    echo "$out"
    exit 0
fi
[[ $arch == arm64 && $native == amd64 ]] || die "usage: deb.sh [amd64|arm64] (on an amd64 machine)"

triple=aarch64-unknown-linux-gnu
# libc6:arm64 also lets qemu-aarch64-static run the result with a matching loader and libc.
packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 libc6:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ ${VIGIL_TEST_SKIP_INSTALL:-0} == 1 ]]; then
        die "VIGIL_TEST_SKIP_INSTALL=1 and missing: ${missing[*]}"
    fi
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}: run as root to install them"
    echo "installing: ${missing[*]}"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's toolchain, by path; its sysroot holds the aarch64 standard library.
rustc=/usr/bin/rustc
cargo=/usr/bin/cargo
[[ -x $rustc && -x $cargo ]] || die "$rustc or $cargo missing (rustc-web, cargo-web)"
[[ -d $($rustc --print sysroot)/lib/rustlib/$triple ]] ||
    die "no $triple standard library for $($rustc --version) (libstd-rust-web-dev:arm64)"
"$rustc" --version
"$cargo" --version
cargo_deb=$(command -v cargo-deb || true)
[[ -n $cargo_deb ]] || die "cargo-deb is not on PATH (cargo install --locked cargo-deb)"

# /usr/bin first, for this build only: cargo-deb runs `cargo build`, which must be Debian's.
export PATH=/usr/bin:$PATH RUSTC=$rustc RUSTDOC=/usr/bin/rustdoc CARGO=$cargo
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_STRIP=aarch64-linux-gnu-strip
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_OBJCOPY=aarch64-linux-gnu-objcopy
# cargo-deb runs `$CARGO build --release --target …`, then packages target/$triple/release/.
started=$SECONDS
"$cargo_deb" deb --target "$triple" --output "$out"
printf 'arm64 build and package: %ds\n' "$((SECONDS - started))"
ls -l "$out"
echo "$out"
