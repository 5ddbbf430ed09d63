//! Non-blocking TCP for connect/HTTP checks. Every call returns at once; the daemon polls the
//! fd as `check::ConnCheck::interest` says.

use core::net::SocketAddr;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Start a non-blocking connect. `EINPROGRESS` is the normal outcome: poll for POLLOUT and
/// then call [`connect_result`]. An immediate error (e.g. ENETUNREACH) is returned as `Err`.
pub fn connect(addr: SocketAddr) -> Result<OwnedFd, Errno> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2); the returned fd is owned right away.
    let raw = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `raw` is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // Close with a reset (zero linger), as HAProxy's checks do: the checker closes first, so
    // an orderly close would leave one TIME_WAIT socket per attempt for 60 s (60,000 of them
    // with 1000 servers checked every second, near the kernel's bucket limit at 4096) and
    // cost a FIN exchange each time.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    crate::sys::fd::setsockopt_raw(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &linger)?;
    let (storage, len) = sockaddr_from(addr);
    // SAFETY: `storage` is a valid sockaddr of `len` bytes.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if rc == 0 {
        return Ok(fd);
    }
    match Errno::last() {
        Errno::EINPROGRESS | Errno::EINTR => Ok(fd),
        e => Err(e),
    }
}

/// After POLLOUT (or POLLERR/POLLHUP): `Ok` if connected, else the connect's errno (SO_ERROR).
pub fn connect_result(fd: &OwnedFd) -> Result<(), Errno> {
    let mut err: libc::c_int = 0;
    let mut len = core::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err`/`len` are valid for getsockopt's out-parameters.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    if err != 0 {
        return Err(Errno::from_raw(err));
    }
    Ok(())
}

/// Write without raising SIGPIPE. `Err(EAGAIN)` means wait for POLLOUT.
pub fn write(fd: &OwnedFd, data: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `data` is a valid readable slice.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

/// Read what is there. `Ok(0)` is EOF; `Err(EAGAIN)` means wait for POLLIN.
pub fn read(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is a valid writable slice.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

/// Build a `sockaddr_storage` for `addr` (shared with `sys::icmp`).
pub(crate) fn sockaddr_from(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { core::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            (
                ss,
                core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { core::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                ss,
                core::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// Read a `sockaddr_storage` filled by the kernel back into a `SocketAddr`.
pub(crate) fn sockaddr_to(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { core::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            let ip = core::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { core::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            let ip = core::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(sin6.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// A check connection closes with a reset, not a FIN: the server reads ECONNRESET, and the
    /// checker keeps no TIME_WAIT socket.
    #[test]
    fn a_check_connection_closes_with_a_reset() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = connect(l.local_addr().unwrap()).unwrap();
        let (mut server, _) = l.accept().unwrap();
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 2000) };
        connect_result(&fd).unwrap();
        drop(fd);
        let mut buf = [0u8; 8];
        let e = server
            .read(&mut buf)
            .expect_err("an orderly close reads as EOF");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
}
