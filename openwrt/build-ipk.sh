#!/bin/sh
# openwrt/build-ipk.sh - build an opkg .ipk (or an apk-tools v3 .apk) for one board
# without the OpenWrt SDK.
#
#   openwrt/build-ipk.sh [--apk] [--bin PATH] [--out DIR] [--release N] BOARD
#   openwrt/build-ipk.sh --luci [--apk] [--out DIR] [--release N]
#
#   --apk      an .apk for OpenWrt 25.12 and snapshots (apk-tools 3) instead of an .ipk:
#              build/minivrrp-<version>_<arch>.apk, written by openwrt/apk-mkpkg.py
#   BOARD      a profile in board/ (x86_64, mips_24kc, mipsel_24kc, arm_cortex-a7_neon-vfpv4,
#              aarch64_generic, ...); it gives the opkg Architecture and the Rust target of
#              the default binary (profiles of one Rust target share it)
#   --bin      the minivrrp binary to package (default: target/<rust-target>/release/minivrrp,
#              as left by board/build.sh BOARD), or one the OpenWrt SDK built
#   --out      output directory (default: build/)
#   --release  package release number (default 1): Version is <Cargo.toml version>-r<N>
#   --luci     the LuCI app instead (openwrt/luci-app-minivrrp, Architecture all, no BOARD):
#              build/luci-app-minivrrp_<version>_all.ipk (or .apk)
#
# Layout (as OpenWrt's scripts/ipkg-build makes it, and the only outer format opkg-lede
# reads): a gzip'd tar of debian-binary ("2.0"), data.tar.gz, control.tar.gz.
# Every tar is GNU format, sorted by name, owner 0:0, one fixed mtime; gzip -n drops the
# name and time from the gzip header. So the output depends only on the input files and
# SOURCE_DATE_EPOCH (default: the last commit's time): two builds of the same tree are
# byte-identical.
set -eu

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$SCRIPT_DIR")

die() {
	echo "build-ipk.sh: $*" >&2
	exit 1
}

bin=
format=ipk
out="$ROOT/build"
release=1
board=
luci=
while [ $# -gt 0 ]; do
	case "$1" in
	--apk) format=apk ;;
	--luci) luci=1 ;;
	--bin) [ $# -ge 2 ] || die "--bin needs a path"; bin=$2; shift ;;
	--out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift ;;
	--release) [ $# -ge 2 ] || die "--release needs a number"; release=$2; shift ;;
	-h | --help) sed -n '2,26s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) [ -z "$board" ] || die "one BOARD only"; board=$1 ;;
	esac
	shift
done
[ -n "$board$luci" ] || die "usage: build-ipk.sh [--apk] [--bin PATH] [--out DIR] [--release N] BOARD | --luci"
case "$release" in '' | *[!0-9]*) die "--release must be a number" ;; esac

if [ -n "$luci" ]; then
	[ -z "$board$bin" ] || die "--luci takes no BOARD and no --bin (the app is Architecture all)"
	OPENWRT_ARCH=all
else
	case "$board" in
	aarch64) board=aarch64_cortex-a53 ;;
	armv7) board=arm_cortex-a7_neon-vfpv4 ;;
	mipsel) board=mipsel_24kc ;;
	mips) board=mips_24kc ;;
	esac
	profile="$ROOT/board/$board.env"
	[ -f "$profile" ] || die "unknown board '$board' (see board/*.env)"
	OPENWRT_ARCH= RUST_TARGET= BUILD=
	. "$profile"
	[ -n "$OPENWRT_ARCH" ] || die "$profile sets no OPENWRT_ARCH"

	if [ -z "$bin" ]; then
		bin="$ROOT/target/$RUST_TARGET/release/minivrrp"
		if [ ! -f "$bin" ]; then
			die "no $bin: run board/build.sh $board first, or pass --bin"
		fi
	fi
	[ -f "$bin" ] || die "no such binary: $bin"
fi

for tool in tar gzip sed; do
	command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "needs GNU tar (--sort=name, --mtime)"

pkg=minivrrp
upstream=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n 1)
[ -n "$upstream" ] || die "no version in Cargo.toml"
version="$upstream-r$release"
license=$(sed -n 's/^license *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n 1)
# The feed Makefile is the one place the maintainer is written.
maintainer=$(sed -n 's/^PKG_MAINTAINER:=//p' "$ROOT/openwrt/minivrrp/Makefile" | head -n 1)
[ -n "$maintainer" ] || die "no PKG_MAINTAINER in openwrt/minivrrp/Makefile"
# The package's own post-install step (Package/minivrrp/postinst) is also written once, in
# the feed Makefile: make's $$ is the shell's $.
postinst_pkg=$(sed -n '/^define Package\/minivrrp\/postinst$/,/^endef$/{/^define /d;/^endef$/d;s/\$\$/$/g;p}' \
	"$ROOT/openwrt/minivrrp/Makefile")
[ -n "$postinst_pkg" ] || die "no Package/minivrrp/postinst in openwrt/minivrrp/Makefile"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || true)
	[ -n "$SOURCE_DATE_EPOCH" ] || SOURCE_DATE_EPOCH=0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/minivrrp-ipk.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
data="$work/data"
ctrl="$work/control"
mkdir "$data" "$ctrl" "$work/outer"

# The package's identity; the LuCI app has its own.
depends=libc
section=net
conffiles="/etc/config/minivrrp /etc/hotplug.d/minivrrp/50-example"
summary="VRRP (v2/v3, IPv4/IPv6), health checks and IPVS in one small binary, configured by UCI"
description=" VRRP (v2/v3, IPv4/IPv6) with link/script tracking, TCP/ICMP/HTTP health checks
 and kernel IPVS in one small binary, configured by UCI (/etc/config/minivrrp)."
if [ -n "$luci" ]; then
	pkg=luci-app-minivrrp
	# The daemon's install step (its config's checksum) is not the app's.
	postinst_pkg=
	depends="libc, luci-base, minivrrp"
	section=luci
	conffiles=
	summary="LuCI pages for minivrrp: Status > VRRP, Services > VRRP configuration"
	description=" LuCI support for minivrrp: a Status > VRRP page and an Overview include with the
 daemon's state and controls, and configuration pages generated from its schema."
	# As LuCI apps are laid out: htdocs/ is served from /www, root/ is the file system.
	app="$ROOT/openwrt/luci-app-minivrrp"
	install -d -m 0755 "$data/www"
	cp -R "$app/htdocs/." "$data/www/"
	cp -R "$app/root/." "$data/"
	find "$data" -type d -exec chmod 0755 {} +
	find "$data" -type f -exec chmod 0644 {} +
else
	# data: exactly the files the package owns, with their modes spelled out (the checkout's
	# modes and the umask must not leak into the package). The config is 0600 like the SDK's
	# INSTALL_CONF makes it: it may hold VRRPv2 auth_pass secrets.
	install -d -m 0755 "$data/usr/sbin" "$data/etc/config" "$data/etc/init.d" \
		"$data/etc/hotplug.d/minivrrp" "$data/lib/upgrade/keep.d"
	install -m 0755 "$bin" "$data/usr/sbin/minivrrp"
	install -m 0600 "$ROOT/rootfs/etc/config/minivrrp" "$data/etc/config/minivrrp"
	install -m 0755 "$ROOT/rootfs/etc/init.d/minivrrp" "$data/etc/init.d/minivrrp"
	install -m 0644 "$ROOT/rootfs/etc/hotplug.d/minivrrp/50-example" \
		"$data/etc/hotplug.d/minivrrp/50-example"
	# rpcd plugin: `ubus call minivrrp status`.
	install -d -m 0755 "$data/usr/libexec/rpcd"
	install -m 0755 "$ROOT/rootfs/usr/libexec/rpcd/minivrrp" "$data/usr/libexec/rpcd/minivrrp"
	# sysupgrade keeps what keep.d lists: the users' hooks.
	install -m 0644 "$ROOT/rootfs/lib/upgrade/keep.d/minivrrp" "$data/lib/upgrade/keep.d/minivrrp"
	chmod 0755 "$data" "$ctrl" "$data/usr" "$data/etc" "$data/etc/hotplug.d" "$data/usr/libexec" "$data/lib" \
		"$data/lib/upgrade"
fi

if [ "$format" = apk ]; then
	command -v python3 >/dev/null 2>&1 || die "--apk needs python3"
	# What OpenWrt's package-pack.mk puts in every apk: apk v3 has no conffile field, so
	# the conffiles travel as payload (sysupgrade reads .conffiles_static), plus the
	# package's file list.
	meta="$data/lib/apk/packages"
	install -d -m 0755 "$meta" "$data/lib/apk"
	: >"$meta/$pkg.conffiles"
	for f in $conffiles; do echo "$f" >>"$meta/$pkg.conffiles"; done
	: >"$meta/$pkg.conffiles_static"
	while read -r f; do
		echo "$f $(sha256sum "$data$f" | cut -d ' ' -f 1)" >>"$meta/$pkg.conffiles_static"
	done <"$meta/$pkg.conffiles"
	(cd "$data" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort) >"$work/$pkg.list"
	echo "/lib/apk/packages/$pkg.list" >>"$work/$pkg.list"
	sort "$work/$pkg.list" >"$meta/$pkg.list"
	chmod 0644 "$meta"/*
	# The maintainer scripts package-pack.mk generates for apk: default_postinst and
	# default_prerm take the package from $pkgname; an upgrade runs post-upgrade with
	# PKG_UPGRADE=1 (start, not enable).
	head='[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
export root="${IPKG_INSTROOT}"
export pkgname="'"$pkg"'"'
	# The package's own step follows default_postinst, without its #! line.
	pkg_step=$(printf '%s\n' "$postinst_pkg" | sed '/^[[:space:]]*#!/d')
	printf '#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n%s\nadd_group_and_user\ndefault_postinst\n%s\n' \
		"$head" "$pkg_step" >"$ctrl/post-install"
	printf '#!/bin/sh\nexport PKG_UPGRADE=1\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n%s\nadd_group_and_user\ndefault_postinst\n%s\n' \
		"$head" "$pkg_step" >"$ctrl/post-upgrade"
	printf '#!/bin/sh\n%s\ndefault_prerm\n' "$head" >"$ctrl/pre-deinstall"
	if [ -n "$luci" ]; then
		cat "$SCRIPT_DIR/luci-app-minivrrp/postinst-luci" >>"$ctrl/post-install"
		cat "$SCRIPT_DIR/luci-app-minivrrp/postinst-luci" >>"$ctrl/post-upgrade"
	fi
	mkdir -p "$out"
	apk="$out/$pkg-${version}_$OPENWRT_ARCH.apk"
	SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH python3 "$SCRIPT_DIR/apk-mkpkg.py" \
		--info "name:$pkg" --info "version:$version" --info "arch:$OPENWRT_ARCH" \
		--info "license:$license" --info "origin:$pkg" --info "maintainer:$maintainer" \
		--info "description:$summary" \
		--info "depends:$(echo "$depends" | tr -d ,)" \
		--script "post-install:$ctrl/post-install" --script "post-upgrade:$ctrl/post-upgrade" \
		--script "pre-deinstall:$ctrl/pre-deinstall" \
		--files "$data" --output "$apk"
	echo "$apk"
	exit 0
fi

det_tar() { # dir, then members; writes a gzip'd tar to stdout
	dir=$1
	shift
	tar -C "$dir" --format=gnu --numeric-owner --owner=0 --group=0 --sort=name \
		--mtime="@$SOURCE_DATE_EPOCH" -cf - "$@" | gzip -9 -n
}

det_tar "$data" . >"$work/outer/data.tar.gz"
# Installed-Size as ipkg-build computes it: the uncompressed size of the data tar.
installed_size=$(gzip -dc "$work/outer/data.tar.gz" | wc -c | tr -d ' ')

cat >"$ctrl/control" <<EOF
Package: $pkg
Version: $version
Depends: $depends
Source: feeds/minivrrp/$pkg
SourceName: $pkg
License: $license
LicenseFiles: LICENSE
Section: $section
SourceDateEpoch: $SOURCE_DATE_EPOCH
Maintainer: $maintainer
Architecture: $OPENWRT_ARCH
Installed-Size: $installed_size
Description: $description
EOF
# opkg keeps a locally modified conffile on upgrade (and saves the new one as -opkg).
# The same list as the feed Makefile's Package/minivrrp/conffiles.
: >"$ctrl/conffiles"
for f in $conffiles; do echo "$f" >>"$ctrl/conffiles"; done
# The maintainer scripts every SDK-built OpenWrt package gets: functions.sh's
# default_postinst enables and starts the init scripts the package installs (only
# enables when IPKG_INSTROOT says we are building an image), default_prerm stops and
# disables them.
cat >"$ctrl/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
EOF
cat >"$ctrl/prerm" <<'EOF'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
EOF
if [ -n "$luci" ]; then
	cat "$SCRIPT_DIR/luci-app-minivrrp/postinst-luci" >>"$ctrl/postinst"
fi
# The package's own step, which default_postinst sources (as the SDK ships Package/*/postinst).
if [ -n "$postinst_pkg" ]; then
	printf '%s
' "$postinst_pkg" >"$ctrl/postinst-pkg"
	chmod 0755 "$ctrl/postinst-pkg"
fi
chmod 0644 "$ctrl/control" "$ctrl/conffiles"
[ -s "$ctrl/conffiles" ] || rm "$ctrl/conffiles"
chmod 0755 "$ctrl/postinst" "$ctrl/prerm"
det_tar "$ctrl" . >"$work/outer/control.tar.gz"

printf '2.0\n' >"$work/outer/debian-binary"
chmod 0644 "$work/outer/debian-binary" "$work/outer/data.tar.gz" "$work/outer/control.tar.gz"

mkdir -p "$out"
ipk="$out/${pkg}_${version}_${OPENWRT_ARCH}.ipk"
rm -f "$ipk"
det_tar "$work/outer" ./debian-binary ./data.tar.gz ./control.tar.gz >"$work/pkg.ipk"
mv "$work/pkg.ipk" "$ipk"
echo "$ipk"
