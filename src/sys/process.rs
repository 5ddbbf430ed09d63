//! Spawning scripts (checks, notify commands), killing and reaping them.
//!
//! `spawn` prepares everything (argv/envp pointer arrays, resolved program path, pipes) in the
//! parent on the stack, so the forked child only makes async-signal-safe calls: it works in a
//! multi-threaded process too, and nothing allocates. The child gets its own session
//! (`setsid`), so a timeout kills the script and everything it started with one signal to the
//! process group. An exec failure reaches the parent through a CLOEXEC pipe as an errno.

use crate::check::ExitStatus;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Most arguments + environment entries a spawned command can have.
const MAX_PTRS: usize = 192;
/// Bytes for all argument/environment strings we copy (inherited environ is referenced).
const STR_SPACE: usize = 4096;

extern "C" {
    static environ: *const *const libc::c_char;
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    /// Capture stdout+stderr through a non-blocking pipe (`Child::output`); otherwise they go
    /// to /dev/null.
    pub capture_output: bool,
    /// Run as uid/gid (when we are root).
    pub user: Option<(u32, u32)>,
}

#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    /// Read end of the stdout/stderr pipe (non-blocking), when captured. EOF after exit.
    pub output: Option<OwnedFd>,
}

struct Strings {
    space: [u8; STR_SPACE],
    used: usize,
}

impl Strings {
    fn add(&mut self, s: &[u8]) -> Result<*const libc::c_char, Errno> {
        if s.contains(&0) || self.used + s.len() + 1 > STR_SPACE {
            return Err(Errno::E2BIG);
        }
        let start = self.used;
        self.space[start..start + s.len()].copy_from_slice(s);
        self.space[start + s.len()] = 0;
        self.used += s.len() + 1;
        Ok(self.space[start..].as_ptr().cast())
    }
}

fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: both fds are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Find `prog` in PATH (from the environment) if it has no '/'; writes the result into
/// `strings` and returns it.
fn resolve(prog: &str, strings: &mut Strings) -> Result<*const libc::c_char, Errno> {
    if prog.contains('/') {
        return strings.add(prog.as_bytes());
    }
    // getenv, not std::env::var: no allocation on this per-run path.
    // SAFETY: getenv returns a pointer into the environment or NULL; we only read it, and
    // this process does not modify its environment while checks run.
    let path = unsafe {
        let p = libc::getenv(c"PATH".as_ptr());
        if p.is_null() {
            None
        } else {
            core::ffi::CStr::from_ptr(p).to_str().ok()
        }
    }
    .unwrap_or("/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let mut buf = [0u8; 512];
        let need = dir.len() + 1 + prog.len();
        if need >= buf.len() {
            continue;
        }
        buf[..dir.len()].copy_from_slice(dir.as_bytes());
        buf[dir.len()] = b'/';
        buf[dir.len() + 1..need].copy_from_slice(prog.as_bytes());
        // SAFETY: buf is NUL-terminated after `need`.
        if unsafe { libc::access(buf.as_ptr().cast(), libc::X_OK) } == 0 {
            return strings.add(&buf[..need]);
        }
    }
    Err(Errno::ENOENT)
}

/// Fork and exec `argv` with the inherited environment plus `env_extra` ("KEY=value",
/// overriding inherited keys). Returns once exec succeeded or failed.
pub fn spawn(argv: &[&str], env_extra: &[&str], opts: &SpawnOptions) -> Result<Child, Errno> {
    let prog = *argv.first().ok_or(Errno::EINVAL)?;
    let mut strings = Strings {
        space: [0; STR_SPACE],
        used: 0,
    };
    let path = resolve(prog, &mut strings)?;
    let mut argp: [*const libc::c_char; 64] = [core::ptr::null(); 64];
    if argv.len() >= argp.len() {
        return Err(Errno::E2BIG);
    }
    for (slot, a) in argp.iter_mut().zip(argv) {
        *slot = strings.add(a.as_bytes())?;
    }
    let mut envp: [*const libc::c_char; MAX_PTRS] = [core::ptr::null(); MAX_PTRS];
    let mut n = 0;
    // SAFETY: `environ` is the process's NULL-terminated environment; we only read it.
    unsafe {
        let mut e = environ;
        while !e.is_null() && !(*e).is_null() && n + env_extra.len() + 1 < MAX_PTRS {
            let entry = core::ffi::CStr::from_ptr(*e).to_bytes();
            let overridden = env_extra.iter().any(|x| {
                let key = x.split('=').next().unwrap_or(x).as_bytes();
                entry.len() > key.len() && entry.starts_with(key) && entry[key.len()] == b'='
            });
            if !overridden {
                envp[n] = *e;
                n += 1;
            }
            e = e.add(1);
        }
    }
    for x in env_extra {
        envp[n] = strings.add(x.as_bytes())?;
        n += 1;
    }

    // SAFETY: opening /dev/null for the child's stdin.
    let devnull = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if devnull < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fresh fd.
    let devnull = unsafe { OwnedFd::from_raw_fd(devnull) };
    let out = if opts.capture_output {
        Some(pipe_cloexec()?)
    } else {
        None
    };
    let (err_r, err_w) = pipe_cloexec()?;
    let out_w = out
        .as_ref()
        .map_or(devnull.as_raw_fd(), |(_, w)| w.as_raw_fd());
    let (null_fd, errw_fd) = (devnull.as_raw_fd(), err_w.as_raw_fd());

    // SAFETY: fork; the child branch below only calls async-signal-safe functions on data
    // prepared above and always ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        // SAFETY: child side, async-signal-safe calls only.
        unsafe {
            let fail = |fd: RawFd| -> ! {
                let e = *libc::__errno_location();
                libc::write(fd, (&e as *const i32).cast(), 4);
                libc::_exit(127)
            };
            // The daemon blocks signals for signalfd and Rust ignores SIGPIPE; a script must
            // start with the defaults.
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, core::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            if libc::dup2(null_fd, 0) < 0 || libc::dup2(out_w, 1) < 0 || libc::dup2(out_w, 2) < 0 {
                fail(errw_fd);
            }
            libc::setsid();
            if let Some((uid, gid)) = opts.user {
                if libc::setgroups(0, core::ptr::null()) < 0
                    || libc::setgid(gid) < 0
                    || libc::setuid(uid) < 0
                {
                    fail(errw_fd);
                }
            }
            libc::execve(path, argp.as_ptr(), envp.as_ptr());
            fail(errw_fd);
        }
    }
    drop(err_w);
    let out_r = out.map(|(r, w)| {
        drop(w);
        r
    });
    // Exec closes the error pipe (CLOEXEC): EOF means success, 4 bytes are the errno.
    let mut e = [0u8; 4];
    let got = loop {
        // SAFETY: reading into a 4-byte buffer from our pipe.
        let r = unsafe { libc::read(err_r.as_raw_fd(), e.as_mut_ptr().cast(), 4) };
        if r < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        break r;
    };
    if got == 4 {
        // The child already _exit()ed or is about to: reap it so it leaves no zombie.
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        return Err(Errno::from_raw(i32::from_ne_bytes(e)));
    }
    if let Some(r) = &out_r {
        // SAFETY: setting O_NONBLOCK on our own fd.
        unsafe {
            let fl = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(r.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    Ok(Child { pid, output: out_r })
}

/// SIGKILL the child's whole process group (it is a session leader), so grandchildren that
/// hold the output pipe die too.
pub fn kill(pid: i32) -> Result<(), Errno> {
    if pid <= 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: kill(2) on a pid we spawned.
    if unsafe { libc::kill(-pid, libc::SIGKILL) } == 0 {
        return Ok(());
    }
    // SAFETY: as above, the single process in case the group is already gone.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

fn decode(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    }
}

/// Reap this child if it has exited (for code sharing the process with other spawners).
pub fn reap_pid(pid: i32) -> Option<ExitStatus> {
    let mut st = 0;
    // SAFETY: non-blocking waitpid on our own child.
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
    if r == pid {
        Some(decode(st))
    } else {
        None
    }
}

/// Read what the child wrote. `Ok(0)` is EOF, `Err(EAGAIN)` means nothing yet.
pub fn read_output(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    super::tcp::read(fd, buf)
}

/// Resolve a user name to (uid, gid) at config load.
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    // SAFETY: passwd is plain data (integers and pointers); all-zero is a valid value.
    let mut pwd: libc::passwd = unsafe { core::mem::zeroed() };
    let mut buf = [0 as libc::c_char; 2048];
    let mut result: *mut libc::passwd = core::ptr::null_mut();
    let rc = super::file::with_cpath(name, |p| {
        // SAFETY: all buffers are valid for getpwnam_r.
        unsafe { libc::getpwnam_r(p, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) }
    })
    .ok()?;
    if rc != 0 || result.is_null() {
        return None;
    }
    Some((pwd.pw_uid, pwd.pw_gid))
}
