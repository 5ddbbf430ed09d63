//! Signals as events: the daemon blocks the signals it handles and reads them from a
//! `signalfd`, so a signal is just another readable fd in the poll loop. No async handler
//! runs, so nothing has to be async-signal-safe and no flag polling is needed.
//!
//! Children inherit the blocked mask across fork/exec: whoever spawns scripts must unblock
//! `handled_set()` in the child (e.g. `pthread_sigmask` in `pre_exec`), or a script
//! would not die on SIGTERM.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal as NixSignal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// What a signal means to the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM or SIGINT: stop gracefully (give up mastership with priority 0, clean up VIPs).
    Terminate,
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGUSR1: dump state.
    Dump,
    /// SIGCHLD: one or more children exited; reap them.
    Child,
}

impl Signal {
    /// Map a kernel signal number; `None` for signals we do not handle.
    pub fn from_raw(signo: i32) -> Option<Signal> {
        match signo {
            libc::SIGTERM | libc::SIGINT => Some(Signal::Terminate),
            libc::SIGHUP => Some(Signal::Reload),
            libc::SIGUSR1 => Some(Signal::Dump),
            libc::SIGCHLD => Some(Signal::Child),
            _ => None,
        }
    }

    /// Bit used by the loop's pending set (signals coalesce, like in the kernel).
    pub const fn bit(self) -> u8 {
        match self {
            Signal::Terminate => 1,
            Signal::Reload => 2,
            Signal::Dump => 4,
            Signal::Child => 8,
        }
    }

    pub const ALL: [Signal; 4] = [
        Signal::Terminate,
        Signal::Reload,
        Signal::Dump,
        Signal::Child,
    ];
}

/// The set of signals the daemon turns into events.
pub fn handled_set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        NixSignal::SIGTERM,
        NixSignal::SIGINT,
        NixSignal::SIGHUP,
        NixSignal::SIGUSR1,
        NixSignal::SIGCHLD,
    ] {
        s.add(sig);
    }
    s
}

/// Block the handled signals in the calling thread. The daemon is single-threaded, so this
/// is the process mask; must run before any other thread exists (none ever does).
pub fn block_handled() -> Result<(), Errno> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&handled_set()), None)
}

/// Unblock the handled signals (for a spawned child, or a test's cleanup).
pub fn unblock_handled() -> Result<(), Errno> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&handled_set()), None)
}

/// A non-blocking signalfd for the handled signals.
pub struct SignalSource {
    fd: SignalFd,
}

impl SignalSource {
    /// Blocks the handled signals in this thread, then opens the signalfd.
    pub fn new() -> Result<Self, Errno> {
        block_handled()?;
        let fd = SignalFd::with_flags(
            &handled_set(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )?;
        Ok(SignalSource { fd })
    }

    /// Next pending handled signal, `Ok(None)` when there is none. Signals we do not map
    /// (impossible with our mask, but the kernel is input) are skipped.
    pub fn read(&mut self) -> Result<Option<Signal>, Errno> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => {
                    if let Some(s) = Signal::from_raw(info.ssi_signo as i32) {
                        return Ok(Some(s));
                    }
                }
                Ok(None) => return Ok(None),
                Err(Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for SignalSource {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for SignalSource {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

/// Send `sig` to the calling thread (tgkill). Thread-directed, so it lands on this thread's
/// blocked mask and its signalfd even inside a multi-threaded test harness.
pub fn raise_to_self(sig: NixSignal) -> Result<(), Errno> {
    nix::sys::signal::raise(sig)
}

/// Send `sig` to process `pid`.
pub fn kill(pid: i32, sig: NixSignal) -> Result<(), Errno> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_map_to_daemon_meanings() {
        assert_eq!(Signal::from_raw(libc::SIGTERM), Some(Signal::Terminate));
        assert_eq!(Signal::from_raw(libc::SIGINT), Some(Signal::Terminate));
        assert_eq!(Signal::from_raw(libc::SIGHUP), Some(Signal::Reload));
        assert_eq!(Signal::from_raw(libc::SIGUSR1), Some(Signal::Dump));
        assert_eq!(Signal::from_raw(libc::SIGCHLD), Some(Signal::Child));
        assert_eq!(Signal::from_raw(libc::SIGUSR2), None);
        let bits: u8 = Signal::ALL.iter().fold(0, |a, s| {
            assert_eq!(a & s.bit(), 0, "bits must be distinct");
            a | s.bit()
        });
        assert_eq!(bits, 0x0f);
    }
}
