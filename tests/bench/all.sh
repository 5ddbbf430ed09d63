#!/bin/sh
# Every slow suite that is not part of tests/run.sh, in one go, as root: the benchmarks
# (each runs minivrrp and Debian's keepalived in the same namespace lab and prints figures
# with ratios; no timed assertion anywhere) and a fuzzing round.
# Usage: tests/bench/all.sh [FUZZ_SECONDS_PER_TARGET]   (default 60; 0 skips fuzzing)
# BENCHES="failover perf" picks some benchmarks (default: all).
set -eu
cd "$(dirname "$0")/../.."
./tests/setup.sh >/dev/null
# The real daemon as shipped: the static release binary.
./board/build.sh x86_64 >/dev/null
MINIVRRP_BIN="$PWD/target/x86_64-unknown-linux-musl/release/minivrrp"
export MINIVRRP_BIN
status=0
for bench in ${BENCHES:-failover perf faults junk_flood rs_flood control checks vrrp load}; do
    echo "== cargo bench --bench $bench"
    cargo bench --quiet --bench "$bench" || { echo "bench $bench FAILED"; status=1; }
done
secs=${1:-60}
if [ "$secs" -gt 0 ]; then
    echo "== fuzzing, $secs s per target"
    ./tests/fuzz/run.sh "$secs" || status=1
fi
exit $status
