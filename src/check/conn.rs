//! TCP connect checks and HTTP GET checks: one state machine, because both are "connect,
//! maybe talk, close"; HTTP adds sending the request and parsing the answer.

use super::http::{build_request, Progress, ResponseParser, StatusSet, MAX_REQUEST};
use super::schedule::{Attempt, Health, Runner, Schedule};
use super::{push, Action, Actions, Input, Reason};
use crate::base::Instant;
use core::net::SocketAddr;

/// A TCP_CHECK: success when the three-way handshake completes within `schedule.timeout`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSpec {
    pub addr: SocketAddr,
    pub schedule: Schedule,
    pub weight: i32,
}

/// An HTTP_GET check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSpec {
    pub addr: SocketAddr,
    /// Request path, "/" when empty.
    pub path: heapless::String<256>,
    /// Host header; empty = the address as "ip:port" (bracketed for IPv6).
    pub host: heapless::String<128>,
    pub status: StatusSet,
    /// Substring the body must contain; empty = no body check.
    pub expect_body: heapless::String<128>,
    /// Cap on the bytes read for one response.
    pub max_response: usize,
    pub schedule: Schedule,
    pub weight: i32,
}

impl HttpSpec {
    pub fn new(addr: SocketAddr, path: &str) -> Self {
        let mut p = heapless::String::new();
        let _ = p.push_str(path);
        HttpSpec {
            addr,
            path: p,
            host: heapless::String::new(),
            status: StatusSet::default(),
            expect_body: heapless::String::new(),
            max_response: 64 * 1024,
            schedule: Schedule::default(),
            weight: 0,
        }
    }
}

/// Which readiness the daemon should poll the check's socket for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    None,
    /// POLLOUT: connect in progress (then report `Connected`/`ConnectFailed` from SO_ERROR),
    /// or request bytes left to write (`tx_pending`).
    Write,
    /// POLLIN: read and report `Received`/`Closed`/`ReadFailed`.
    Read,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    Idle,
    Connecting,
    Sending { off: usize },
    Receiving,
}

#[derive(Clone, Debug)]
struct HttpProbe {
    request: heapless::Vec<u8, MAX_REQUEST>,
    parser: ResponseParser,
}

/// The check. Construct with [`ConnCheck::tcp`] or [`ConnCheck::http`].
#[derive(Clone, Debug)]
pub struct ConnCheck {
    addr: SocketAddr,
    runner: Runner,
    conn: Conn,
    /// Boxed at construction (config load): a plain TCP check stays ~100 bytes instead of
    /// carrying the ~2 KiB of request and parser buffers.
    http: Option<Box<HttpProbe>>,
}

/// Why an HTTP spec cannot be turned into a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// Path or host contain CR/LF/space, or the request does not fit.
    BadRequest,
    /// The expected body text is longer than `http::MAX_NEEDLE`.
    BodyTooLong,
}

impl ConnCheck {
    /// `seed` spreads the first attempt over one interval (see `schedule::warmup_offset`).
    pub fn tcp(spec: &TcpSpec, seed: u64, now: Instant) -> Self {
        ConnCheck {
            addr: spec.addr,
            runner: Runner::new(spec.schedule, spec.weight, seed, now),
            conn: Conn::Idle,
            http: None,
        }
    }

    pub fn http(spec: &HttpSpec, seed: u64, now: Instant) -> Result<Self, SpecError> {
        let mut host: heapless::String<160> = heapless::String::new();
        if spec.host.is_empty() {
            use core::fmt::Write;
            let _ = write!(host, "{}", spec.addr);
        } else {
            let _ = host.push_str(&spec.host);
        }
        let request = build_request(&spec.path, &host).ok_or(SpecError::BadRequest)?;
        if spec.expect_body.len() > super::http::MAX_NEEDLE {
            return Err(SpecError::BodyTooLong);
        }
        let parser = ResponseParser::new(
            spec.status.clone(),
            spec.expect_body.as_bytes(),
            spec.max_response,
        );
        Ok(ConnCheck {
            addr: spec.addr,
            runner: Runner::new(spec.schedule, spec.weight, seed, now),
            conn: Conn::Idle,
            http: Some(Box::new(HttpProbe { request, parser })),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn health(&self) -> Health {
        self.runner.health()
    }

    pub fn weight(&self) -> i32 {
        self.runner.weight()
    }

    /// The last attempt's outcome and duration (for logs and latency figures).
    pub fn last_attempt(&self) -> Option<Attempt> {
        self.runner.last()
    }

    /// When the daemon must send the next `Tick`.
    pub fn poll_at(&self) -> Instant {
        self.runner.poll_at()
    }

    pub fn interest(&self) -> Interest {
        match self.conn {
            Conn::Idle => Interest::None,
            Conn::Connecting | Conn::Sending { .. } => Interest::Write,
            Conn::Receiving => Interest::Read,
        }
    }

    /// Request bytes still to be written (empty unless an HTTP request is being sent).
    pub fn tx_pending(&self) -> &[u8] {
        match (self.conn, &self.http) {
            (Conn::Sending { off }, Some(h)) => h.request.get(off..).unwrap_or(&[]),
            _ => &[],
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Actions {
        let mut out = Actions::new();
        match (self.conn, input) {
            (_, Input::Tick) => {
                if self.runner.expired(now) {
                    self.end(now, Reason::Timeout, &mut out);
                } else if self.conn == Conn::Idle && self.runner.due(now) {
                    self.runner.begin(now);
                    self.conn = Conn::Connecting;
                    if let Some(h) = self.http.as_mut() {
                        h.parser.reset();
                    }
                    push(&mut out, Action::Connect(self.addr));
                }
            }
            (Conn::Connecting, Input::Connected) => {
                if self.http.is_some() {
                    self.conn = Conn::Sending { off: 0 };
                } else {
                    self.end(now, Reason::Ok, &mut out);
                }
            }
            (Conn::Connecting, Input::ConnectFailed(e)) => {
                self.end(now, Reason::ConnectFailed(e), &mut out)
            }
            (Conn::Sending { off }, Input::Sent(n)) => {
                let total = self.http.as_ref().map_or(0, |h| h.request.len());
                let off = off.saturating_add(n);
                self.conn = if off >= total {
                    Conn::Receiving
                } else {
                    Conn::Sending { off }
                };
            }
            (Conn::Sending { .. } | Conn::Receiving, Input::SendFailed(e)) => {
                self.end(now, Reason::SendFailed(e), &mut out)
            }
            (Conn::Receiving, Input::Received(bytes)) => {
                let progress = match self.http.as_mut() {
                    Some(h) => h.parser.feed(bytes),
                    None => Progress::NeedMore,
                };
                if let Progress::Done(r) = progress {
                    let reason = r.map_or_else(Reason::Http, |()| Reason::Ok);
                    self.end(now, reason, &mut out);
                }
            }
            (Conn::Receiving, Input::Closed) => {
                let r = self.http.as_mut().map_or(Ok(()), |h| h.parser.finish());
                let reason = r.map_or_else(Reason::Http, |()| Reason::Ok);
                self.end(now, reason, &mut out);
            }
            (Conn::Connecting | Conn::Sending { .. }, Input::Closed) => {
                self.end(now, Reason::ClosedEarly, &mut out)
            }
            (Conn::Sending { .. } | Conn::Receiving, Input::ReadFailed(e)) => {
                self.end(now, Reason::ReadFailed(e), &mut out)
            }
            // Anything else is stale (a late event for a connection already closed): ignore.
            _ => {}
        }
        out
    }

    fn end(&mut self, now: Instant, reason: Reason, out: &mut Actions) {
        if self.conn != Conn::Idle {
            push(out, Action::Close);
        }
        self.conn = Conn::Idle;
        if let Some(report) = self.runner.finish(now, reason) {
            push(out, Action::Report(report));
        }
    }
}
