//! Errors from talking to the kernel's IPVS, worded for the operator's log.

use super::consts::*;
use super::model::{ServiceKey, SockAddr};
use super::nl::NlError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpvsError {
    /// The kernel has no IPVS generic-netlink family (ip_vs not built or not loaded). The
    /// daemon logs this once and keeps running VRRP without load balancing.
    NotAvailable,
    /// The kernel refused a change.
    Kernel {
        cmd: u8,
        service: ServiceKey,
        dest: Option<SockAddr>,
        /// Positive errno.
        errno: i32,
    },
    /// A kernel error answering a request that is not about one service (dumps, GETFAMILY).
    Request { what: &'static str, errno: i32 },
    /// A socket call failed (positive errno).
    Io { what: &'static str, errno: i32 },
    /// A reply could not be parsed.
    Decode(NlError),
    /// The kernel's answer did not follow the protocol (e.g. no reply).
    Protocol(&'static str),
}

impl From<NlError> for IpvsError {
    fn from(e: NlError) -> Self {
        IpvsError::Decode(e)
    }
}

/// The errno's symbolic name for the errors IPVS returns.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::ENOMEM => "ENOMEM",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOBUFS => "ENOBUFS",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAGAIN => "EAGAIN",
        _ => "errno",
    }
}

/// What an errno means for a given IPVS command (from net/netfilter/ipvs/ip_vs_ctl.c: ESRCH
/// for a missing service, ENOENT for a missing destination or scheduler, EEXIST for
/// duplicates, ERANGE... mapped to EINVAL-like argument errors).
fn meaning(cmd: u8, errno: i32) -> &'static str {
    let dest_cmd = matches!(
        cmd,
        IPVS_CMD_NEW_DEST | IPVS_CMD_SET_DEST | IPVS_CMD_DEL_DEST
    );
    match errno {
        libc::EEXIST if dest_cmd => "real server already exists",
        libc::EEXIST => "virtual server already exists",
        libc::ESRCH => "virtual server not found",
        libc::ENOENT if dest_cmd => "real server not found",
        libc::ENOENT => "scheduler not found (is its ip_vs_<name> module available?)",
        libc::EINVAL => "invalid argument",
        libc::EPERM => "not permitted (needs CAP_NET_ADMIN)",
        libc::EAFNOSUPPORT => "address family not supported",
        libc::ENOMEM => "out of memory",
        libc::EBUSY => "busy",
        _ => "kernel error",
    }
}

fn verb(cmd: u8) -> &'static str {
    match cmd {
        IPVS_CMD_NEW_SERVICE => "add virtual server",
        IPVS_CMD_SET_SERVICE => "edit virtual server",
        IPVS_CMD_DEL_SERVICE => "delete virtual server",
        IPVS_CMD_NEW_DEST => "add real server",
        IPVS_CMD_SET_DEST => "edit real server",
        IPVS_CMD_DEL_DEST => "delete real server",
        IPVS_CMD_GET_DEST => "list real servers of",
        _ => "ipvs command",
    }
}

impl core::fmt::Display for IpvsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IpvsError::NotAvailable => write!(
                f,
                "IPVS is not available in this kernel (generic netlink family \"IPVS\" not found; load ip_vs)"
            ),
            IpvsError::Kernel {
                cmd,
                service,
                dest,
                errno,
            } => {
                write!(f, "{}", verb(*cmd))?;
                if let Some(d) = dest {
                    write!(f, " {d} of")?;
                }
                write!(
                    f,
                    " {service}: {} ({}, {})",
                    meaning(*cmd, *errno),
                    errno_name(*errno),
                    errno
                )
            }
            IpvsError::Request { what, errno } => {
                write!(f, "{what}: kernel error {} ({errno})", errno_name(*errno))
            }
            IpvsError::Io { what, errno } => {
                write!(f, "{what}: {} ({errno})", errno_name(*errno))
            }
            IpvsError::Decode(e) => write!(f, "malformed IPVS reply: {e}"),
            IpvsError::Protocol(what) => write!(f, "IPVS netlink protocol error: {what}"),
        }
    }
}

impl std::error::Error for IpvsError {}
