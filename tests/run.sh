#!/bin/sh
# The whole test suite, as root on a Debian machine: installs what it needs (tests/setup.sh),
# then runs every test. CI (.ci/run) calls exactly this. Privileged tests never skip here:
# CI=true turns a skip into a failure.
set -eu
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
./tests/setup.sh

# Namespaces left behind by an earlier run that was killed: ours are named mv<pid>-..., and
# only those whose test process is gone are removed (a concurrent run keeps its labs).
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^mv[0-9]+-/ {print $1}'); do
    pid=${ns#mv}; pid=${pid%%-*}
    [ -d "/proc/$pid" ] || ip netns del "$ns" || true
done

echo "== lints of the shipped code (unsafe only in sys, documented; no unwrap/expect outside tests)"
cargo clippy --quiet --lib --bins
echo "== every board: static musl builds (routers: nightly -Zbuild-std, zig's musl), run under"
echo "   qemu-user, ELF/float-ABI/FPU gates, .ipk + .apk for every package architecture, sizes"
./board/build.sh all
# The packaging and VM tests use these static binaries instead of building their own;
# tests/vm/malta_lab.rs boots the mipsel one in two emulated MIPS routers.
MINIVRRP_RELEASE_BIN="$PWD/target/x86_64-unknown-linux-musl/release/minivrrp"
MINIVRRP_MIPSEL_BIN="$PWD/target/mipsel-unknown-linux-musl/release/minivrrp"
export MINIVRRP_RELEASE_BIN MINIVRRP_MIPSEL_BIN
# The programs the IPVS VM tests run inside the VM: static test binaries of tests/ipvs_kernel.rs
# (for tests/vm/ipvs_vm.rs) and tests/lvs_kernel.rs (for tests/vm/ipvs_daemon_vm.rs), built once here.
musl_test() {
    cargo test --quiet --target x86_64-unknown-linux-musl --test "$1" --no-run --message-format=json |
        sed -n "s/.*\"executable\":\"\([^\"]*$1[^\"]*\)\".*/\1/p" | tail -n 1
}
MINIVRRP_IPVS_KERNEL_TEST=$(musl_test ipvs_kernel)
MINIVRRP_LVS_KERNEL_TEST=$(musl_test lvs_kernel)
export MINIVRRP_IPVS_KERNEL_TEST MINIVRRP_LVS_KERNEL_TEST

# The library's unit tests for aarch64, mips_24kc, mipsel_24kc (qemu -cpu 24Kc) and armv7 under
# qemu-user are compiling and emulating (CPU), the x86_64 suite mostly waits on network labs and
# timers: so they run beside it in the SCHED_IDLE class (they get a CPU only when nothing of the
# suite wants it), in a target directory of their own (cargo locks a target directory for a
# whole `cargo test`).
echo "== unit tests for aarch64, mips_24kc, mipsel_24kc, armv7 under qemu-user: started beside the x86_64 suite"
cross_log="$PWD/target/cross-unit-tests.log"
mkdir -p target
(
    export CARGO_TARGET_DIR="$PWD/target/cross-unit"
    chrt --idle 0 cargo test --quiet --lib --target aarch64-unknown-linux-musl &&
        chrt --idle 0 ./board/build.sh test-cross
) >"$cross_log" 2>&1 &
cross_pid=$!

echo "== cargo test (x86_64: unit, golden, simulator, conformance, namespace lab, interop, IPVS VM)"
cargo test --quiet --no-fail-fast -- --test-threads=2

echo "== unit tests under qemu-user (started above)"
cross_rc=0
wait "$cross_pid" || cross_rc=$?
cat "$cross_log"
[ "$cross_rc" = 0 ] || { echo "unit tests under qemu-user failed (rc $cross_rc)"; exit 1; }

echo "== fuzzing, 5 s per target from the committed seeds (longer runs: tests/bench/all.sh)"
./tests/fuzz/run.sh 5
