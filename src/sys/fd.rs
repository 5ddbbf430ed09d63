//! Small file-descriptor helpers shared by the socket wrappers.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// Put an fd in non-blocking mode: the poll loop must never block in a read or write.
pub fn set_nonblocking(fd: impl AsFd) -> Result<(), Errno> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// A non-blocking pipe (read end, write end), close-on-exec. Used to wake the loop and in tests.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
}

/// A blocking pipe (read end, write end), close-on-exec: a child's output, or the error pipe
/// its `execve` closes.
pub fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
}

/// `read(2)` that maps EAGAIN to `Ok(None)`, so callers can tell "drained" from "error".
pub fn read_nb(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
    match nix::unistd::read(fd, buf) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `write(2)` that maps EAGAIN to `Ok(None)`.
pub fn write_nb(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<Option<usize>, Errno> {
    match nix::unistd::write(fd, buf) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Raise the soft limit on open files to `want` (at most the hard limit; never lowers it).
/// Returns the soft limit in force afterwards. The loop sizes its tables for one fd per
/// health-check probe; procd and many shells start daemons with a soft limit of 1024, which
/// thousands of real servers checked at once would run into (EMFILE) long before the tables.
pub fn raise_nofile(want: u64) -> Result<u64, Errno> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    Errno::result(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let target = (want as libc::rlim_t).min(lim.rlim_max);
    if target > lim.rlim_cur {
        lim.rlim_cur = target;
        // SAFETY: as above.
        Errno::result(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    }
    // rlim_t is 32-bit on some 32-bit targets, 64-bit here.
    #[allow(clippy::unnecessary_cast)]
    Ok(lim.rlim_cur as u64)
}

/// The raw number of an fd, for registering it with the loop.
pub fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}

/// Wrap a raw `setsockopt` with a typed value; errors come back as `Errno`.
pub(crate) fn setsockopt_raw<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> Result<(), Errno> {
    // SAFETY: `val` points to a live `T` of exactly the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            val as *const T as *const libc::c_void,
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_nofile_raises_the_soft_limit_up_to_the_hard_one_and_never_lowers_it() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a valid struct; this test process owns its limits.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        #[allow(clippy::unnecessary_cast)]
        let hard = lim.rlim_max as u64;
        if hard < 600 {
            return;
        }
        lim.rlim_cur = 256;
        // SAFETY: a valid rlimit struct for setrlimit(2).
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        assert_eq!(raise_nofile(512).unwrap(), 512);
        // Lower than now: unchanged.
        assert_eq!(raise_nofile(300).unwrap(), 512);
        // Above the hard limit: the hard limit.
        assert_eq!(raise_nofile(u64::MAX >> 1).unwrap(), hard);
    }
}
