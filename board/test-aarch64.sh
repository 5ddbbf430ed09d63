#!/bin/sh
# board/test-aarch64.sh - run the library's unit tests as aarch64 code under qemu-user.
#
# cargo builds the test binary for aarch64-unknown-linux-musl (rust-lld, static musl) and
# runs it through the runner in .cargo/config.toml, qemu-aarch64-static: no binfmt_misc
# needed. This catches endianness/alignment/word-size assumptions in the pure layers; it
# cannot exercise genetlink or multicast membership, which qemu-user 7.2 does not pass
# through (toolchain notes §3), so those stay with the native netns tests.
#
#   board/test-aarch64.sh [extra cargo test args, e.g. a test name filter]
set -eu
cd "$(dirname "$0")/.."

if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
	echo "board/test-aarch64.sh: qemu-aarch64-static not found (apt-get install qemu-user-static)" >&2
	exit 2
fi

exec cargo test --locked --lib --target aarch64-unknown-linux-musl "$@"
