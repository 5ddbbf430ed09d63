//! The system layer: the only code that makes syscalls.
pub mod genl;
