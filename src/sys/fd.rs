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
