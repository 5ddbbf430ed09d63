//! Unix stream sockets for the control channel: a listening socket created mode 0600, and
//! non-blocking connections whose peer's uid is read with `SO_PEERCRED`.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::sys::stat::{umask, Mode};

/// The daemon's end: a bound, listening, non-blocking socket, unlinked when dropped (unless
/// the path names another daemon's socket by then).
pub struct ControlListener {
    inner: UnixListener,
    path: PathBuf,
    /// The socket file's (device, inode) right after bind.
    file: Option<(u64, u64)>,
}

/// (device, inode) of `path` itself, if it exists.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl ControlListener {
    /// Bind `path` with mode 0600 (only root may connect; the daemon runs as root). A socket
    /// file left by a crashed daemon is replaced; one a live daemon answers on is an error, so
    /// two daemons never steal each other's socket.
    pub fn bind(path: &Path) -> io::Result<ControlListener> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another daemon is listening", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        // The umask makes bind create the file 0600 from the start: a chmod afterwards would
        // leave a window in which anyone could connect. Single-threaded, so no other file is
        // created meanwhile.
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        umask(old);
        let inner = bound?;
        inner.set_nonblocking(true)?;
        Ok(ControlListener {
            inner,
            path: path.to_path_buf(),
            file: file_id(path),
        })
    }

    /// Accept one pending connection (`Ok(None)` when there is none), non-blocking.
    pub fn accept(&self) -> io::Result<Option<ControlConn>> {
        match self.inner.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(true)?;
                Ok(Some(ControlConn { inner: s }))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsRawFd for ControlListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl Drop for ControlListener {
    fn drop(&mut self) {
        // A package upgrade starts the new daemon while this one is still leaving (procd
        // starts the new instance as it stops the old one); the new one may have bound the
        // path again by now, and its socket must stay.
        if self.file.is_some() && file_id(&self.path) == self.file {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One accepted client connection, non-blocking.
pub struct ControlConn {
    inner: UnixStream,
}

/// What a non-blocking read or write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    /// This many bytes moved.
    Done(usize),
    /// Nothing now (EAGAIN).
    WouldBlock,
    /// The peer closed (read of 0 bytes) or the connection failed.
    Closed,
}

impl ControlConn {
    /// The peer's uid from `SO_PEERCRED` (the credentials it had when it connected).
    pub fn peer_uid(&self) -> io::Result<u32> {
        getsockopt(&self.inner, PeerCredentials)
            .map(|c| c.uid())
            .map_err(io::Error::from)
    }

    pub fn read(&mut self, buf: &mut [u8]) -> Io {
        match self.inner.read(buf) {
            Ok(0) => Io::Closed,
            Ok(n) => Io::Done(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Io::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Io::WouldBlock,
            Err(_) => Io::Closed,
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> Io {
        match self.inner.write(buf) {
            Ok(0) => Io::Closed,
            Ok(n) => Io::Done(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Io::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Io::WouldBlock,
            Err(_) => Io::Closed,
        }
    }
}

impl AsRawFd for ControlConn {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// The client's end (the CLI): a blocking connection with a timeout on every read and write,
/// so a wedged daemon cannot hang the command.
pub fn connect(path: &Path, timeout: std::time::Duration) -> io::Result<UnixStream> {
    let s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// The uid this process runs as.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
