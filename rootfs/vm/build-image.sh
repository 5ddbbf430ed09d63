#!/bin/sh
# Builds and boots a tiny test VM with a Debian kernel that has IPVS, so the IPVS code can be
# tested against a real kernel on hosts whose own kernel has no ip_vs (facts behind each step:
# shared/notes/ipvs-vm.md).
#
#   build-image.sh base
#       Build (or reuse) the cached base image; print its directory. It holds `vmlinux`
#       (uncompressed, booted through PVH: saves the ~5 s self-decompression under TCG) and
#       `base.cpio` (busybox, the ip_vs/scheduler/dummy/veth modules, ipvsadm + its libraries,
#       /init).
#   build-image.sh run [--add SRC:DST]... [--timeout SECONDS] [--klog FILE] [-- CMD [ARGS...]]
#       Append a second cpio with the given files (binaries, configs, a /test.sh) to the base,
#       boot it, stream the test output (second serial port) to stdout and exit with the test's
#       exit status. With `-- CMD`, a /test.sh is generated that loads the modules and runs CMD.
#       Without a /test.sh, /init loads the modules and runs `minivrrp.cmd=` from the kernel
#       command line (MINIVRRP_VM_APPEND), or `ipvsadm -Ln` as a smoke test.
#
# Inside the VM: MINIVRRP_IN_VM=1 is exported, `load-modules` insmods the module list in
# dependency order, the exit status is printed as `MINIVRRP-VM-EXIT=<n>` before poweroff.
#
# Environment: MINIVRRP_VM_CACHE (cache root, default <repo>/target/vm), MINIVRRP_VM_KVER
# (kernel version under /lib/modules, default the newest with a /boot/vmlinuz), MINIVRRP_VM_ACCEL
# (tcg|kvm, default: kvm when usable and not kvm_pvm), MINIVRRP_VM_APPEND (extra kernel args).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
self="$here/build-image.sh"

die() { echo "build-image.sh: $*" >&2; exit 2; }

need_packages() {
    missing=
    for t in qemu-system-x86_64 busybox ipvsadm cpio modprobe xz; do
        command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
    done
    [ -f /bin/busybox ] && busybox --help 2>&1 | head -1 | grep -q . || missing="$missing busybox"
    ls /boot/vmlinuz-* >/dev/null 2>&1 || missing="$missing kernel"
    if [ -n "$missing" ] || ! ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'; then
        echo "build-image.sh: installing VM packages (missing:$missing)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends qemu-system-x86 linux-image-amd64 \
            busybox-static ipvsadm cpio kmod xz-utils >&2
    fi
}

pick_kver() {
    if [ -n "${MINIVRRP_VM_KVER:-}" ]; then echo "$MINIVRRP_VM_KVER"; return; fi
    for v in $(ls /lib/modules | sort -rV); do
        if [ -f "/boot/vmlinuz-$v" ] && [ -d "/lib/modules/$v/kernel/net/netfilter/ipvs" ]; then
            echo "$v"
            return
        fi
    done
    die "no kernel with IPVS modules under /lib/modules (install linux-image-amd64)"
}

# Module paths in insmod order, dependencies and softdeps first, each once.
module_list() {
    k=$1
    mods=$(ls "/lib/modules/$k/kernel/net/netfilter/ipvs/" | sed -n 's/\.ko.*$//p' |
        grep -v -e '^ip_vs_ftp$' -e '^ip_vs_pe_sip$' | sort)
    for m in ip_vs $mods dummy veth; do
        # One module per call: modprobe takes further words as module parameters.
        modprobe -S "$k" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
    done | awk '!seen[$0]++'
}

init_script() {
    cat <<'EOF'
#!/bin/sh
# Test VM init: mounts, test output on the second serial port, run the test, report, power off.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root MINIVRRP_IN_VM=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The cpio has no /dev/console, so the kernel started us without stdio: open it now.
exec 0</dev/null 1>/dev/ttyS1 2>&1
mkdir -p /dev/pts /dev/shm /tmp /run /var/run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
hostname minivrrp-vm
ip link set lo up
if [ -f /test.sh ]; then
    sh /test.sh
    rc=$?
else
    load-modules
    cmd=$(sed -n 's/.*minivrrp\.cmd="\([^"]*\)".*/\1/p; t; s/.*minivrrp\.cmd=\([^ ]*\).*/\1/p' /proc/cmdline)
    if [ -n "$cmd" ]; then
        sh -c "$cmd"
        rc=$?
    else
        ipvsadm -Ln
        rc=$?
    fi
fi
echo "MINIVRRP-VM-EXIT=$rc"
sync
poweroff -f
EOF
}

load_modules_script() {
    cat <<'EOF'
#!/bin/sh
# insmod the VM's modules in dependency order (list made by `modprobe --show-depends`).
rc=0
while read -r m; do
    insmod "$m" || { echo "load-modules: insmod $m failed" >&2; rc=1; }
done </etc/minivrrp-vm/modules.list
exit $rc
EOF
}

copy_with_libs() {
    # Copy a dynamic binary and every library ldd resolves, plus the loader, at their paths.
    bin=$1 root=$2
    mkdir -p "$root$(dirname "$bin")"
    cp -L "$bin" "$root$bin"
    for lib in $(ldd "$bin" | awk '/=> \// { print $3 } /^\t\/[^ ]* \(/ { print $1 }'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

build_base() {
    need_packages
    kver=$(pick_kver)
    cache_root=${MINIVRRP_VM_CACHE:-$repo/target/vm}
    dir="$cache_root/$kver"
    # The base depends on the kernel and on this script (the /init it writes).
    stamp="$kver $(cksum <"$self" | cut -d' ' -f1)"
    if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ] &&
        [ -f "$dir/vmlinux" ] && [ -f "$dir/base.cpio" ]; then
        echo "$dir"
        return
    fi
    mkdir -p "$dir"
    echo "build-image.sh: building base image for $kver in $dir" >&2

    # vmlinux: the bzImage's payload is an xz stream; find its magic and decompress it.
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "/boot/vmlinuz-$kver" | head -1 | cut -d: -f1)
    [ -n "$off" ] || die "no xz stream in /boot/vmlinuz-$kver"
    tail -c +$((off + 1)) "/boot/vmlinuz-$kver" | xz -dc --single-stream >"$dir/vmlinux.tmp" ||
        true
    head -c 4 "$dir/vmlinux.tmp" | grep -q 'ELF' || die "extracted vmlinux is not an ELF file"
    mv "$dir/vmlinux.tmp" "$dir/vmlinux"

    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/bin" "$stage/sbin" "$stage/usr/bin" "$stage/usr/sbin" "$stage/etc/minivrrp-vm" \
        "$stage/proc" "$stage/sys" "$stage/dev" "$stage/tmp" "$stage/run" "$stage/root" "$stage/var"
    cp /bin/busybox "$stage/bin/busybox"
    for applet in $(/bin/busybox --list-full); do
        [ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
    done
    module_list "$kver" >"$stage/etc/minivrrp-vm/modules.list"
    while read -r m; do
        mkdir -p "$stage$(dirname "$m")"
        case "$m" in
        *.xz) xz -dc "$m" >"$stage${m%.xz}" ;;
        *) cp "$m" "$stage$m" ;;
        esac
    done <"$stage/etc/minivrrp-vm/modules.list"
    sed -i 's/\.ko\.xz$/.ko/' "$stage/etc/minivrrp-vm/modules.list"
    copy_with_libs "$(command -v ipvsadm)" "$stage"
    init_script >"$stage/init"
    load_modules_script >"$stage/sbin/load-modules"
    chmod 755 "$stage/init" "$stage/sbin/load-modules"
    echo "$kver" >"$stage/etc/minivrrp-vm/kernel"
    (cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$dir/base.cpio.tmp"
    mv "$dir/base.cpio.tmp" "$dir/base.cpio"
    rm -rf "$stage"
    trap - EXIT
    echo "$stamp" >"$dir/stamp"
    echo "$dir"
}

run_vm() {
    adds=
    timeout=300
    klog=
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    while [ $# -gt 0 ]; do
        case "$1" in
        --add)
            src=${2%%:*}
            dst=${2#*:}
            [ -f "$src" ] || die "--add: no file $src"
            mkdir -p "$stage/files$(dirname "$dst")"
            cp "$src" "$stage/files$dst"
            adds=1
            shift 2
            ;;
        --timeout) timeout=$2; shift 2 ;;
        --klog) klog=$2; shift 2 ;;
        --) shift; break ;;
        *) die "unknown argument $1" ;;
        esac
    done
    if [ $# -gt 0 ]; then
        mkdir -p "$stage/files"
        {
            echo '#!/bin/sh'
            echo 'load-modules || exit 1'
            for a in "$@"; do printf "'%s' " "$(printf %s "$a" | sed "s/'/'\\\\''/g")"; done
            echo
        } >"$stage/files/test.sh"
        chmod 755 "$stage/files/test.sh"
        adds=1
    fi
    dir=$(build_base)
    trap 'rm -rf "$stage"' EXIT
    cp "$dir/base.cpio" "$stage/initrd"
    if [ -n "$adds" ]; then
        (cd "$stage/files" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >>"$stage/initrd"
    fi
    [ -n "$klog" ] || klog="$dir/last-kernel.log"

    accel=${MINIVRRP_VM_ACCEL:-}
    if [ -z "$accel" ]; then
        # kvm_pvm (nested PVM) cannot boot a stock kernel: use TCG there.
        if [ -w /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ]; then accel=kvm; else accel=tcg; fi
    fi
    out="$stage/out"
    set +e
    timeout --foreground "$timeout" qemu-system-x86_64 \
        -nodefaults -display none -no-reboot \
        -accel "$accel" -cpu max -m 256 -smp 1 \
        -kernel "$dir/vmlinux" -initrd "$stage/initrd" \
        -append "console=ttyS0 quiet panic=-1 ${MINIVRRP_VM_APPEND:-}" \
        -serial "file:$klog" -serial stdio </dev/null | tr -d '\r' | tee "$out"
    qrc=$?
    set -e
    rc=$(sed -n 's/^MINIVRRP-VM-EXIT=\([0-9]*\)$/\1/p' "$out" | tail -1)
    if [ -z "$rc" ]; then
        echo "build-image.sh: the VM ended without an exit marker (qemu/timeout status $qrc); kernel log tail:" >&2
        tail -n 30 "$klog" >&2
        exit 3
    fi
    exit "$rc"
}

cmd=${1:-base}
[ $# -gt 0 ] && shift
case "$cmd" in
base) build_base ;;
run) run_vm "$@" ;;
*) die "usage: build-image.sh base | run [--add SRC:DST]... [--timeout S] [--klog FILE] [-- CMD...]" ;;
esac
