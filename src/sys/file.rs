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

/// Resolve a configured program name once, at config load: `(found, file)`, where `found` is
/// where a name without `/` was found in PATH (else the name itself) and `file` is it with
/// every symbolic link resolved: what will be executed. Runs at config load only, so it may
/// allocate.
pub fn resolve_program(name: &str) -> Result<(String, String), String> {
    use std::path::{Path, PathBuf};
    let found: Option<PathBuf> = if name.contains('/') {
        Some(PathBuf::from(name))
    } else {
        std::env::var("PATH")
            .unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
            .split(':')
            // An empty or relative PATH entry would be looked up from wherever we are.
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(name))
            .find(|p| is_executable(&p.to_string_lossy()))
    };
    let Some(found) = found else {
        return Err("not found in PATH".into());
    };
    let file = std::fs::canonicalize(&found).map_err(|e| format!("{}: {e}", found.display()))?;
    if !std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
        return Err(format!("{} is not a regular file", file.display()));
    }
    Ok((
        found.to_string_lossy().into_owned(),
        file.to_string_lossy().into_owned(),
    ))
}

/// keepalived `enable_script_security`: `Ok` when only root can change `file` (a path with
/// no symbolic links left, from [`resolve_program`]). Refused: the file or a directory above
/// it owned by a non-root user, or writable by a group other than root's or by everyone. A
/// sticky world-writable directory (`/tmp`) is refused only when the entry below it is not
/// root's: others cannot rename or replace root's entries there.
pub fn only_root_can_change(file: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::Path::new(file);
    // The file first, then each directory up to `/`. Every entry below a directory has been
    // found to be root's by then, so a sticky world-writable directory is no way in.
    for p in path.ancestors() {
        let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mode = m.mode();
        let what = p.display();
        if m.file_type().is_symlink() {
            return Err(format!("{what} is a symbolic link"));
        }
        if m.uid() != 0 {
            return Err(format!("{what} is owned by uid {}", m.uid()));
        }
        if mode & 0o020 != 0 && m.gid() != 0 {
            return Err(format!("{what} is writable by group {}", m.gid()));
        }
        let sticky = mode & 0o1000 != 0 && m.is_dir();
        if mode & 0o002 != 0 && !sticky {
            return Err(format!("{what} is writable by everyone"));
        }
    }
    Ok(())
}
