//! The operator's side: the control socket's protocol, the status document and its three
//! renderings (JSON, 80-column text, Prometheus), and the CLI's client. The socket server is a
//! loop part (`daemon::control_server`).
//!
//! A request is one frame, answered by one frame, then the daemon closes the connection.
//! The daemon renders the status itself (JSON, text or metrics) and sends text: the status
//! model then needs no (de)serialisation code, which is most of what postcard would cost in
//! flash; only the small request/answer enums below are postcard-encoded.
//! Nothing here blocks the daemon: the server reads and writes only what the socket takes
//! now, with a budget per loop turn (see `daemon/control_server.rs`).

pub mod client;
pub mod frame;
pub mod json;
pub mod metrics;
pub mod status;
pub mod text;

use serde::{Deserialize, Serialize};

pub use status::StatusDoc;

/// Where the daemon listens unless `--socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/minivrrp.sock";

/// How the status document is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// 80-column text (`text.rs`).
    Text,
    /// One JSON object (`json.rs`).
    Json,
    /// Prometheus text exposition (`metrics.rs`).
    Metrics,
}

/// What the CLI asks the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The status document, only instance `name` if given.
    Status {
        format: Format,
        name: Option<String>,
    },
    /// `maintenance on|off`: every instance hands over (priority-0 advert) and stays BACKUP.
    Maintenance(bool),
    /// `priority NAME PRIO|reset`: a runtime override of the base priority (`None` = reset).
    Priority { name: String, priority: Option<u8> },
    /// Re-read the config file now and say whether it was applied.
    Reload,
    /// Resend gratuitous ARPs / unsolicited NAs of instance NAME.
    Garp { name: String },
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The rendered status document.
    Document(String),
    /// The command was carried out; one line saying what changed.
    Done(String),
    /// The command was refused (unknown instance, out of range, not root...); one line.
    Refused(String),
    /// `reload`: the new configuration was refused; every error, the running config stays.
    ConfigErrors(Vec<String>),
}

/// What the daemon lets the operator see and do; implemented by the daemon's runtime
/// (`daemon/control.rs`) and by a fake in tests. `C` is the loop context the daemon needs to
/// act (arm timers, send adverts).
pub trait Controlled<C> {
    fn status(&self, now: crate::base::Instant) -> StatusDoc;
    fn maintenance(&mut self, ctx: &mut C, on: bool, now: crate::base::Instant) -> Response;
    fn set_priority(
        &mut self,
        ctx: &mut C,
        name: &str,
        priority: Option<u8>,
        now: crate::base::Instant,
    ) -> Response;
    fn reload(&mut self, ctx: &mut C, now: crate::base::Instant) -> Response;
    fn garp(&mut self, ctx: &mut C, name: &str, now: crate::base::Instant) -> Response;
}

/// Carry out one request.
pub fn dispatch<C, T: Controlled<C> + ?Sized>(
    target: &mut T,
    ctx: &mut C,
    req: Request,
    now: crate::base::Instant,
) -> Response {
    match req {
        Request::Status { format, name } => {
            let mut doc = target.status(now);
            if let Some(n) = &name {
                doc.instances.retain(|i| &i.name == n);
                if doc.instances.is_empty() {
                    return Response::Refused(format!("no instance '{n}'"));
                }
            }
            Response::Document(match format {
                Format::Text => text::render(&doc),
                Format::Json => json::render(&doc) + "\n",
                Format::Metrics => metrics::render(&doc),
            })
        }
        Request::Maintenance(on) => target.maintenance(ctx, on, now),
        Request::Priority { name, priority } => target.set_priority(ctx, &name, priority, now),
        Request::Reload => target.reload(ctx, now),
        Request::Garp { name } => target.garp(ctx, &name, now),
    }
}
