//! The system layer: the only code that makes syscalls.
pub mod genl;
pub mod file;
pub mod icmp;
pub mod process;
pub mod tcp;
