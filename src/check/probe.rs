//! The vocabulary between a check and the daemon that drives it: the [`Input`]s the daemon
//! feeds, the [`Action`]s a check asks for, and the list type they come in.

use core::net::{IpAddr, SocketAddr};

use super::schedule::Report;

/// Longest action list one `handle` call can return (e.g. Close + Report, Kill + Report, or
/// SetWeight + Report).
pub const MAX_ACTIONS: usize = 4;
/// What `handle` returns: fixed size, no allocation.
pub type Actions = heapless::Vec<Action, MAX_ACTIONS>;

/// How a child process ended, as the daemon learned it from `waitpid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited normally with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// The program could not be executed (this errno); the child exited 127 without running
    /// it. Reported when the child is reaped: spawning does not wait for the exec.
    ExecFailed(i32),
}

/// What happened, as reported by the daemon to one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// The check's timer is due (`now >= poll_at()`), or just "time passed": always safe to send.
    Tick,
    /// The non-blocking connect finished (POLLOUT and SO_ERROR == 0).
    Connected,
    /// The connect failed (SO_ERROR or `connect` errno).
    ConnectFailed(i32),
    /// `n` bytes of `tx_pending()` were written.
    Sent(usize),
    /// `write`/`sendto` failed with this errno.
    SendFailed(i32),
    /// Bytes read from the connection (never empty: EOF is [`Input::Closed`]).
    Received(&'a [u8]),
    /// `read` failed with this errno.
    ReadFailed(i32),
    /// The peer closed the connection (read returned 0 / POLLHUP).
    Closed,
    /// An ICMP echo reply arrived (already parsed by `check::icmp::parse_echo_reply`).
    EchoReply { from: IpAddr, ident: u16, seq: u16 },
    /// `fork`/`exec` setup failed with this errno.
    SpawnFailed(i32),
    /// Bytes the script wrote on stdout/stderr.
    Output(&'a [u8]),
    /// The script's child was reaped.
    Exited(ExitStatus),
}

/// What the daemon must do for the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a non-blocking TCP socket and connect it (`sys::tcp::connect`), then poll it
    /// as [`ConnCheck::interest`] says.
    Connect(SocketAddr),
    /// Close this check's connection, if one is open.
    Close,
    /// Send one ICMP echo request (`sys::icmp::IcmpSocket::send_echo`).
    SendEcho { dst: IpAddr, ident: u16, seq: u16 },
    /// Fork/exec the check's script (`sys::process::spawn`), capture its output.
    Spawn,
    /// SIGKILL the running script (its whole process group); it is still reaped later.
    Kill,
    /// The check's health changed.
    Report(Report),
    /// A `dynamic` script's exit code set a new weight (keepalived `misc_dynamic`).
    SetWeight(u32),
}

/// Push onto an action list; the lists are sized for the worst case, so a full list is a bug
/// in this module, and dropping the extra action is better than panicking in the daemon.
pub(crate) fn push(actions: &mut Actions, a: Action) {
    let _ = actions.push(a);
}
