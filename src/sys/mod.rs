//! The system layer: the only code that makes syscalls, and so the only code allowed `unsafe`
//! (each block with a `// SAFETY:` comment saying why it is sound).

#![allow(unsafe_code)]

pub mod bpf;
pub mod clock;
pub mod fd;
pub mod file;
pub mod genl;
pub mod icmp;
pub mod nlsock;
pub mod packet;
pub mod poll;
pub mod process;
pub mod rtnl;
pub mod sched;
pub mod signal;
pub mod tcp;
pub mod timer;
pub mod unix;
