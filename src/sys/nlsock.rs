//! Opening a netlink socket, shared by rtnetlink ([`super::rtnl`]) and generic netlink
//! ([`super::genl`]). What travels over it is built and parsed by the pure [`crate::netlink`].

use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The step of [`open`] that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Socket,
    Bind,
    RcvTimeout,
}

/// Which step of [`open`] failed, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenError {
    pub step: Step,
    pub errno: Errno,
}

/// `socket(AF_NETLINK, SOCK_RAW, protocol)`, close-on-exec, optionally non-blocking, bound
/// with a kernel-assigned port id to the multicast `groups` (0: requests only). A receive
/// timeout, when given, bounds how long a lost reply can stall a blocking caller.
pub fn open(
    protocol: libc::c_int,
    groups: u32,
    nonblock: bool,
    rcv_timeout_secs: Option<libc::time_t>,
) -> Result<OwnedFd, OpenError> {
    let fail = |step| OpenError {
        step,
        errno: Errno::last(),
    };
    let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
    if nonblock {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain socket(2) call; the result is checked before use.
    let rc = unsafe { libc::socket(libc::AF_NETLINK, ty, protocol) };
    if rc < 0 {
        return Err(fail(Step::Socket));
    }
    // SAFETY: fresh fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(rc) };
    // SAFETY: sockaddr_nl is plain old data; nl_pid 0 = "kernel assigns the port id".
    let mut sa: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_groups = groups;
    // SAFETY: valid sockaddr_nl of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
            core::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(fail(Step::Bind));
    }
    if let Some(secs) = rcv_timeout_secs {
        let tv = libc::timeval {
            tv_sec: secs,
            tv_usec: 0,
        };
        super::fd::setsockopt_raw(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
            .map_err(|errno| OpenError {
                step: Step::RcvTimeout,
                errno,
            })?;
    }
    Ok(fd)
}
