//! Size step for the shipped release binary (the goal: every router binary <= 600,000 bytes stripped).
//!
//! The release profile has `panic = "abort"`, so nothing ever unwinds: .eh_frame and
//! .eh_frame_hdr are read only to print a `RUST_BACKTRACE` stack trace after a panic, and
//! .gcc_except_table (landing-pad tables) only by the unwinder's personality routine. Together
//! they are 81.5 KB of the aarch64 binary (677,152 -> 595,640 bytes), most of it for the
//! prebuilt std. A linker script discards them. A panic still prints its message and location and aborts; with
//! RUST_BACKTRACE set the "stack backtrace:" list is empty. Set MINIVRRP_KEEP_EH_FRAME=1 at
//! build time to keep them (to get backtraces from a release build).
//!
//! Only bins (never test harnesses, which unwind), only the release profile, only musl
//! targets linked by LLD: rust-lld (.cargo/config.toml sets it for x86_64) or zig's
//! (board/cross/zig-cc, the router boards). A link through cc + GNU ld (the OpenWrt SDK's
//! linker) keeps them: GNU ld refuses to discard .eh_frame that crtbegin's frame registration
//! refers to.
//!
//! On MIPS the script also discards .pdr: LLVM writes a procedure descriptor for every
//! function there (for the IRIX-era debuggers that read it), a non-alloc section LLD keeps
//! even with --strip-all. It was 93,152 bytes of the 689,224-byte mipsel binary.

use std::{env, fs, path::PathBuf};

const SCRIPT: &str = "SECTIONS { /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) *(.gcc_except_table*) *(.pdr) } } INSERT AFTER .text;\n";

fn main() {
    println!("cargo:rerun-if-changed=board/build.rs");
    println!("cargo:rerun-if-env-changed=MINIVRRP_KEEP_EH_FRAME");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let var = |k: &str| env::var(k).unwrap_or_default();
    let wanted = var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_ENV") == "musl"
        && (var("RUSTC_LINKER").ends_with("rust-lld") || var("RUSTC_LINKER").ends_with("zig-cc"))
        && var("MINIVRRP_KEEP_EH_FRAME") != "1";
    if !wanted {
        return;
    }
    let Some(out) = env::var_os("OUT_DIR") else {
        return;
    };
    let script = PathBuf::from(out).join("discard-eh-frame.ld");
    if fs::write(&script, SCRIPT).is_ok() {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
