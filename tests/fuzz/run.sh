#!/bin/sh
# Runs every fuzz target for SECONDS each (default 15) with cargo-fuzz on nightly, from the
# committed seeds (tests/fuzz/seeds/<target>) plus a scratch corpus (tests/fuzz/corpus,
# not committed). Each input gets at most 2 s (libFuzzer -timeout), so a quadratic path in
# a parser shows up as a timeout. Prints executions per second per target; exits non-zero
# if a target finds a failing input (saved under tests/fuzz/artifacts/<target>/: copy it to
# tests/fuzz/seeds/<target>/crash-NAME so tests/fuzz_regressions.rs keeps it).
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/../.."
# nightly + rust-src + cargo-fuzz (idempotent, quick when present).
./tests/setup.sh fuzz >/dev/null
secs=${1:-15}
[ $# -gt 0 ] && shift
targets=${*:-"vrrp_frame http netlink uci instance"}
status=0
for t in $targets; do
    mkdir -p "tests/fuzz/corpus/$t"
    log="tests/fuzz/corpus/$t.log"
    if cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" \
        "tests/fuzz/seeds/$t" -- -max_total_time="$secs" -timeout=2 -rss_limit_mb=1024 \
        -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    echo "fuzz $t: $result, ${runs:-?} executions in ${secs} s, ${rate:-?} exec/s (log: $log)"
    [ "$result" = ok ] || tail -n 30 "$log"
done
exit $status
