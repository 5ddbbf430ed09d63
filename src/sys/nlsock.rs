//! Netlink sockets for rtnetlink ([`super::rtnl`]) and generic netlink ([`super::genl`]):
//! opening, sending to the kernel, receiving from it. What travels over them is built and
//! parsed by the pure [`crate::netlink`].

use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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
    rcv_timeout_secs: Option<u32>,
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
            tv_sec: secs as _,
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

/// Sends one message to the kernel (port 0), retrying on EINTR.
pub fn send_to_kernel(fd: BorrowedFd<'_>, msg: &[u8]) -> Result<(), Errno> {
    // SAFETY: sockaddr_nl zeroed = the kernel (port 0).
    let mut to: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
    to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    loop {
        // SAFETY: msg and `to` are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
                &to as *const libc::sockaddr_nl as *const libc::sockaddr,
                core::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n >= 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// Receives one datagram the kernel sent into `buf` and returns its length, retrying on
/// EINTR. Datagrams from any other sender (another process's port) are dropped: only the
/// kernel answers requests and sends events. A datagram larger than `buf` is
/// `Err(EMSGSIZE)` (found with MSG_TRUNC), never parsed cut short. `flags` is passed on
/// (e.g. MSG_DONTWAIT); EAGAIN comes back as is.
pub fn recv_from_kernel(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: libc::c_int,
) -> Result<usize, Errno> {
    loop {
        // SAFETY: sockaddr_nl is plain data, filled by the kernel.
        let mut from: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
        let mut fromlen = core::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: buf is valid for buf.len() bytes; MSG_TRUNC makes the return value the
        // datagram's real length so truncation is detected.
        let n = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                flags | libc::MSG_TRUNC,
                &mut from as *mut libc::sockaddr_nl as *mut libc::sockaddr,
                &mut fromlen,
            )
        };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        let n = n as usize;
        if n > buf.len() {
            return Err(Errno::EMSGSIZE);
        }
        if from.nl_pid != 0 {
            continue;
        }
        return Ok(n);
    }
}
