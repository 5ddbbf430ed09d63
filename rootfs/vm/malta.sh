#!/bin/sh
# Emulated MIPS 24Kc routers for tests/vm/malta_lab.rs: QEMU's Malta board with Debian's own
# 32-bit little-endian MIPS kernel (linux-image-*-4kc-malta:mipsel) and a busybox initramfs.
# The packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x`: nothing is
# installed on the host.
#
#   malta.sh base
#       Fetch and unpack the kernel and busybox-static:mipsel (once), build the base initramfs
#       (busybox, the pcnet32 + mii NIC modules, /init); print the cache directory, which holds
#       `vmlinux` and `base.cpio`.
#   malta.sh initrd OUT [--add SRC:DST]...
#       Write OUT: the base initramfs plus a second cpio with the given files. /init loads the
#       NIC modules, brings up lo, runs /test.sh if present (its output and the kernel's go
#       to the serial console) and powers off.
#
# Boot one (see tests/vm/malta_lab.rs for the two-router lab on taps):
#   qemu-system-mipsel -M malta -cpu 24Kc -m 128 -display none -no-reboot -serial stdio \
#       -kernel DIR/vmlinux -initrd OUT -append "console=ttyS0 panic=-1"
#
# Cache: <repo>/target/vm/malta/<kernel version>/ (MINIVRRP_VM_CACHE moves target/vm). The
# stamp holds the package versions and this script's checksum. Needs root (apt-get), the
# mipsel architecture in dpkg (tests/setup.sh adds it), cpio, qemu-mipsel-static.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
self="$here/malta.sh"

die() { echo "malta.sh: $*" >&2; exit 2; }

# The versioned kernel package the metapackage points to, and the busybox version.
kernel_pkg() {
    apt-cache depends linux-image-4kc-malta:mipsel 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-4kc-malta\).*/\1/p' | head -n 1
}

init_script() {
    cat <<'EOF'
#!/bin/sh
# Router init: mounts, the NIC driver, then /test.sh; everything prints on the serial console.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec 0</dev/null 1>/dev/console 2>&1
mkdir -p /tmp /run /var/run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
insmod /lib/modules/mii.ko
insmod /lib/modules/pcnet32.ko
hostname router
ip link set lo up
rc=0
if [ -f /test.sh ]; then
    sh /test.sh
    rc=$?
fi
echo "MINIVRRP-VM-EXIT=$rc"
poweroff -f
EOF
}

build_base() {
    pkg=$(kernel_pkg)
    [ -n "$pkg" ] || die "apt knows no linux-image-4kc-malta:mipsel (dpkg --add-architecture mipsel; apt-get update)"
    kver=${pkg#linux-image-}
    cache_root=${MINIVRRP_VM_CACHE:-$repo/target/vm}
    dir="$cache_root/malta/$kver"
    kv=$(apt-cache policy "$pkg:mipsel" | sed -n 's/^ *Candidate: //p')
    bv=$(apt-cache policy busybox-static:mipsel | sed -n 's/^ *Candidate: //p')
    stamp="$pkg $kv busybox $bv $(cksum <"$self" | cut -d' ' -f1)"
    if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ] &&
        [ -f "$dir/vmlinux" ] && [ -f "$dir/base.cpio" ]; then
        echo "$dir"
        return
    fi
    command -v cpio >/dev/null 2>&1 || die "needs cpio"
    mkdir -p "$dir/debs"
    echo "malta.sh: fetching $pkg $kv and busybox-static:mipsel $bv into $dir" >&2
    rm -f "$dir"/debs/*.deb
    # apt-get download writes into the current directory; as root it warns that the _apt user
    # cannot write there, and downloads anyway.
    (cd "$dir/debs" && apt-get download -q "$pkg:mipsel" busybox-static:mipsel >/dev/null 2>&1) ||
        (cd "$dir/debs" && apt-get download "$pkg:mipsel" busybox-static:mipsel) ||
        die "apt-get download failed"
    rm -rf "$dir/x"
    for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/x"; done
    # The malta kernel is an uncompressed ELF, which QEMU's -kernel loads directly.
    cp "$dir/x/boot/vmlinuz-$kver" "$dir/vmlinux"

    stage="$dir/stage"
    rm -rf "$stage"
    mkdir -p "$stage/bin" "$stage/sbin" "$stage/usr/bin" "$stage/usr/sbin" "$stage/lib/modules" \
        "$stage/proc" "$stage/sys" "$stage/dev" "$stage/tmp" "$stage/run" "$stage/root" \
        "$stage/var" "$stage/etc/config"
    cp "$dir/x/bin/busybox" "$stage/bin/busybox"
    # Every applet as a link in /bin (asking the mipsel busybox itself, under qemu-user).
    applets=$(qemu-mipsel-static "$stage/bin/busybox" --list) || die "qemu-mipsel-static cannot run busybox"
    for a in $applets; do
        [ "$a" = busybox ] || ln -sf busybox "$stage/bin/$a"
    done
    for m in drivers/net/mii.ko drivers/net/ethernet/amd/pcnet32.ko; do
        cp "$dir/x/lib/modules/$kver/kernel/$m" "$stage/lib/modules/"
    done
    init_script >"$stage/init"
    chmod 755 "$stage/init"
    (cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$dir/base.cpio.tmp"
    mv "$dir/base.cpio.tmp" "$dir/base.cpio"
    rm -rf "$stage" "$dir/x" "$dir/debs"
    echo "$stamp" >"$dir/stamp"
    echo "$dir"
}

make_initrd() {
    [ $# -ge 1 ] || die "usage: malta.sh initrd OUT [--add SRC:DST]..."
    out=$1
    shift
    dir=$(build_base)
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/files"
    while [ $# -gt 0 ]; do
        case "$1" in
        --add)
            [ $# -ge 2 ] || die "--add needs SRC:DST"
            src=${2%%:*}
            dst=${2#*:}
            [ -f "$src" ] || die "--add: no file $src"
            mkdir -p "$stage/files$(dirname "$dst")"
            cp "$src" "$stage/files$dst"
            shift 2
            ;;
        *) die "unknown argument $1" ;;
        esac
    done
    cp "$dir/base.cpio" "$stage/initrd"
    (cd "$stage/files" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >>"$stage/initrd"
    mv "$stage/initrd" "$out"
}

cmd=${1:-base}
[ $# -gt 0 ] && shift
case "$cmd" in
base) build_base ;;
initrd) make_initrd "$@" ;;
*) die "usage: malta.sh base | initrd OUT [--add SRC:DST]..." ;;
esac
