//! Spawning scripts (checks, notify commands), killing and reaping them.
//!
//! Programs are resolved once per configuration ([`pin`], at load and at reload): the
//! configured name is looked up in PATH and its symbolic links followed, and `spawn` executes
//! exactly that file from then on. Nothing is looked up again when a script runs, so a
//! symbolic link swapped or a program planted earlier in PATH after the check changes
//! nothing (keepalived pins what it resolved the same way). A name that could not be
//! resolved at load does not run until the next reload.
//!
//! `spawn` prepares everything (argv/envp pointer arrays, pipes) in the parent on the stack,
//! so the forked child only makes async-signal-safe calls: it works in a multi-threaded
//! process too, and nothing allocates. The child gets its own session (`setsid`), so a
//! timeout kills the script and everything it started with one signal to the process group,
//! and a parent-death signal (SIGTERM), so a script does not outlive a daemon that died. Its
//! environment is the daemon's without the variables that change how programs load or how a
//! shell splits words ([`SCRUBBED`]).
//!
//! `spawn` returns as soon as the child is forked: it never waits for the `execve`, which
//! may take seconds (a script on a disk that spun down). An exec failure leaves the errno in
//! a CLOEXEC pipe and exits 127; the reaper ([`reap`], [`reap_pid`]) reads the pipe of a
//! child that exited and reports [`ExitStatus::ExecFailed`].

use crate::check::ExitStatus;
use nix::errno::Errno;
use nix::sys::signal::Signal;
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

/// Environment variables a child never inherits (keepalived drops the first three): they
/// change which libraries a program loads or how a shell splits and expands what it runs.
/// Every `LD_` variable is dropped too.
pub const SCRUBBED: [&str; 7] = [
    "IFS",
    "BASH_ENV",
    "ENV",
    "CDPATH",
    "SHELLOPTS",
    "BASHOPTS",
    "GLOBIGNORE",
];

fn scrubbed(entry: &[u8]) -> bool {
    let key = entry.split(|&b| b == b'=').next().unwrap_or(entry);
    key.starts_with(b"LD_") || SCRUBBED.iter().any(|k| k.as_bytes() == key)
}

/// One configured program name and the file it resolved to at config load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The name as configured (`argv[0]` of the command line).
    pub name: String,
    /// Where PATH lookup found it (absolute; given to the program as `argv[0]`, so a
    /// multi-call binary such as busybox still sees the name it was called by).
    pub found: String,
    /// The file executed: `found` with every symbolic link resolved. `None`: the name did not
    /// resolve at load and does not run until a reload resolves it.
    pub exec: Option<String>,
}

/// The programs of the running configuration (replaced as a whole by [`pin`]). A lock, not a
/// thread: the daemon has one thread, tests run several.
static PINS: std::sync::Mutex<Vec<Pin>> = std::sync::Mutex::new(Vec::new());

/// Install the programs of a new configuration (after it was accepted): each replaces the
/// entry of the same name. Names no longer configured stay (nothing runs them), so pins made
/// for one user of this process (a test) do not disturb another's.
pub fn pin(pins: Vec<Pin>) {
    if let Ok(mut table) = PINS.lock() {
        for p in pins {
            match table.iter_mut().find(|t| t.name == p.name) {
                Some(t) => *t = p,
                None => table.push(p),
            }
        }
    }
}

/// The pinned file for `prog` and its `argv[0]`, copied into `strings`: `ENOENT` for a name
/// that did not resolve at load or a bare name never pinned (nothing is looked up in PATH
/// here). An absolute or relative path never pinned (a test, a tool) runs as given.
fn pinned(
    prog: &str,
    strings: &mut Strings,
) -> Result<(*const libc::c_char, *const libc::c_char), Errno> {
    let pins = PINS.lock().map_err(|_| Errno::EDEADLK)?;
    match pins.iter().find(|p| p.name == prog) {
        Some(Pin {
            found,
            exec: Some(exec),
            ..
        }) => Ok((
            strings.add(exec.as_bytes())?,
            strings.add(found.as_bytes())?,
        )),
        Some(_) => Err(Errno::ENOENT),
        None if prog.contains('/') => {
            let p = strings.add(prog.as_bytes())?;
            Ok((p, p))
        }
        None => Err(Errno::ENOENT),
    }
}

/// Read ends of the exec-error pipes of children not yet reaped, by pid.
static EXEC_ERRORS: std::sync::Mutex<Vec<(i32, OwnedFd)>> = std::sync::Mutex::new(Vec::new());
/// Children whose exec errors are remembered at once; beyond, a failure is just exit 127.
const MAX_PENDING: usize = 4096;

/// The errno a child reported before exiting, if its exec failed; forgets the child.
fn exec_error(pid: i32) -> Option<Errno> {
    let mut pending = EXEC_ERRORS.lock().ok()?;
    let k = pending.iter().position(|(p, _)| *p == pid)?;
    let (_, fd) = pending.swap_remove(k);
    let mut e = [0u8; 4];
    // SAFETY: a non-blocking read into a 4-byte buffer from our own pipe.
    let got = unsafe { libc::read(fd.as_raw_fd(), e.as_mut_ptr().cast(), 4) };
    (got == 4).then(|| Errno::from_raw(i32::from_ne_bytes(e)))
}

/// Fork and exec `argv` with the daemon's environment ([`SCRUBBED`] left out) plus
/// `env_extra` ("KEY=value", overriding inherited keys). `argv[0]` names a program pinned by
/// [`pin`]. Returns once the child is forked; an exec failure is reported when the child is
/// reaped ([`ExitStatus::ExecFailed`]).
pub fn spawn(argv: &[&str], env_extra: &[&str], opts: &SpawnOptions) -> Result<Child, Errno> {
    let prog = *argv.first().ok_or(Errno::EINVAL)?;
    let mut strings = Strings {
        space: [0; STR_SPACE],
        used: 0,
    };
    let (path, arg0) = pinned(prog, &mut strings)?;
    let mut argp: [*const libc::c_char; 64] = [core::ptr::null(); 64];
    if argv.len() >= argp.len() {
        return Err(Errno::E2BIG);
    }
    argp[0] = arg0;
    for (slot, a) in argp.iter_mut().zip(argv).skip(1) {
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
            if !overridden && !scrubbed(entry) {
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
        Some(super::fd::pipe_cloexec()?)
    } else {
        None
    };
    let (err_r, err_w) = super::fd::pipe_cloexec()?;
    // The reaper reads it without waiting; the child's 4-byte write fits an empty pipe.
    super::fd::set_nonblocking(&err_r)?;
    let out_w = out
        .as_ref()
        .map_or(devnull.as_raw_fd(), |(_, w)| w.as_raw_fd());
    let (null_fd, errw_fd) = (devnull.as_raw_fd(), err_w.as_raw_fd());
    // SAFETY: getpid has no failure mode.
    let parent = unsafe { libc::getpid() };

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
            // After the uid change, which clears it. A parent already gone (its signal
            // missed) means nobody waits for this script: do not start it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
            if libc::getppid() != parent {
                libc::_exit(127);
            }
            libc::execve(path, argp.as_ptr(), envp.as_ptr());
            fail(errw_fd);
        }
    }
    drop(err_w);
    if let Ok(mut pending) = EXEC_ERRORS.lock() {
        if pending.len() < MAX_PENDING {
            pending.push((pid, err_r));
        }
    }
    let out_r = out.map(|(r, w)| {
        drop(w);
        let _ = super::fd::set_nonblocking(&r);
        r
    });
    Ok(Child { pid, output: out_r })
}

/// SIGKILL the child's whole process group (it is a session leader), so grandchildren that
/// hold the output pipe die too.
pub fn kill(pid: i32) -> Result<(), Errno> {
    if pid <= 0 {
        return Err(Errno::EINVAL);
    }
    // The single process in case the group is already gone.
    super::signal::kill(-pid, Signal::SIGKILL)
        .or_else(|_| super::signal::kill(pid, Signal::SIGKILL))
}

fn decode(pid: i32, status: libc::c_int) -> ExitStatus {
    let err = exec_error(pid);
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        match (libc::WEXITSTATUS(status), err) {
            (127, Some(e)) => ExitStatus::ExecFailed(e as i32),
            (code, _) => ExitStatus::Code(code),
        }
    }
}

/// Reap this child if it has exited (for code sharing the process with other spawners).
pub fn reap_pid(pid: i32) -> Option<ExitStatus> {
    let mut st = 0;
    // SAFETY: non-blocking waitpid on our own child.
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
    if r == pid {
        Some(decode(pid, st))
    } else {
        None
    }
}

/// Reap any one exited child: `None` when none has exited (or there are no children).
pub fn reap() -> Option<(i32, ExitStatus)> {
    loop {
        let mut st = 0;
        // SAFETY: non-blocking waitpid on any child of ours.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            return None;
        }
        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
            return Some((pid, decode(pid, st)));
        }
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
