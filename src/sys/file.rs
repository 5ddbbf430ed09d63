//! Small file helpers for trackers (track_file) and for the hotplug hook check.

use nix::errno::Errno;

/// Copy `path` into a NUL-terminated stack buffer (no allocation).
pub(crate) fn with_cpath<T>(
    path: &str,
    f: impl FnOnce(*const libc::c_char) -> T,
) -> Result<T, Errno> {
    let mut buf = [0u8; 1024];
    if path.len() >= buf.len() || path.as_bytes().contains(&0) {
        return Err(Errno::ENAMETOOLONG);
    }
    buf[..path.len()].copy_from_slice(path.as_bytes());
    Ok(f(buf.as_ptr().cast()))
}

/// Read the first bytes of a small file (a track_file holds one integer), like keepalived:
/// one non-blocking read of at most `buf.len()` bytes. `Err(ENOENT)` when missing.
pub fn read_head(path: &str, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the path pointer is NUL-terminated and lives for the call.
    let fd = with_cpath(path, |p| unsafe {
        libc::open(p, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC)
    })?;
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `buf` is valid; `fd` is ours and closed right after.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    let err = Errno::last();
    // SAFETY: closing our own fd once.
    unsafe { libc::close(fd) };
    if n < 0 {
        Err(err)
    } else {
        Ok(n as usize)
    }
}

/// True when `path` exists and is executable by us (used for `/sbin/hotplug-call`).
pub fn is_executable(path: &str) -> bool {
    // SAFETY: the path pointer is NUL-terminated and lives for the call.
    with_cpath(path, |p| unsafe { libc::access(p, libc::X_OK) } == 0).unwrap_or(false)
}
