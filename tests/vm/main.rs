//! The VM tier: tests that boot a kernel in qemu (the IPVS VM of `rootfs/vm/`, two emulated
//! MIPS routers) and run payloads or the router build inside it.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod ipvs_daemon_vm;
mod ipvs_vm;
mod malta_lab;

/// One VM test at a time: each boots qemu under TCG (no KVM here), which keeps a core busy,
/// and the MIPS routers' failover timing must not compete with an IPVS VM's boot.
fn one_vm() -> std::sync::MutexGuard<'static, ()> {
    static ONE_VM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_VM.lock().unwrap_or_else(|e| e.into_inner())
}
