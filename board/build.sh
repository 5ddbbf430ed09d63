#!/bin/sh
# board/build.sh - build minivrrp for one OpenWrt board profile and report its size.
#
#   board/build.sh BOARD          release build for board/BOARD.env, qemu-user run, gates, size
#   board/build.sh all            every profile: each distinct binary built once, run under
#                                 qemu-user, the gates, .ipk + .apk for every profile, one table
#   board/build.sh check BOARD [BINARY]
#                                 the gates alone: static, ELF machine/class/byte order, float
#                                 ABI, on MIPS no FPU instruction, and the size gate (router
#                                 binaries <= 600,000 bytes, or a profile's SIZE_MAX ceiling)
#   board/build.sh fpu-selftest   the FPU scan against assembled FPU instructions
#   board/build.sh size-selftest  the size gate against files just under and over its limits
#   board/build.sh test-cross [BOARD...]
#                                 the library's unit tests for those boards under qemu-user
#                                 (default: mips_24kc, mipsel_24kc, arm_cortex-a7_neon-vfpv4)
#   board/build.sh tiny-x86_64    nightly -Zbuild-std + panic=immediate-abort + optimize_for_size
#   board/build.sh tiny-aarch64   the same for aarch64 (needs nightly's rust-src component)
#   board/build.sh check-atomics  nightly `cargo check -Zbuild-std` for mipsel and armv7:
#                                 mips32 has no 64-bit atomics, so any AtomicU64 fails here
#   board/build.sh list           the profiles
#
# BOARD is a file name in board/ without .env; aliases: aarch64 = aarch64_cortex-a53,
# armv7 = arm_cortex-a7_neon-vfpv4, mipsel = mipsel_24kc, mips = mips_24kc. Profiles marked
# BUILD=cross (every router) are built with nightly -Zbuild-std and linked by zig against
# zig's musl for the profile's ZIG_TARGET/ZIG_CPU (tests/setup.sh installs nightly's rust-src
# and zig). A profile's CARGO_FEATURES picks its cargo features: the routers leave out `import`.
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
	mips) echo mips_24kc ;;
	*) echo "$1" ;;
	esac
}

# Load one profile into OPENWRT_ARCH, OPENWRT_TARGET, RUST_TARGET, BUILD, LINKER, RUNNER,
# CARGO_FEATURES (cargo's feature arguments; empty = the default features), and for
# BUILD=cross ZIG_TARGET, ZIG_CPU (zig's name of the target and CPU its musl is built for),
# RUSTFLAGS_EXTRA and SIZE_MAX (see size_gate).
load_board() {
	name=$(resolve_board "$1")
	file="$BOARD_DIR/$name.env"
	[ -f "$file" ] || die "unknown board '$1' (try: board/build.sh list)"
	OPENWRT_ARCH= OPENWRT_TARGET= RUST_TARGET= BUILD= LINKER= RUNNER= ZIG_TARGET= ZIG_CPU=
	CARGO_FEATURES= RUSTFLAGS_EXTRA= SIZE_MAX=
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

# zig (tests/setup.sh installs PyPI's ziglang into target/zig) is the C toolchain of the
# cross boards: its clang driver and LLD link, its bundled musl is the C runtime, built for
# the profile's ZIG_TARGET and ZIG_CPU (so with the board's float ABI: soft-float on MIPS).
zig_bin() {
	z="${MINIVRRP_ZIG:-}"
	if [ -z "$z" ]; then
		for z in "$ROOT"/target/zig/lib/python3*/site-packages/ziglang/zig; do :; done
	fi
	[ -x "$z" ] || die "no zig in $ROOT/target/zig: run tests/setup.sh (PyPI ziglang), or set MINIVRRP_ZIG"
	echo "$z"
}

# CROSS_FLAGS, the RUSTFLAGS of a BUILD=cross profile (load_board first), and the environment of
# board/cross/zig-cc, the linker. Rust's musl targets link their own self-contained crt
# objects by default, which a build-std toolchain does not have: -Clink-self-contained=no
# lets zig supply musl's crt1.o and libc.a, and LLVM's libunwind for std's `-lunwind`.
cross_rustflags() {
	nightly_has_rust_src || die "nightly has no rust-src: rustup component add rust-src --toolchain nightly"
	MINIVRRP_ZIG=$(zig_bin)
	MINIVRRP_ZIG_TARGET=$ZIG_TARGET
	MINIVRRP_ZIG_CPU=$ZIG_CPU
	# zig builds musl, libunwind and compiler_rt for a target on its first link there (about
	# 45 s on 2 cores) and keeps them in its own cache (~/.cache/zig, or ZIG_GLOBAL_CACHE_DIR),
	# outside target/, so a fresh clone on the same machine links at once.
	export MINIVRRP_ZIG MINIVRRP_ZIG_TARGET MINIVRRP_ZIG_CPU
	# -Crelocation-model=static: a static executable needs no position-independent code. On
	# MIPS, PIC reaches every function and global through the GOT ($gp loads, jalr $t9);
	# non-PIC code (CPIC, what gcc emits for executables) calls directly: mipsel 571,640 ->
	# 514,060 bytes. The unit tests under qemu (test-cross) are built the same way.
	CROSS_FLAGS="-Ctarget-feature=+crt-static -Crelocation-model=static -Clink-self-contained=no"
	CROSS_FLAGS="$CROSS_FLAGS $RUSTFLAGS_EXTRA"
	# The linker as cargo's per-target setting (not -Clinker), so board/build.rs sees it in
	# RUSTC_LINKER and discards the sections nothing reads.
	export "CARGO_TARGET_$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')_LINKER=$BOARD_DIR/cross/zig-cc"
}

# Nightly build-std with std's optimize_for_size, abort on panic (as the release profile;
# the panic message is still printed). Leaves target/<rust-target>/release/minivrrp.
build_cross() { # board
	load_board "$1"
	# panic=immediate-abort: a panic (a bug; input never panics) aborts without its message,
	# which drops std's panic formatting: about 40 % of the binary on these boards.
	# -Cforce-unwind-tables=no: with nothing ever unwinding (immediate-abort), .eh_frame and
	# .eh_frame_hdr are dead weight (47 KB on mipsel with GNU ld, which cannot discard them);
	# not emitting them for Rust code (std included) also leaves board/build.rs's discard
	# little to do.
	# -z max-page-size=4096: the linkers align the data segment for 64 KB pages on MIPS and
	# ARM by default (GNU ld left up to 64 KB of zero padding in the file). The kernels of these routers use
	# 4 KB pages (OpenWrt's ramips and ipq40xx, and every ARMv7 Linux), so a 4 KB alignment
	# loads the same way and saves that padding.
	cross_rustflags
	flags="$CROSS_FLAGS -Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no"
	flags="$flags -Clink-arg=-Wl,-z,max-page-size=4096 -Clink-arg=-Wl,-z,common-page-size=4096"
	# -z norelro: the linker starts the data segment so that its RELRO part ends on a page
	# boundary (GNU ld: 3 KB of padding after the code on mipsel). Only a dynamic loader
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
	cross_rustflags
	flags=$CROSS_FLAGS
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
	else
		# shellcheck disable=SC2086
		bin=$(build_release "$RUST_TARGET" $CARGO_FEATURES)
	fi
	check_binary "$BOARD" "$bin"
	size_gate "$BOARD" "$bin"
	report_header
	report_line "$BOARD" "$RUST_TARGET" "$bin"
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
	mkdir -p "$ROOT/target/cross"
	bad="$ROOT/target/cross/bad-vrid.uci"
	printf "config instance 'vi1'\n\toption interface 'br-lan'\n\toption vrid '300'\n\tlist vip '10.0.0.254/24'\n" >"$bad"
	rc=0
	err=$($RUNNER "$2" check -f "$bad" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -eq 1 ] && echo "$err" | grep -q "$bad:3:" ||
		die "$BOARD: check of a bad VRID under $RUNNER gave exit $rc: $err"
	echo "$BOARD: runs under $RUNNER (--version, check ok, bad VRID refused)" >&2
}

# Gates on a built binary, whatever built it: a static executable (no interpreter, no
# dynamic section) for the board's ELF class, machine and byte order, with the board's float
# ABI; on MIPS, no FPU instruction anywhere in the code. OpenWrt's MIPS userland is
# soft-float and its ramips/ath79 kernels have no FPU emulator (KERNEL_MIPS_FP_SUPPORT), so
# one FPU instruction is SIGILL on a router, even if qemu or a kernel with an emulator runs it.
check_binary() { # board binary
	load_board "$1"
	bin=$2
	hdr=$(readelf -hW "$bin") || die "$BOARD: $bin is not an ELF file"
	phdrs=$(readelf -lW "$bin")
	fail() { die "$BOARD: $bin: $*"; }
	echo "$hdr" | grep -q 'Type: *EXEC' || fail "not a (non-PIE) executable"
	echo "$phdrs" | grep -Eq '^ *(INTERP|DYNAMIC) ' && fail "not static (has INTERP or DYNAMIC)"
	case "$RUST_TARGET" in
	x86_64-*) want="ELF64 little X86-64" ;;
	aarch64-*) want="ELF64 little AArch64" ;;
	armv7-*) want="ELF32 little ARM" ;;
	mipsel-*) want="ELF32 little MIPS" ;;
	mips-*) want="ELF32 big MIPS" ;;
	*) fail "no gate for $RUST_TARGET" ;;
	esac
	set -- $want
	echo "$hdr" | grep -q "Class: *$1\$" || fail "not $1"
	echo "$hdr" | grep -q "Data: *2's complement, $2 endian" || fail "not $2-endian"
	echo "$hdr" | grep -q "Machine: *.*$3" || fail "machine is not $3"
	attrs=$(readelf -A "$bin" 2>/dev/null || true)
	case "$RUST_TARGET" in
	armv7-*)
		# Hard-float EABI (VFP registers carry float arguments, as in OpenWrt's ARM userland),
		# at most VFPv3-D16 and no NEON: the one binary for Cortex-A7, A9 (D16) and A15.
		echo "$hdr" | grep -q 'hard-float ABI' || fail "not the hard-float EABI"
		echo "$attrs" | grep -q 'Tag_ABI_VFP_args: VFP registers' || fail "float arguments not in VFP registers"
		echo "$attrs" | grep -Eq 'Tag_FP_arch: (VFPv2|VFPv3-D16)$' || fail "needs more than VFPv3-D16: $(echo "$attrs" | grep Tag_FP_arch)"
		echo "$attrs" | grep -q 'Tag_Advanced_SIMD_arch' && fail "uses NEON"
		;;
	mips*)
		echo "$attrs" | grep -q 'FP ABI: Soft float' || fail "float ABI is not soft-float: $(echo "$attrs" | grep 'FP ABI')"
		echo "$attrs" | grep -q 'ISA: MIPS32r2' || fail "not MIPS32r2 (24Kc)"
		mips_fpu_scan "$bin"
		;;
	esac
	echo "$BOARD: $(echo "$want" | tr ' ' '/') static executable${attrs:+, float ABI ok}" >&2
}

# Disassembles every executable section and fails on any instruction that needs the FPU
# (coprocessor 1), decoded from the instruction word itself: major opcodes COP1 (0x11: all
# FPU arithmetic, compares, cvt, mtc1/mfc1/ctc1/cfc1, bc1t/bc1f), COP1X (0x13: madd.d,
# lwxc1...), LWC1 0x31, LDC1 0x35, SWC1 0x39, SDC1 0x3d, and SPECIAL/MOVCI (movf/movt read
# the FPU condition codes). GNU objdump for mips-linux-gnu reads both byte orders.
mips_fpu_count() { # file: prints "<FPU lines>" then "<words> <fpu>"
	mips-linux-gnu-objdump -d "$1" | awk '
		$1 ~ /^[0-9a-f]+:$/ && $2 ~ /^[0-9a-f]+$/ && length($2) == 8 {
			w = $2; n++
			op = (index(H, substr(w, 1, 1)) - 1) * 16 + index(H, substr(w, 2, 1)) - 1
			op = int(op / 4)
			fn = ((index(H, substr(w, 7, 1)) - 1) * 16 + index(H, substr(w, 8, 1)) - 1) % 64
			if (op == 17 || op == 19 || op == 49 || op == 53 || op == 57 || op == 61 || (op == 0 && fn == 1)) {
				bad++
				if (bad <= 10) print "FPU: " $0
			}
		}
		END { printf "%d %d\n", n, bad }' H=0123456789abcdef
}

mips_fpu_scan() { # binary
	command -v mips-linux-gnu-objdump >/dev/null 2>&1 ||
		die "no mips-linux-gnu-objdump: run tests/setup.sh (binutils-mips-linux-gnu)"
	mips-linux-gnu-objdump -d --no-show-raw-insn "$1" >/dev/null || die "objdump cannot read $1"
	out=$(mips_fpu_count "$1")
	echo "$out" | grep '^FPU: ' >&2 || true
	set -- "$1" $(echo "$out" | tail -n 1)
	echo "$BOARD: FPU scan: $2 instruction words, $3 FPU" >&2
	[ "$2" -gt 0 ] || die "$BOARD: the scan found no instructions in $1"
	[ "$3" -eq 0 ] || die "$BOARD: FPU instructions in $1 (SIGILL on a router without an FPU emulator)"
}

# The scan itself is tested: one FPU instruction of every kind it must catch, and one integer
# instruction, assembled for both byte orders; it has to count exactly the FPU ones.
mips_fpu_selftest() {
	command -v mips-linux-gnu-as >/dev/null 2>&1 || die "no mips-linux-gnu-as (binutils-mips-linux-gnu)"
	mkdir -p "$ROOT/target/cross"
	src="$ROOT/target/cross/fpu-selftest.s"
	printf '%s\n' .set\ mips32r2 .set\ hardfloat .set\ noreorder 'lwc1 $f0,0($a0)' 'swc1 $f0,0($a0)' \
		'ldc1 $f0,0($a0)' 'sdc1 $f0,0($a0)' 'mtc1 $a0,$f0' 'mfc1 $a0,$f0' 'cfc1 $a0,$31' \
		'ctc1 $a0,$31' 'add.s $f0,$f0,$f0' 'mul.d $f0,$f2,$f4' 'div.d $f0,$f2,$f4' \
		'sqrt.d $f0,$f0' 'cvt.d.w $f0,$f0' 'c.eq.d $f0,$f2' 'bc1t 1f' 'madd.d $f0,$f2,$f4,$f6' \
		'lwxc1 $f0,$a0($a1)' 'movf $a0,$a1,$fcc0' '1: addu $a0,$a1,$a2' 'lw $a0,0($a1)' >"$src"
	for endian in -EB -EL; do
		mips-linux-gnu-as "$endian" -o "$src.o" "$src" || die "cannot assemble $src"
		got=$(mips_fpu_count "$src.o" | tail -n 1)
		[ "$got" = "20 18" ] || die "FPU scan self-test ($endian): counted '$got' (words FPU), want '20 18'"
	done
	echo "FPU scan self-test: 18 of 18 FPU instructions caught, both byte orders" >&2
}

# The size goal of a router binary, stripped bytes: the package has to fit the flash of an
# 8 MB router beside the rest of OpenWrt. Every router profile (BUILD=cross) is held to it,
# unless its .env sets SIZE_MAX (a profile that does not meet the goal yet: then SIZE_MAX is
# the ceiling it may not grow past, and the gate prints how far over the goal it is).
ROUTER_GOAL_BYTES=600000

size_gate() { # board binary
	load_board "$1"
	[ "$BUILD" = cross ] || return 0
	n=$(bytes "$2")
	max=${SIZE_MAX:-$ROUTER_GOAL_BYTES}
	[ "$n" -le "$max" ] || die "$BOARD: $2 is $n bytes, over its size limit of $max bytes"
	if [ "$n" -le "$ROUTER_GOAL_BYTES" ]; then
		echo "$BOARD: size gate: $n <= $ROUTER_GOAL_BYTES bytes (the router goal)" >&2
	else
		echo "$BOARD: size gate: $n <= $max bytes (its ceiling); $((n - ROUTER_GOAL_BYTES)) bytes over the $ROUTER_GOAL_BYTES-byte router goal" >&2
	fi
}

# The size gate checks itself: a router profile passes at 600,000 bytes and fails one byte
# over; a profile with SIZE_MAX is held to that; x86_64 (no size goal) passes.
size_gate_selftest() {
	mkdir -p "$ROOT/target/cross"
	f="$ROOT/target/cross/size-gate-selftest"
	head -c "$ROUTER_GOAL_BYTES" /dev/zero >"$f"
	(size_gate aarch64_cortex-a53 "$f" 2>/dev/null) || die "size gate self-test: $ROUTER_GOAL_BYTES bytes refused"
	head -c 1 /dev/zero >>"$f"
	(size_gate aarch64_cortex-a53 "$f" 2>/dev/null) && die "size gate self-test: $((ROUTER_GOAL_BYTES + 1)) bytes passed"
	(size_gate x86_64 "$f" 2>/dev/null) || die "size gate self-test: x86_64 held to the router goal"
	load_board mipsel_24kc
	[ -n "$SIZE_MAX" ] || return 0
	truncate -s "$SIZE_MAX" "$f"
	(size_gate mipsel_24kc "$f" 2>/dev/null) || die "size gate self-test: mipsel_24kc refused at its SIZE_MAX"
	truncate -s "$((SIZE_MAX + 1))" "$f"
	(size_gate mipsel_24kc "$f" 2>/dev/null) && die "size gate self-test: mipsel_24kc passed over its SIZE_MAX"
	rm -f "$f"
	echo "size gate self-test: 600,000 bytes pass, one more fails; SIZE_MAX and x86_64 honoured" >&2
}

# Every profile: each distinct binary built once (the aarch64 and armv7 profiles share one
# per Rust target), run under qemu-user, through the gates, packaged as .ipk and .apk
# (openwrt/build-ipk.sh) for every profile; one table of sizes.
build_all() {
	mips_fpu_selftest
	size_gate_selftest
	built=" "
	rows=""
	for f in "$BOARD_DIR"/x86_64.env "$BOARD_DIR"/*.env; do
		b=$(basename "$f" .env)
		case "$rows" in *"|$b "*) continue ;; esac
		load_board "$b"
		case "$built" in
		*" $RUST_TARGET "*) ;;
		*)
			echo "== $BOARD ($RUST_TARGET)" >&2
			if [ "$BUILD" = cross ]; then
				bin=$(build_cross "$BOARD")
				smoke_cross "$BOARD" "$bin"
			else
				# shellcheck disable=SC2086
				bin=$(build_release "$RUST_TARGET" $CARGO_FEATURES)
			fi
			built="$built$RUST_TARGET "
			;;
		esac
		bin="target/$RUST_TARGET/release/minivrrp"
		check_binary "$BOARD" "$bin"
		size_gate "$BOARD" "$bin"
		ipk=$("$ROOT/openwrt/build-ipk.sh" "$BOARD")
		apk=$("$ROOT/openwrt/build-ipk.sh" --apk "$BOARD")
		rows="$rows|$BOARD $RUST_TARGET $bin $(bytes "$ipk") $(bytes "$apk")
"
	done
	printf '%-26s %-32s %10s %10s %10s %10s %10s\n' board rust-target stripped gzip-9 xz-9e ipk apk
	echo "$rows" | while read -r b t p i a; do
		[ -n "$b" ] || continue
		printf '%-26s %-32s %10s %10s %10s %10s %10s\n' "${b#|}" "$t" "$(bytes "$p")" \
			"$(gz_bytes "$p")" "$(xz_bytes "$p")" "$i" "$a"
	done
}

[ $# -ge 1 ] || die "usage: board/build.sh BOARD|all|check BOARD [BIN]|fpu-selftest|test-cross|tiny-x86_64|tiny-aarch64|check-atomics|list"
case "$1" in
test-cross)
	shift
	[ $# -gt 0 ] || set -- mips_24kc mipsel_24kc arm_cortex-a7_neon-vfpv4
	for b in "$@"; do test_cross "$b"; done
	exit
	;;
fpu-selftest) mips_fpu_selftest; exit ;;
size-selftest) size_gate_selftest; exit ;;
check)
	[ $# -ge 2 ] || die "usage: board/build.sh check BOARD [BINARY]"
	load_board "$2"
	check_binary "$BOARD" "${3:-target/$RUST_TARGET/release/minivrrp}"
	size_gate "$BOARD" "${3:-target/$RUST_TARGET/release/minivrrp}"
	exit
	;;
esac
[ $# -eq 1 ] || die "usage: board/build.sh BOARD|all|check BOARD [BIN]|fpu-selftest|test-cross|tiny-x86_64|tiny-aarch64|check-atomics|list"
case "$1" in
list)
	for f in "$BOARD_DIR"/*.env; do
		load_board "$(basename "$f" .env)"
		printf '%-26s %-32s %-18s %-6s %s\n' "$BOARD" "$RUST_TARGET" "$OPENWRT_TARGET" "$BUILD" \
			"${CARGO_FEATURES:-default features}"
	done
	;;
all) build_all ;;
tiny-*) build_tiny "${1#tiny-}" ;;
check-atomics) check_atomics ;;
*) build_board "$1" ;;
esac
