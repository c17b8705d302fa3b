#!/usr/bin/env bash
# Cross-builds stripped release binaries for ARM routers, installing what the build needs
# first (rustup's target, Debian's cross gcc and C library), so a fresh machine works.
#   scripts/cross.sh arm64|armv7 ...   -> dist/stratum-proxy-<arch> (+ testpool, minersim
#                                        under target/<triple>/release)
# The binaries link glibc dynamically (2.34 or newer on the router: Debian 12, Raspberry Pi
# OS bookworm, Ubuntu 22.04, Armbian); see README "ARM builds".
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

# arch -> rust triple, Debian gcc prefix
triple() { case $1 in arm64) echo aarch64-unknown-linux-gnu ;; armv7) echo armv7-unknown-linux-gnueabihf ;; *) return 1 ;; esac; }
gnu() { case $1 in arm64) echo aarch64-linux-gnu ;; armv7) echo arm-linux-gnueabihf ;; *) return 1 ;; esac; }
deb() { case $1 in arm64) echo arm64 ;; armv7) echo armhf ;; *) return 1 ;; esac; }

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

[ $# -gt 0 ] || { echo "usage: $0 arm64|armv7 ..." >&2; exit 2; }
mkdir -p dist
for arch in "$@"; do
    t=$(triple "$arch") || { echo "cross.sh: unknown arch $arch (arm64, armv7)" >&2; exit 2; }
    g=$(gnu "$arch")
    # Debian's own rustc is too old for edition 2024: the target comes from rustup.
    if ! rustup target list --installed | grep -qx "$t"; then rustup target add "$t"; fi
    if ! command -v "$g-gcc" >/dev/null || [ ! -e "/usr/$g/lib/libc.so" ]; then
        apt_install "gcc-$g" "libc6-dev-$(deb "$arch")-cross"
    fi
    # Linkers and ring's C compiler for the target are set in .cargo/config.toml.
    cargo build --release --bins --target "$t"
    "$g-strip" -o "dist/stratum-proxy-$arch" "target/$t/release/stratum-proxy"
    echo "dist/stratum-proxy-$arch: $(stat -c %s "dist/stratum-proxy-$arch") bytes, stripped ($t)"
done
