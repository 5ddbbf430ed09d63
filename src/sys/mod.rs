//! The system layer: the only code that makes syscalls.
pub mod bpf;
pub mod clock;
pub mod fd;
pub mod packet;
pub mod poll;
pub mod rtnl;
pub mod signal;
