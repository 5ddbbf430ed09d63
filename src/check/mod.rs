//! Health checks and trackers as pure state machines.
//!
//! Every check is a struct driven by `handle(now, Input) -> Actions`. It never reads a clock
//! and never touches a socket or a process: it asks the daemon to do that through
//! [`Action`]s and learns the outcome through [`Input`]s. The daemon:
//!
//! 1. calls `handle(now, Input::Tick)` whenever `now >= check.poll_at()`;
//! 2. performs each returned [`Action`] with `sys::{tcp, icmp, process}`;
//! 3. feeds what the fd / child reported back as the matching [`Input`].
//!
//! Scheduling (interval, timeout, retry, fall/rise, warm-up) is shared by all kinds in
//! [`schedule`]; the kinds only say when an attempt started and how it ended.
//!
//! # Driving a check from the poll loop
//!
//! - **TCP / HTTP** ([`ConnCheck`]): `Connect(addr)` → `sys::tcp::connect(addr)`; on `Err(e)`
//!   feed `ConnectFailed(e)`. Poll the fd for [`ConnCheck::interest`]: on `Write` with an
//!   empty `tx_pending()` the connect finished: feed `Connected` or `ConnectFailed` from
//!   `sys::tcp::connect_result`; then, while `tx_pending()` is non-empty, `sys::tcp::write` it
//!   and feed `Sent(n)` (EAGAIN: wait for POLLOUT). On `Read`: `sys::tcp::read` → `Received`,
//!   `Closed` (0) or `ReadFailed`. `Close` → drop the fd.
//! - **ICMP** ([`IcmpCheck`]): one `sys::icmp::IcmpSocket` per check, always polled for
//!   POLLIN. `SendEcho` → `send_echo` (error: `SendFailed`); each `recv_reply()` →
//!   `EchoReply`.
//! - **Script** ([`ScriptCheck`]): `Spawn` → `sys::process::spawn(argv, &[], capture)`
//!   (error: `SpawnFailed`); poll `Child::output`, feed `Output`; on SIGCHLD reap every
//!   exited child with `waitpid(WNOHANG)` (the runtime does, it owns all children) and feed
//!   `Exited` to the check owning the pid (drain its output first). `Kill` → `sys::process::kill(pid)`; the child is still reaped later.
//!   `poll_at()` is `None` while a killed child awaits its reap.
//! - **Notify** ([`NotifyQueue`]): on each transition `push_transition`, then whenever
//!   `start_next()` gives a job, spawn `cfg.command(job)` and call `finished()` when reaped.
//! - Every [`Action::Report`] carries the check's weight; [`track`] turns health + weight
//!   into a priority delta or FAULT.
//!
//! Feed `Tick` when `now >= poll_at()`; stale inputs (for a connection already closed,
//! a reply to an older sequence number) are ignored, so ordering races are harmless.

pub mod conn;
pub mod http;
pub mod icmp;
pub mod notify;
pub mod schedule;
pub mod script;
pub mod smtp;
pub mod track;

pub use conn::{ConnCheck, HttpSpec, Interest, TcpSpec};
pub use http::{HttpError, ResponseParser, StatusSet};
pub use icmp::{IcmpCheck, IcmpSpec};
pub use notify::{NotifyConfig, NotifyEvent, NotifyJob, NotifyQueue};
pub use schedule::{Attempt, Health, Report, Schedule};
pub use script::{ScriptCheck, ScriptSpec};

use core::net::{IpAddr, SocketAddr};

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

/// Why an attempt failed (or `Ok`). Small and `Copy` so reports never allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Ok,
    /// No result within `timeout`.
    Timeout,
    ConnectFailed(i32),
    SendFailed(i32),
    ReadFailed(i32),
    /// The peer closed before the check could decide.
    ClosedEarly,
    Http(HttpError),
    ExitCode(i32),
    Signal(i32),
    SpawnFailed(i32),
}

impl core::fmt::Display for Reason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Reason::Ok => f.write_str("ok"),
            Reason::Timeout => f.write_str("timeout"),
            Reason::ConnectFailed(e) => write!(f, "connect failed (errno {e})"),
            Reason::SendFailed(e) => write!(f, "send failed (errno {e})"),
            Reason::ReadFailed(e) => write!(f, "read failed (errno {e})"),
            Reason::ClosedEarly => f.write_str("connection closed early"),
            Reason::Http(h) => write!(f, "http: {h}"),
            Reason::ExitCode(c) => write!(f, "exit code {c}"),
            Reason::Signal(s) => write!(f, "killed by signal {s}"),
            Reason::SpawnFailed(e) => write!(f, "spawn failed (errno {e})"),
        }
    }
}

/// Push onto an action list; the lists are sized for the worst case, so a full list is a bug
/// in this module, and dropping the extra action is better than panicking in the daemon.
pub(crate) fn push(actions: &mut Actions, a: Action) {
    let _ = actions.push(a);
}
