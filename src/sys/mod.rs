//! The system layer: the only code that makes syscalls.
pub mod clock;
pub mod fd;
pub mod poll;
pub mod signal;
