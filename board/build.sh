#!/bin/sh
# board/build.sh - build minivrrp for one OpenWrt board profile and report its size.
#
#   board/build.sh BOARD          release build for board/BOARD.env, then a size report
#   board/build.sh all            x86_64 + aarch64 (both aarch64 profiles share one binary)
#   board/build.sh tiny-x86_64    nightly -Zbuild-std + panic=immediate-abort + optimize_for_size
#   board/build.sh tiny-aarch64   the same for aarch64 (needs nightly's rust-src component)
#   board/build.sh check-atomics  nightly `cargo check -Zbuild-std` for mipsel and armv7:
#                                 mips32 has no 64-bit atomics, so any AtomicU64 fails here
#   board/build.sh list           the profiles
#
# BOARD is a file name in board/ without .env; aliases: aarch64 = aarch64_cortex-a53,
# armv7 = arm_cortex-a7_neon-vfpv4, mipsel = mipsel_24kc. Profiles marked BUILD=sdk
# (armv7, mipsel) cannot link here: build them with the OpenWrt SDK (openwrt/README.md).
set -eu

BOARD_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BOARD_DIR")
cd "$ROOT"

die() {
	echo "board/build.sh: $*" >&2
	exit 1
}

resolve_board() {
	case "$1" in
	aarch64) echo aarch64_cortex-a53 ;;
	armv7) echo arm_cortex-a7_neon-vfpv4 ;;
	mipsel) echo mipsel_24kc ;;
	*) echo "$1" ;;
	esac
}

# Load one profile into OPENWRT_ARCH, OPENWRT_TARGET, RUST_TARGET, BUILD, LINKER, RUNNER.
load_board() {
	name=$(resolve_board "$1")
	file="$BOARD_DIR/$name.env"
	[ -f "$file" ] || die "unknown board '$1' (try: board/build.sh list)"
	OPENWRT_ARCH= OPENWRT_TARGET= RUST_TARGET= BUILD= LINKER= RUNNER=
	. "$file"
	BOARD=$name
}

bytes() { wc -c <"$1" | tr -d ' '; }
xz_bytes() { xz -9e -c "$1" | wc -c | tr -d ' '; }
gz_bytes() { gzip -9 -n -c "$1" | wc -c | tr -d ' '; }

# The release profile strips (Cargo.toml strip = true), so the file size is the stripped size.
report_line() { # label target path
	printf '%-22s %-32s %10s %10s %10s\n' "$1" "$2" "$(bytes "$3")" "$(gz_bytes "$3")" "$(xz_bytes "$3")"
}

report_header() {
	printf '%-22s %-32s %10s %10s %10s\n' board rust-target stripped gzip-9 xz-9e
}

build_release() { # rust-target
	cargo build --release --locked --target "$1" >&2
	echo "target/$1/release/minivrrp"
}

build_board() {
	load_board "$1"
	if [ "$BUILD" = sdk ]; then
		cat >&2 <<-EOF
			board/build.sh: $BOARD ($RUST_TARGET) is an SDK build: no prebuilt std for it in rustup
			and no $OPENWRT_ARCH musl sysroot to link against here. Build it with the OpenWrt SDK
			for $OPENWRT_TARGET (openwrt/README.md); board/build.sh check-atomics type-checks it.
		EOF
		exit 2
	fi
	bin=$(build_release "$RUST_TARGET")
	report_header
	report_line "$BOARD" "$RUST_TARGET" "$bin"
}

build_all() {
	x86=$(build_release x86_64-unknown-linux-musl)
	arm=$(build_release aarch64-unknown-linux-musl)
	report_header
	report_line x86_64 x86_64-unknown-linux-musl "$x86"
	report_line aarch64_cortex-a53 aarch64-unknown-linux-musl "$arm"
	report_line aarch64_generic aarch64-unknown-linux-musl "$arm"
}

nightly_has_rust_src() {
	[ -d "$(rustc +nightly --print sysroot)/lib/rustlib/src/rust/library" ]
}

# Size-first build of std itself: std's panic/backtrace machinery is most of the stable
# binary (toolchain notes §2); immediate-abort drops it. A panic then is a bare abort with
# no message, which is why this is an option and not the default.
build_tiny() { # x86_64|aarch64
	case "$1" in
	x86_64) target=x86_64-unknown-linux-musl ;;
	aarch64) target=aarch64-unknown-linux-musl ;;
	*) die "tiny profiles: tiny-x86_64, tiny-aarch64" ;;
	esac
	nightly_has_rust_src || die "nightly has no rust-src component: -Zbuild-std is impossible here"
	flags="-Zunstable-options -Cpanic=immediate-abort -Ctarget-feature=+crt-static"
	if [ ! -f "$(rustc +nightly --print sysroot)/lib/rustlib/$target/lib/self-contained/crt1.o" ]; then
		# Nightly here lacks the prebuilt $target std, and with it the self-contained
		# musl crt objects and libc.a; borrow them from stable, which has the target.
		# rust-lld links them directly (cc would add the host glibc crt files). Non-PIE
		# (relocation-model=static) so the plain crt1.o/crtbegin.o fit; it is
		# also ~20 KB smaller on x86_64 (toolchain notes §2).
		sc="$(rustc +stable --print sysroot)/lib/rustlib/$target/lib/self-contained"
		[ -f "$sc/crt1.o" ] || die "stable has no $target self-contained crt objects"
		flags="$flags -Clinker=rust-lld -Crelocation-model=static -Clink-self-contained=no"
		flags="$flags -Zpre-link-args=$sc/crt1.o -Zpre-link-args=$sc/crti.o -Zpre-link-args=$sc/crtbegin.o"
		flags="$flags -Clink-arg=-L$sc -Clink-arg=$sc/crtend.o -Clink-arg=$sc/crtn.o"
	fi
	# A separate target dir: these flags must not invalidate the normal release build.
	RUSTFLAGS="$flags" CARGO_TARGET_DIR="$ROOT/target/tiny" \
		cargo +nightly build --release --locked --target "$target" \
		-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size >&2
	bin="target/tiny/$target/release/minivrrp"
	report_header
	report_line "tiny-$1" "$target" "$bin"
}

# Type-check the whole crate for the 32-bit routers with std built from source. mips32 has
# no 64-bit atomics (target_has_atomic = "64" is false), so AtomicU64 would fail to resolve;
# armv7 has them (ldrexd/strexd) but is the other 32-bit target we ship, so it is checked too.
check_atomics() {
	nightly_has_rust_src || die "nightly has no rust-src component: cannot -Zbuild-std for mipsel/armv7"
	rc=0
	for target in mipsel-unknown-linux-musl armv7-unknown-linux-musleabihf; do
		echo "== cargo +nightly check --target $target" >&2
		if CARGO_TARGET_DIR="$ROOT/target/check" cargo +nightly check --locked --lib --bins \
			-Zbuild-std=std,panic_abort --target "$target" >&2; then
			echo "$target: ok"
		else
			echo "$target: FAILED"
			rc=1
		fi
	done
	return $rc
}

[ $# -eq 1 ] || die "usage: board/build.sh BOARD|all|tiny-x86_64|tiny-aarch64|check-atomics|list"
case "$1" in
list)
	for f in "$BOARD_DIR"/*.env; do
		load_board "$(basename "$f" .env)"
		printf '%-26s %-32s %-18s %s\n' "$BOARD" "$RUST_TARGET" "$OPENWRT_TARGET" "$BUILD"
	done
	;;
all) build_all ;;
tiny-*) build_tiny "${1#tiny-}" ;;
check-atomics) check_atomics ;;
*) build_board "$1" ;;
esac
