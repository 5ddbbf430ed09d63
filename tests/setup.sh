#!/bin/sh
# Installs what the test suite and the demo need, as root, on a Debian machine.
# Idempotent and quick when everything is present: apt runs only for missing packages.
set -eu

PKGS="keepalived tcpdump iproute2 iputils-ping procps python3 python3-venv python3-aiosmtpd binutils
      xz-utils qemu-user-static qemu-system-x86 linux-image-amd64 busybox-static ipvsadm cpio kmod
      qemu-system-mips binutils-mips-linux-gnu strace util-linux conntrackd conntrack nftables frr
      chromium chromium-driver python3-selenium curl ndisc6 radvd python3-scapy stress-ng"

# tests/vm/malta_lab.rs boots Debian's mipsel malta kernel with busybox-static:mipsel, fetched by
# rootfs/vm/malta.sh with `apt-get download` (never installed): apt must know the mipsel
# architecture.
update=""
for arch in mipsel; do
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        dpkg --add-architecture "$arch"
        update=1
    fi
done

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    update=1
fi
if [ -n "$update" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
fi
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Debian starts keepalived as a service on install on some systems; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now keepalived >/dev/null 2>&1 || true; fi
# The same for FRR (the interop tests start zebra and vrrpd by hand, in their namespaces, with
# their own vty/pid/config paths): no system frr may keep running.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now frr >/dev/null 2>&1 || true
elif [ -x /etc/init.d/frr ]; then
    /etc/init.d/frr stop >/dev/null 2>&1 || true
    update-rc.d frr disable >/dev/null 2>&1 || true
fi
# The same for radvd (the first-hop tests run it inside their namespaces).
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now radvd >/dev/null 2>&1 || true; fi

# The suite lints the shipped code with clippy (tests/run.sh).
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
installed=$(rustup target list --installed)
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    echo "$installed" | grep -qx "$t" || rustup target add "$t"
done
# The router boards (board/build.sh all) build std from its source with nightly (-Zbuild-std):
# mips and mipsel have no prebuilt std, and built that way (panic=immediate-abort) armv7 and
# aarch64 fit 600,000 bytes (the MIPS builds do not yet: board/README.md "Size").
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
[ -d "$(rustc +nightly --print sysroot)/lib/rustlib/src/rust/library" ] ||
    rustup component add rust-src --toolchain nightly
# zig links the router boards, and its bundled musl (built for each board's CPU and float ABI:
# soft-float on MIPS) is their C runtime: PyPI's ziglang in a virtualenv under target/.
ZIG_VERSION=0.17.1
zig_env="$(cd "$(dirname "$0")/.." && pwd)/target/zig"
if ! "$zig_env/bin/python" -m ziglang version 2>/dev/null | grep -qx "$ZIG_VERSION"; then
    rm -rf "$zig_env"
    python3 -m venv "$zig_env"
    "$zig_env/bin/pip" install -q "ziglang==$ZIG_VERSION"
fi
# Fuzzing (tests/fuzz/run.sh): nightly with rust-src and cargo-fuzz. Only when asked
# (MINIVRRP_FUZZ=1 or `tests/setup.sh fuzz`), so the plain suite never needs nightly.
if [ "${1:-}" = fuzz ] || [ "${MINIVRRP_FUZZ:-0}" = 1 ]; then
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
        rustup component add rust-src --toolchain nightly
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
fi
echo "setup: ok"
