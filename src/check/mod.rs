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
mod probe;
mod reason;
pub mod schedule;
pub mod script;
pub mod smtp;
pub mod track;

pub use conn::{ConnCheck, HttpSpec, Interest, TcpSpec};
pub use http::{HttpError, ResponseParser, StatusSet};
pub use icmp::{IcmpCheck, IcmpSpec};
pub use notify::{NotifyConfig, NotifyEvent, NotifyJob, NotifyQueue};
pub(crate) use probe::push;
pub use probe::{Action, Actions, ExitStatus, Input, MAX_ACTIONS};
pub use reason::Reason;
pub use schedule::{Attempt, Health, Report, Schedule};
pub use script::{ScriptCheck, ScriptSpec};
