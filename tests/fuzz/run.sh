#!/bin/sh
# Runs every fuzz target with cargo-fuzz on nightly, from the committed seeds
# (tests/fuzz/seeds/<target>) plus a scratch corpus (tests/fuzz/corpus, not committed).
# Each input gets at most 2 s (libFuzzer -timeout), so a quadratic path in a parser shows up
# as a timeout. Prints executions and executions per second per target; exits non-zero if a
# target finds a failing input (saved under tests/fuzz/artifacts/<target>/: copy it to
# tests/fuzz/seeds/<target>/crash-NAME so tests/pure/fuzz_regressions.rs keeps it).
#
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]    each target for SECONDS (default 15)
#        FUZZ_RUNS=N tests/fuzz/run.sh 0 [TARGET...]  each target for N executions instead
#
# No sanitizer by default (FUZZ_SANITIZER=address to have one): the fuzzed code (frame
# parsing, the state machine, HTTP, netlink and UCI parsing) has no `unsafe`, so AddressSanitizer
# finds nothing there that Rust's own bounds and overflow checks (on in fuzz builds) do not,
# and it costs 10-14x the executions (instance: 1,700 against 24,000 per second here).
set -eu
cd "$(dirname "$0")/../.."
# nightly + rust-src + cargo-fuzz (idempotent, quick when present).
./tests/setup.sh fuzz >/dev/null
secs=${1:-15}
[ $# -gt 0 ] && shift
targets=${*:-"vrrp_frame auth_trailer http netlink uci instance"}
sanitizer=${FUZZ_SANITIZER:-none}
if [ -n "${FUZZ_RUNS:-}" ]; then
    limit="-runs=$FUZZ_RUNS"
else
    limit="-max_total_time=$secs"
fi
status=0
for t in $targets; do
    mkdir -p "tests/fuzz/corpus/$t"
    log="tests/fuzz/corpus/$t.log"
    start=$(date +%s)
    if cargo +nightly fuzz run -s "$sanitizer" --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" \
        "tests/fuzz/seeds/$t" -- "$limit" -timeout=2 -rss_limit_mb=1024 \
        -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
    fi
    took=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    echo "fuzz $t: $result, ${runs:-?} executions in ${took} s (build included), ${rate:-?} exec/s, sanitizer $sanitizer (log: $log)"
    [ "$result" = ok ] || tail -n 30 "$log"
done
exit $status
