#!/bin/sh
# board/build.sh - build minivrrp for one OpenWrt board profile and report its size.
#
#   board/build.sh BOARD          release build for board/BOARD.env, then a size report
#   board/build.sh all            x86_64 + aarch64 (both aarch64 profiles share one binary)
#   board/build.sh cross          mipsel_24kc + arm_cortex-a7_neon-vfpv4 (nightly -Zbuild-std)
#   board/build.sh test-cross [TARGET-BOARD...]
#                                 the library's unit tests for those boards under qemu-user
#   board/build.sh tiny-x86_64    nightly -Zbuild-std + panic=immediate-abort + optimize_for_size
#   board/build.sh tiny-aarch64   the same for aarch64 (needs nightly's rust-src component)
#   board/build.sh check-atomics  nightly `cargo check -Zbuild-std` for mipsel and armv7:
#                                 mips32 has no 64-bit atomics, so any AtomicU64 fails here
#   board/build.sh list           the profiles
#
# BOARD is a file name in board/ without .env; aliases: aarch64 = aarch64_cortex-a53,
# armv7 = arm_cortex-a7_neon-vfpv4, mipsel = mipsel_24kc. Profiles marked BUILD=cross
# (armv7, mipsel) have no prebuilt Rust std: nightly builds std from source and Debian's
# multiarch musl-dev:<arch> is the C runtime (tests/setup.sh installs both). A profile's
# CARGO_FEATURES picks its cargo features: the router boards build without `import`.
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

# Load one profile into OPENWRT_ARCH, OPENWRT_TARGET, RUST_TARGET, BUILD, LINKER, RUNNER,
# CARGO_FEATURES (cargo's feature arguments; empty = the default features) and CROSS_CC,
# GCC_TRIPLE for BUILD=cross.
load_board() {
	name=$(resolve_board "$1")
	file="$BOARD_DIR/$name.env"
	[ -f "$file" ] || die "unknown board '$1' (try: board/build.sh list)"
	OPENWRT_ARCH= OPENWRT_TARGET= RUST_TARGET= BUILD= LINKER= RUNNER= CROSS_CC= GCC_TRIPLE=
	CARGO_FEATURES=
	. "$file"
	BOARD=$name
}

bytes() { wc -c <"$1" | tr -d ' '; }
xz_bytes() { xz -9e -c "$1" | wc -c | tr -d ' '; }
gz_bytes() { gzip -9 -n -c "$1" | wc -c | tr -d ' '; }

# The release profile strips (Cargo.toml strip = true), so the file size is the stripped size.
report_line() { # label target path
	printf '%-26s %-32s %10s %10s %10s\n' "$1" "$2" "$(bytes "$3")" "$(gz_bytes "$3")" "$(xz_bytes "$3")"
}

report_header() {
	printf '%-26s %-32s %10s %10s %10s\n' board rust-target stripped gzip-9 xz-9e
}

build_release() { # rust-target [cargo feature arguments]
	target=$1
	shift
	cargo build --release --locked --target "$target" "$@" >&2
	echo "target/$target/release/minivrrp"
}

# RUSTFLAGS for a BUILD=cross profile (load_board first). Rust's musl targets link their
# own self-contained crt objects by default, which a build-std toolchain does not have:
# -Clink-self-contained=no lets Debian's musl-gcc wrapper supply musl's crt1.o and libc.a.
# std's unwind crate links -lunwind; Debian's cross libgcc_eh is that unwinder, plus
# board/cross/dl_find_object.c where it expects glibc's _dl_find_object (mipsel; a stub).
cross_rustflags() {
	nightly_has_rust_src || die "nightly has no rust-src: rustup component add rust-src --toolchain nightly"
	command -v "$CROSS_CC" >/dev/null 2>&1 ||
		die "no $CROSS_CC: run tests/setup.sh (musl-dev:<arch> through dpkg --add-architecture)"
	eh="/usr/lib/gcc-cross/$GCC_TRIPLE/$(ls "/usr/lib/gcc-cross/$GCC_TRIPLE" 2>/dev/null | sort -n | tail -n 1)/libgcc_eh.a"
	[ -f "$eh" ] || die "no $GCC_TRIPLE libgcc_eh.a (gcc-$GCC_TRIPLE, pulled in by musl-dev)"
	lib="$ROOT/target/cross-lib/$RUST_TARGET"
	mkdir -p "$lib"
	if [ ! -f "$lib/libunwind.a" ] || [ "$eh" -nt "$lib/libunwind.a" ] ||
		[ "$BOARD_DIR/cross/dl_find_object.c" -nt "$lib/libunwind.a" ]; then
		cp "$eh" "$lib/libunwind.a.new"
		if nm "$eh" 2>/dev/null | grep -q ' U _dl_find_object'; then
			"$CROSS_CC" -Os -c "$BOARD_DIR/cross/dl_find_object.c" -o "$lib/dl_find_object.o"
			"$GCC_TRIPLE-ar" rs "$lib/libunwind.a.new" "$lib/dl_find_object.o" 2>/dev/null
		fi
		mv "$lib/libunwind.a.new" "$lib/libunwind.a"
	fi
	# -Alinker-messages: GNU ld warns on every object that Debian's hard-float musl meets
	# soft-float Rust code (mipsel); no float crosses that boundary (see the .env).
	# -Crelocation-model=static: a static executable needs no position-independent code. On
	# MIPS, PIC reaches every function and global through the GOT ($gp loads, jalr $t9);
	# non-PIC code (CPIC, what gcc emits for executables) calls directly: mipsel 571,640 ->
	# 514,060 bytes. The unit tests under qemu (test-cross) are built the same way.
	echo "-Ctarget-feature=+crt-static -Crelocation-model=static -Clinker=$CROSS_CC" \
		"-Clink-self-contained=no -L$lib -Alinker-messages"
}

# Nightly build-std with std's optimize_for_size, abort on panic (as the release profile;
# the panic message is still printed). Leaves target/<rust-target>/release/minivrrp.
build_cross() { # board
	load_board "$1"
	# panic=immediate-abort: a panic (a bug; input never panics) aborts without its message,
	# which drops std's panic formatting: about 40 % of the binary on these boards.
	# -Cforce-unwind-tables=no: with nothing ever unwinding (immediate-abort), .eh_frame and
	# .eh_frame_hdr are dead weight (47 KB on mipsel). GNU ld cannot discard them the way
	# board/build.rs does for rust-lld, so they are not emitted for Rust code (std included).
	# -z max-page-size=4096: GNU ld aligns the data segment for 64 KB pages on MIPS and ARM,
	# which left up to 64 KB of zero padding in the file. The kernels of these routers use
	# 4 KB pages (OpenWrt's ramips and ipq40xx, and every ARMv7 Linux), so a 4 KB alignment
	# loads the same way and saves that padding.
	flags="$(cross_rustflags) -Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no"
	flags="$flags -Clink-arg=-Wl,-z,max-page-size=4096 -Clink-arg=-Wl,-z,common-page-size=4096"
	# -z norelro: GNU ld starts the data segment so that its RELRO part ends on a page
	# boundary, which left 3 KB of padding after the code on mipsel. Only a dynamic loader
	# makes RELRO read-only (musl does it in ldso/dynlink.c); a static musl executable never
	# does, so the padding bought nothing.
	# -Zlocation-detail=none: immediate-abort never prints a panic's file and line, so their
	# strings are dead weight (armv7 -4 KB).
	flags="$flags -Clink-arg=-Wl,-z,norelro -Zlocation-detail=none"
	# shellcheck disable=SC2086 # CARGO_FEATURES is a list of arguments
	RUSTFLAGS="$flags" cargo +nightly build --release --locked --target "$RUST_TARGET" \
		$CARGO_FEATURES -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size >&2
	echo "target/$RUST_TARGET/release/minivrrp"
}

# The library's unit tests compiled for the board and run under qemu-user (its RUNNER).
test_cross() { # board
	load_board "$1"
	flags=$(cross_rustflags)
	runner_var="CARGO_TARGET_$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')_RUNNER"
	echo "== unit tests for $BOARD ($RUST_TARGET) under $RUNNER" >&2
	env "$runner_var=$RUNNER" RUSTFLAGS="$flags" cargo +nightly test --quiet --locked --lib \
		--target "$RUST_TARGET" -Zbuild-std
}

build_board() {
	load_board "$1"
	if [ "$BUILD" = cross ]; then
		bin=$(build_cross "$BOARD")
		smoke_cross "$BOARD" "$bin"
		report_header
		report_line "$BOARD" "$RUST_TARGET" "$bin"
		return
	fi
	# shellcheck disable=SC2086
	bin=$(build_release "$RUST_TARGET" $CARGO_FEATURES)
	report_header
	report_line "$BOARD" "$RUST_TARGET" "$bin"
}

build_all() {
	load_board x86_64
	# shellcheck disable=SC2086 # CARGO_FEATURES is a list of arguments
	x86=$(build_release "$RUST_TARGET" $CARGO_FEATURES)
	load_board aarch64_cortex-a53
	# shellcheck disable=SC2086
	arm=$(build_release "$RUST_TARGET" $CARGO_FEATURES)
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

# Runs the built binary under qemu-user: its version, `check` of the shipped config (exit 0)
# and of a config with an out-of-range VRID (exit 1, the error names file and line).
smoke_cross() { # board binary
	load_board "$1"
	command -v "${RUNNER%% *}" >/dev/null 2>&1 || die "no ${RUNNER%% *} (qemu-user-static)"
	$RUNNER "$2" --version >&2
	$RUNNER "$2" check -f "$ROOT/rootfs/etc/config/minivrrp" >/dev/null ||
		die "$BOARD: check rejected the shipped config under $RUNNER"
	bad="$ROOT/target/cross-lib/bad-vrid.uci"
	printf "config instance 'vi1'\n\toption interface 'br-lan'\n\toption vrid '300'\n\tlist vip '10.0.0.254/24'\n" >"$bad"
	rc=0
	err=$($RUNNER "$2" check -f "$bad" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -eq 1 ] && echo "$err" | grep -q "$bad:3:" ||
		die "$BOARD: check of a bad VRID under $RUNNER gave exit $rc: $err"
	echo "$BOARD: runs under $RUNNER (--version, check ok, bad VRID refused)" >&2
}

build_cross_all() {
	mips=$(build_cross mipsel_24kc)
	arm=$(build_cross arm_cortex-a7_neon-vfpv4)
	smoke_cross mipsel_24kc "$mips"
	smoke_cross arm_cortex-a7_neon-vfpv4 "$arm"
	report_header
	report_line mipsel_24kc mipsel-unknown-linux-musl "$mips"
	report_line arm_cortex-a7_neon-vfpv4 armv7-unknown-linux-musleabihf "$arm"
}

[ $# -ge 1 ] || die "usage: board/build.sh BOARD|all|cross|test-cross|tiny-x86_64|tiny-aarch64|check-atomics|list"
case "$1" in
test-cross)
	shift
	[ $# -gt 0 ] || set -- mipsel_24kc arm_cortex-a7_neon-vfpv4
	for b in "$@"; do test_cross "$b"; done
	exit
	;;
esac
[ $# -eq 1 ] || die "usage: board/build.sh BOARD|all|cross|test-cross|tiny-x86_64|tiny-aarch64|check-atomics|list"
case "$1" in
list)
	for f in "$BOARD_DIR"/*.env; do
		load_board "$(basename "$f" .env)"
		printf '%-26s %-32s %-18s %-6s %s\n' "$BOARD" "$RUST_TARGET" "$OPENWRT_TARGET" "$BUILD" \
			"${CARGO_FEATURES:-default features}"
	done
	;;
all) build_all ;;
cross) build_cross_all ;;
tiny-*) build_tiny "${1#tiny-}" ;;
check-atomics) check_atomics ;;
*) build_board "$1" ;;
esac
