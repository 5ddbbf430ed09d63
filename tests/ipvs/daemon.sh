#!/bin/sh
# Runs inside the IPVS test VM (tests/vm/ipvs_daemon_vm.rs boots it once). Prints compact
# `ipvsadm -Ln` snapshots between `--- ipvsadm LABEL ---` and `--- end ---` (header lines
# dropped) and the daemon's logs between `--- log LABEL ---` and `--- end ---`; the host test
# checks them. Waits poll the table instead of sleeping fixed times; a wait that times out
# prints `wait-timeout:` and the snapshot after it shows what the table held.
set -u

cfg=/etc/minivrrp.uci
log=/tmp/minivrrp.log

snap() {
    echo "--- ipvsadm $1 ---"
    ipvsadm -Ln | tail -n +4 | tr -s ' '
    echo "--- end ---"
}
has() { ipvsadm -Ln | grep -q -- "$1"; }
lacks() { ! has "$1"; }
# wait_for SECONDS CMD...: poll every 0.2 s until CMD succeeds; give up at once when the
# daemon ($pid) has died.
pid=
wait_for() {
    n=$(($1 * 5))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            echo "wait-timeout: daemon died waiting for: $*"
            return 1
        fi
        sleep 0.2
        n=$((n - 1))
    done
    echo "wait-timeout: $*"
    return 1
}
# TCP listeners the checks connect to (127.0.0.1:800N), one per real server.
listen() {
    nc -ll -p "800$1" -e /bin/true &
    eval "l$1=\$!"
}
unlisten() { eval "kill \$l$1"; }
ts() { echo "t=$(($(date +%s) - t0)) s: $1"; }
showlog() {
    echo "--- log $1 ---"
    cat "$2"
    echo "--- end ---"
}

t0=$(date +%s)
# 0. The Lvs part without ip_vs: idle.
MINIVRRP_IPVS_EXPECT=absent /bin/lvs_kernel --test-threads=1 --nocapture --quiet lvs_without
echo "lvs-kernel-absent: exit $?"

ts no-ipvs
# 1. No ip_vs: one clear error, the daemon keeps running.
/bin/minivrrp -f $cfg >/tmp/noipvs.log 2>&1 &
pid=$!
wait_for 10 grep -q 'kernel has no IPVS' /tmp/noipvs.log
sleep 1
kill -0 $pid 2>/dev/null && echo "noipvs: alive"
# ip_vs loaded later: SIGHUP (same file) makes the daemon try again.
load-modules || exit 11
kill -HUP $pid
wait_for 10 has '10.0.0.1:80 *wrr'
snap noipvs-hup
kill -TERM $pid
wait $pid
echo "noipvs: exit $?"
pid=
showlog noipvs /tmp/noipvs.log
ipvsadm -C

ts lvs-kernel
# 2. The Lvs part driven directly against the kernel.
MINIVRRP_IPVS_EXPECT=present /bin/lvs_kernel --test-threads=1 --nocapture --quiet lvs_part
echo "lvs-kernel-present: exit $?"
ipvsadm -C

ts daemon
# 3. The daemon. A foreign service first: it must survive everything.
ipvsadm -A -t 10.9.9.9:80 -s rr
for i in 1 2 3 4; do listen $i; done
/bin/minivrrp -f $cfg >$log 2>&1 &
pid=$!
wait_for 15 has '10.0.1.4:443'
snap start

ts started
unlisten 1
wait_for 10 lacks '10.0.1.1:80'
snap rs-down
unlisten 2
wait_for 10 has '10.0.1.2:80 *Route *0 '
snap inhibited
listen 1
listen 2
wait_for 10 has '10.0.1.1:80' && wait_for 10 has '10.0.1.2:80 *Route *2 '
snap rs-up

ts health-done
unlisten 3
wait_for 10 has '10.0.9.9:8443'
snap quorum-lost
listen 3
wait_for 10 lacks '10.0.9.9:8443'
snap quorum-back

ts quorum-done
cp /etc/minivrrp-reload.uci $cfg
kill -HUP $pid
wait_for 10 has '10.0.0.1:80 *lc' && wait_for 10 has '10.0.1.1:80 *Route *5 ' &&
    wait_for 10 lacks '10.0.0.2:443'
snap reloaded
kill -0 $pid 2>/dev/null && echo "daemon: alive after reload"

ts reloaded
kill -TERM $pid
wait $pid
echo "daemon: exit $?"
snap stopped
showlog daemon $log
echo "scenario: $(($(date +%s) - t0)) s"
