//! The control socket inside the poll loop. Every cost a client can cause is bounded:
//!
//! - at most [`MAX_CLIENTS`] connections. While all are taken and more wait, a client that has
//!   not sent its whole request within [`IDLE_GRACE`] gives its slot to the next one (closed,
//!   counted as a timeout): held idle connections cannot keep `status` out. While every
//!   client is busy (its request queued or its answer being written), the listener is not
//!   polled and further clients wait in the kernel's listen backlog, first come first served
//!   (counted as `busy` each time it happens);
//! - at most [`ACCEPTS_PER_TURN`] connections per loop turn, so the clients already in get
//!   their reads in the same turn however many wait;
//! - at most [`ACCEPTS_PER_WINDOW`] connections per [`ACCEPT_WINDOW`]: past that the listener
//!   rests until the window ends (counted as `throttled`), so a client reconnecting in a
//!   tight loop costs a bounded share of the CPU however fast it is (and, blocked in
//!   `connect` on the full backlog, stops burning its own);
//! - a client that is not root is answered "permission denied" and closed (counted);
//! - a request is at most `frame::MAX_REQUEST` bytes: a longer length prefix, a CRC error or
//!   an undecodable payload closes the connection (counted) after reading at most
//!   [`READ_CHUNK`] bytes per loop callback (the loop calls at most `READ_BUDGET` times);
//! - a client must complete its request within [`REQUEST_DEADLINE`] and take its answer
//!   within [`CLIENT_DEADLINE`]; the loop timer `Part::Control.timer(0)` closes the late ones
//!   (counted);
//! - a request that finds the daemon's input queue full is answered [`BUSY`] at once, not
//!   dropped;
//! - one request per connection: the answer is written as the socket takes it, then closed.
//!
//! Requests are not carried out in the read callback: they are queued as loop input
//! ([`Pending`]), so due timers (adverts) run before any request does.

use std::io;
use std::path::Path;

use super::ids::Part;
use super::{Ctx, Interest, Read, Ready, TimerId, Token};
use crate::base::{Duration, Instant};
use crate::control::frame::{self, FrameError, MAX_REQUEST, MAX_RESPONSE, OVERHEAD};
use crate::control::status::ControlStats;
use crate::control::{Request, Response};
use crate::sys::unix::{ControlConn, ControlListener, Io};

pub const MAX_CLIENTS: usize = 32;
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(2);
/// A client sends its whole request at once (`minivrrp status` does): one still reading
/// after this is idle or hostile.
pub const REQUEST_DEADLINE: Duration = Duration::from_millis(500);
/// While others wait, a client still reading its request after this long gives way.
pub const IDLE_GRACE: Duration = Duration::from_millis(5);
/// Connections accepted per loop turn.
pub const ACCEPTS_PER_TURN: u32 = 16;
/// The answer to a request that found the daemon's input queue full.
pub const BUSY: &str = "busy, try again";
/// Bytes read from one client per loop callback.
pub const READ_CHUNK: usize = 512;
/// Bytes written to one client per loop callback.
pub const WRITE_CHUNK: usize = 16 * 1024;
pub const TIMER: TimerId = Part::Control.timer(0);
pub const ACCEPT_WINDOW: Duration = Duration::from_millis(100);
/// 2000 connections a second: twice the 1000 status requests a second a monitoring setup
/// could reasonably send.
pub const ACCEPTS_PER_WINDOW: u32 = 200;
const LISTENER: u32 = 0;

/// A complete request waiting for the daemon (queued as loop input).
#[derive(Clone, Debug)]
pub struct Pending {
    slot: u8,
    generation: u32,
    pub request: Request,
}

enum Phase {
    Reading,
    /// Request queued, answer not yet produced.
    Waiting,
    Writing {
        sent: usize,
    },
}

struct Client {
    conn: ControlConn,
    generation: u32,
    buf: Vec<u8>,
    out: Vec<u8>,
    phase: Phase,
    /// When it was accepted (its request is due [`REQUEST_DEADLINE`] later).
    since: Instant,
    deadline: Instant,
}

impl Client {
    /// When it is closed if nothing else happens.
    fn due(&self) -> Instant {
        match self.phase {
            Phase::Reading => self.deadline.min(self.since + REQUEST_DEADLINE),
            _ => self.deadline,
        }
    }
}

pub struct ControlServer {
    listener: ControlListener,
    clients: [Option<Client>; MAX_CLIENTS],
    generation: u32,
    stats: ControlStats,
    allowed_uid: u32,
    /// Every slot is taken: the listener's interest is off until one frees.
    paused: bool,
    window_start: Instant,
    window_accepts: u32,
    /// Accept budget of this window used up: the listener rests until then.
    throttled_until: Option<Instant>,
    /// The loop turn (its `now`) of the last accept, and how many were accepted in it.
    turn: Instant,
    turn_accepts: u32,
}

fn token(slot: usize) -> Token {
    Part::Control.token(slot as u32 + 1)
}

impl ControlServer {
    /// Create the socket (mode 0600). Only root may use it, or the daemon's own user when it
    /// does not run as root (tests).
    pub fn bind(path: &Path) -> io::Result<ControlServer> {
        Ok(ControlServer {
            listener: ControlListener::bind(path)?,
            clients: Default::default(),
            generation: 0,
            stats: ControlStats::default(),
            allowed_uid: crate::sys::unix::effective_uid(),
            paused: false,
            window_start: Instant::ZERO,
            window_accepts: 0,
            throttled_until: None,
            turn: Instant::ZERO,
            turn_accepts: 0,
        })
    }

    pub fn path(&self) -> &Path {
        self.listener.path()
    }

    pub fn start(&mut self, ctx: &mut Ctx) -> Result<(), crate::daemon::CapacityError> {
        ctx.register(
            Part::Control.token(LISTENER),
            &self.listener,
            Interest::READABLE,
        )
    }

    /// Close every client and stop listening (the socket file goes when `self` is dropped).
    pub fn stop(&mut self, ctx: &mut Ctx) {
        for s in 0..MAX_CLIENTS {
            self.close(ctx, s);
        }
        ctx.deregister(Part::Control.token(LISTENER));
        ctx.cancel(TIMER);
    }

    pub fn stats(&self) -> ControlStats {
        let mut s = self.stats;
        s.clients = self.clients.iter().filter(|c| c.is_some()).count() as u32;
        s
    }

    fn close(&mut self, ctx: &mut Ctx, slot: usize) {
        if self.clients[slot].take().is_some() {
            ctx.deregister(token(slot));
        }
        if self.paused {
            self.paused = false;
            self.update_listener(ctx);
        }
    }

    /// Poll the listener unless every slot is taken or the accept budget is used up.
    fn update_listener(&mut self, ctx: &mut Ctx) {
        let on = !self.paused && self.throttled_until.is_none();
        let interest = if on {
            Interest::READABLE
        } else {
            Interest::default()
        };
        ctx.set_interest(Part::Control.token(LISTENER), interest);
    }

    /// The client that gives way to one waiting in the backlog: the longest-connected of
    /// those still reading their request after [`IDLE_GRACE`].
    fn idle_client(&self, now: Instant) -> Option<usize> {
        self.clients
            .iter()
            .enumerate()
            .filter_map(|(s, c)| c.as_ref().map(|c| (s, c)))
            .filter(|(_, c)| matches!(c.phase, Phase::Reading) && c.since + IDLE_GRACE <= now)
            .min_by_key(|(_, c)| c.since)
            .map(|(s, _)| s)
    }

    fn rearm(&mut self, ctx: &mut Ctx) {
        let deadlines = self.clients.iter().flatten().map(|c| c.due());
        // Paused with clients still reading: the first of them may give way at its grace.
        let grace = self
            .clients
            .iter()
            .flatten()
            .filter(|c| self.paused && matches!(c.phase, Phase::Reading))
            .map(|c| c.since + IDLE_GRACE);
        match deadlines.chain(grace).chain(self.throttled_until).min() {
            Some(at) => {
                let _ = ctx.arm(TIMER, at);
            }
            None => {
                ctx.cancel(TIMER);
            }
        }
    }

    /// `Part::Control.token(index)` is ready. Returns a complete request to queue, if any.
    pub fn on_readable(
        &mut self,
        ctx: &mut Ctx,
        index: u32,
        ready: Ready,
        now: Instant,
    ) -> (Read, Option<Pending>) {
        if index == LISTENER {
            return (self.accept(ctx, now), None);
        }
        let slot = index as usize - 1;
        if slot >= MAX_CLIENTS {
            return (Read::Drained, None);
        }
        let Some(c) = self.clients[slot].as_mut() else {
            return (Read::Drained, None);
        };
        match c.phase {
            Phase::Reading => self.read(ctx, slot),
            Phase::Waiting => {
                if ready.hangup || ready.error {
                    self.close(ctx, slot);
                }
                (Read::Drained, None)
            }
            Phase::Writing { .. } => (self.write(ctx, slot), None),
        }
    }

    fn accept(&mut self, ctx: &mut Ctx, now: Instant) -> Read {
        if now != self.turn {
            self.turn = now;
            self.turn_accepts = 0;
        }
        if self.turn_accepts >= ACCEPTS_PER_TURN {
            // The rest next turn: the clients already in read theirs first.
            return Read::Drained;
        }
        let free = self.clients.iter().position(|c| c.is_none());
        let idle = self.idle_client(now);
        if free.is_none() && idle.is_none() {
            // Leave the rest in the backlog; poll the listener again when a slot frees or an
            // idle client's grace ends.
            self.stats.refused_busy += 1;
            self.paused = true;
            self.update_listener(ctx);
            self.rearm(ctx);
            return Read::Drained;
        }
        if now >= self.window_start + ACCEPT_WINDOW {
            self.window_start = now;
            self.window_accepts = 0;
        }
        if self.window_accepts >= ACCEPTS_PER_WINDOW {
            self.stats.throttled += 1;
            self.throttled_until = Some(self.window_start + ACCEPT_WINDOW);
            self.update_listener(ctx);
            self.rearm(ctx);
            return Read::Drained;
        }
        let conn = match self.listener.accept() {
            Ok(Some(c)) => c,
            Ok(None) | Err(_) => return Read::Drained,
        };
        self.turn_accepts += 1;
        self.window_accepts += 1;
        self.stats.accepted += 1;
        if conn.peer_uid().ok() != Some(0) && conn.peer_uid().ok() != Some(self.allowed_uid) {
            self.stats.refused_not_root += 1;
            let mut out = Vec::new();
            let _ = frame::encode(
                &Response::Refused("permission denied: the control socket is for root".into()),
                MAX_RESPONSE,
                &mut out,
            );
            let mut conn = conn;
            // Best effort: a short frame into a fresh socket buffer; the connection closes
            // either way.
            let _ = conn.write(&out);
            return Read::Again;
        }
        // Someone is waiting: an idle client gives way only now.
        let slot = match (free, idle) {
            (Some(s), _) => s,
            (None, Some(s)) => {
                self.stats.dropped_timeout += 1;
                self.close(ctx, s);
                s
            }
            (None, None) => return Read::Drained,
        };
        if ctx
            .register(token(slot), &conn, Interest::READABLE)
            .is_err()
        {
            self.stats.refused_busy += 1;
            return Read::Again;
        }
        self.generation = self.generation.wrapping_add(1);
        self.clients[slot] = Some(Client {
            conn,
            generation: self.generation,
            buf: Vec::new(),
            out: Vec::new(),
            phase: Phase::Reading,
            since: now,
            deadline: now + CLIENT_DEADLINE,
        });
        self.rearm(ctx);
        Read::Again
    }

    fn read(&mut self, ctx: &mut Ctx, slot: usize) -> (Read, Option<Pending>) {
        let Some(c) = self.clients[slot].as_mut() else {
            return (Read::Drained, None);
        };
        // Never hold more than one maximal request plus one chunk.
        let mut chunk = [0u8; READ_CHUNK];
        let room = (MAX_REQUEST + OVERHEAD)
            .saturating_sub(c.buf.len())
            .clamp(1, READ_CHUNK);
        let n = match c.conn.read(&mut chunk[..room]) {
            Io::Done(n) => n,
            Io::WouldBlock => return (Read::Drained, None),
            Io::Closed => {
                self.close(ctx, slot);
                return (Read::Drained, None);
            }
        };
        c.buf.extend_from_slice(&chunk[..n]);
        match frame::decode::<Request>(&c.buf, MAX_REQUEST) {
            Ok(None) => {
                if c.buf.len() >= MAX_REQUEST + OVERHEAD {
                    // Cannot happen with a valid prefix (the frame would be complete).
                    self.stats.dropped_oversize += 1;
                    self.close(ctx, slot);
                    return (Read::Drained, None);
                }
                (Read::Again, None)
            }
            Ok(Some((request, _))) => {
                c.phase = Phase::Waiting;
                c.buf = Vec::new();
                self.stats.requests += 1;
                let pending = Pending {
                    slot: slot as u8,
                    generation: c.generation,
                    request,
                };
                (Read::Drained, Some(pending))
            }
            Err(e) => {
                match e {
                    FrameError::Oversize { .. } => self.stats.dropped_oversize += 1,
                    _ => self.stats.dropped_garbage += 1,
                }
                self.close(ctx, slot);
                (Read::Drained, None)
            }
        }
    }

    /// `p` found the daemon's input queue full: answer [`BUSY`] now rather than close on the
    /// client (it may retry).
    pub fn refuse_busy(&mut self, ctx: &mut Ctx, p: &Pending) {
        self.stats.refused_busy += 1;
        self.respond(ctx, p, &Response::Refused(BUSY.into()));
    }

    /// The daemon's answer to `p`. Dropped when its client has gone meanwhile.
    pub fn respond(&mut self, ctx: &mut Ctx, p: &Pending, response: &Response) {
        let slot = usize::from(p.slot);
        let Some(c) = self.clients.get_mut(slot).and_then(|c| c.as_mut()) else {
            return;
        };
        if c.generation != p.generation || !matches!(c.phase, Phase::Waiting) {
            return;
        }
        c.out.clear();
        if frame::encode(response, MAX_RESPONSE, &mut c.out).is_err() {
            c.out.clear();
            let _ = frame::encode(
                &Response::Refused("answer too large".into()),
                MAX_RESPONSE,
                &mut c.out,
            );
        }
        c.phase = Phase::Writing { sent: 0 };
        ctx.set_interest(token(slot), Interest::WRITABLE);
        // Most answers fit the socket buffer: write now instead of waiting for a turn.
        let _ = self.write(ctx, slot);
    }

    fn write(&mut self, ctx: &mut Ctx, slot: usize) -> Read {
        let Some(c) = self.clients[slot].as_mut() else {
            return Read::Drained;
        };
        let Phase::Writing { sent } = c.phase else {
            return Read::Drained;
        };
        let end = (sent + WRITE_CHUNK).min(c.out.len());
        match c.conn.write(&c.out[sent..end]) {
            Io::Done(n) => {
                let sent = sent + n;
                if sent >= c.out.len() {
                    self.close(ctx, slot);
                    self.rearm(ctx);
                    return Read::Drained;
                }
                c.phase = Phase::Writing { sent };
                Read::Again
            }
            Io::WouldBlock => Read::Drained,
            Io::Closed => {
                self.close(ctx, slot);
                Read::Drained
            }
        }
    }

    /// The deadline timer: close every client past its deadline.
    pub fn on_timer(&mut self, ctx: &mut Ctx, now: Instant) {
        if self.throttled_until.is_some_and(|t| t <= now) {
            self.throttled_until = None;
            self.update_listener(ctx);
        }
        for s in 0..MAX_CLIENTS {
            if self.clients[s].as_ref().is_some_and(|c| c.due() <= now) {
                self.stats.dropped_timeout += 1;
                self.close(ctx, s);
            }
        }
        // Paused while full: a client whose grace ended can give way to a waiting one.
        if self.paused && self.idle_client(now).is_some() {
            self.paused = false;
            self.update_listener(ctx);
        }
        self.rearm(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::client;
    use crate::daemon::Signal;
    use crate::daemon::{Handler, Inbox, Loop};
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// A daemon stand-in: the server plus a fake `Controlled`.
    struct Fake {
        server: ControlServer,
        maintenance: bool,
        handled: u32,
        /// Fill the loop's input queue before queueing a request (a flood's effect).
        fill_inbox: bool,
    }

    impl crate::control::Controlled<Ctx> for Fake {
        fn status(&self, _now: Instant) -> crate::control::StatusDoc {
            crate::control::StatusDoc {
                maintenance: self.maintenance,
                control: self.server.stats(),
                ..Default::default()
            }
        }
        fn maintenance(&mut self, _: &mut Ctx, on: bool, _: Instant) -> Response {
            self.maintenance = on;
            Response::Done(format!("maintenance {on}"))
        }
        fn set_priority(&mut self, _: &mut Ctx, n: &str, _: Option<u8>, _: Instant) -> Response {
            Response::Refused(format!("no instance {n}"))
        }
        fn reload(&mut self, _: &mut Ctx, _: Instant) -> Response {
            Response::ConfigErrors(vec!["f:1: x.y: bad".into()])
        }
        fn garp(&mut self, _: &mut Ctx, _: &str, _: Instant) -> Response {
            Response::Done("garp".into())
        }
    }

    impl Handler for Fake {
        type Input = Pending;
        fn on_readable(
            &mut self,
            ctx: &mut Ctx,
            inbox: &mut Inbox<'_, Pending>,
            token: Token,
            ready: Ready,
            now: Instant,
        ) -> Read {
            let (r, p) = self
                .server
                .on_readable(ctx, token.0 & 0xfff_ffff, ready, now);
            if let Some(p) = p {
                if self.fill_inbox {
                    while inbox.push(p.clone()) {}
                }
                if !inbox.push(p.clone()) {
                    self.server.refuse_busy(ctx, &p);
                }
            }
            r
        }
        fn on_input(&mut self, ctx: &mut Ctx, _: Token, p: Pending, now: Instant) {
            self.handled += 1;
            let resp = crate::control::dispatch(self, ctx, p.request.clone(), now);
            self.server.respond(ctx, &p, &resp);
        }
        fn on_timer(&mut self, ctx: &mut Ctx, _: TimerId, now: Instant) {
            self.server.on_timer(ctx, now);
        }
        fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
    }

    fn setup(name: &str) -> (Loop<Pending>, Fake, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("mv-ctl-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut lp = Loop::new();
        let mut f = Fake {
            server: ControlServer::bind(&path).unwrap(),
            maintenance: false,
            handled: 0,
            fill_inbox: false,
        };
        f.server.start(lp.ctx()).unwrap();
        (lp, f, path)
    }

    fn turns(lp: &mut Loop<Pending>, f: &mut Fake, n: usize) {
        for _ in 0..n {
            lp.turn(f, Some(Duration::from_millis(5))).unwrap();
        }
    }

    /// Runs a blocking client request in a thread while the loop turns (test only: the
    /// daemon itself has one thread).
    fn ask(lp: &mut Loop<Pending>, f: &mut Fake, path: &Path, r: Request) -> Response {
        let p = path.to_path_buf();
        let h = std::thread::spawn(move || client::request(&p, &r));
        while !h.is_finished() {
            turns(lp, f, 1);
        }
        h.join().unwrap().unwrap()
    }

    #[test]
    fn socket_is_0600_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let (_lp, f, path) = setup("mode");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(f);
        assert!(!path.exists());
    }

    #[test]
    fn requests_are_answered_through_the_loop() {
        let (mut lp, mut f, path) = setup("answer");
        assert_eq!(
            ask(&mut lp, &mut f, &path, Request::Maintenance(true)),
            Response::Done("maintenance true".into())
        );
        let json = Request::Status {
            format: crate::control::Format::Json,
            name: None,
        };
        match ask(&mut lp, &mut f, &path, json) {
            Response::Document(d) => {
                let v: serde_json::Value = serde_json::from_str(&d).unwrap();
                assert_eq!(v["maintenance"], true);
                assert_eq!(v["control"]["requests"], 2);
            }
            r => panic!("{r:?}"),
        }
        // A name that matches no instance is refused.
        let named = Request::Status {
            format: crate::control::Format::Text,
            name: Some("nosuch".into()),
        };
        assert_eq!(
            ask(&mut lp, &mut f, &path, named),
            Response::Refused("no instance 'nosuch'".into())
        );
        assert_eq!(
            ask(&mut lp, &mut f, &path, Request::Reload),
            Response::ConfigErrors(vec!["f:1: x.y: bad".into()])
        );
        assert_eq!(f.server.stats().clients, 0);
    }

    #[test]
    fn garbage_oversize_and_silent_clients_are_dropped_and_counted() {
        let (mut lp, mut f, path) = setup("garbage");
        // Garbage: a small length prefix then bytes whose CRC cannot match.
        let mut g = UnixStream::connect(&path).unwrap();
        g.write_all(&[5, 0, 0, 0, 1, 2, 3, 4, 5, 9, 9, 9, 9])
            .unwrap();
        // Oversize: a length prefix beyond the limit.
        let mut o = UnixStream::connect(&path).unwrap();
        o.write_all(&(u32::MAX).to_le_bytes()).unwrap();
        // Silent: connects and never writes.
        let _s = UnixStream::connect(&path).unwrap();
        // Partial: half a valid frame, then nothing.
        let mut v = Vec::new();
        frame::encode(&Request::Reload, MAX_REQUEST, &mut v).unwrap();
        let mut p = UnixStream::connect(&path).unwrap();
        p.write_all(&v[..v.len() / 2]).unwrap();
        turns(&mut lp, &mut f, 10);
        let s = f.server.stats();
        assert_eq!(s.dropped_garbage, 1);
        assert_eq!(s.dropped_oversize, 1);
        assert_eq!(
            s.clients, 2,
            "silent and partial clients wait for their deadline"
        );
        std::thread::sleep(std::time::Duration::from_millis(2100));
        turns(&mut lp, &mut f, 3);
        let s = f.server.stats();
        assert_eq!(s.dropped_timeout, 2);
        assert_eq!(s.clients, 0);
        assert_eq!(f.handled, 0);
        // The server still answers.
        assert!(matches!(
            ask(&mut lp, &mut f, &path, Request::Reload),
            Response::ConfigErrors(_)
        ));
    }

    /// Clients beyond the limit wait in the backlog only while the ones in are busy: a
    /// client idle past its grace gives its slot to a waiting one, so 100 held idle
    /// connections do not keep a `status` out (they kept it out for 25 s: 100 / 8 slots ×
    /// 2 s deadline, past the client's 10 s timeout).
    #[test]
    fn idle_clients_give_way_to_waiting_ones() {
        let (mut lp, mut f, path) = setup("busy");
        let held: Vec<UnixStream> = (0..MAX_CLIENTS + 3)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        let start = std::time::Instant::now();
        while f.server.stats().accepted < (MAX_CLIENTS + 3) as u64 && start.elapsed().as_secs() < 5
        {
            turns(&mut lp, &mut f, 1);
        }
        let s = f.server.stats();
        assert_eq!(s.accepted as usize, MAX_CLIENTS + 3, "{s:?}");
        assert_eq!(s.clients as usize, MAX_CLIENTS, "{s:?}");
        assert_eq!(s.dropped_timeout, 3, "three idle clients gave way: {s:?}");
        drop(held);
        turns(&mut lp, &mut f, 5);
        assert_eq!(f.server.stats().clients, 0);

        // 100 idle connections held (each reconnected once closed), then a status request:
        // answered while they are held.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, st) = (path.clone(), stop.clone());
        let holder = std::thread::spawn(move || {
            let mut conns: Vec<UnixStream> = Vec::new();
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                // A closed one reads EOF: replace it.
                conns.retain(|c| {
                    let _ = c.set_nonblocking(true);
                    let mut b = [0u8; 1];
                    !matches!(std::io::Read::read(&mut &*c, &mut b), Ok(0))
                });
                while conns.len() < 100 {
                    match UnixStream::connect(&p) {
                        Ok(c) => conns.push(c),
                        Err(_) => break,
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        turns(&mut lp, &mut f, 50);
        let r = ask(&mut lp, &mut f, &path, Request::Reload);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        while !holder.is_finished() {
            turns(&mut lp, &mut f, 1);
        }
        holder.join().unwrap();
        assert!(matches!(r, Response::ConfigErrors(_)), "{r:?}");
        assert!(f.server.stats().dropped_timeout > 100);
    }

    /// A request that finds the loop's input queue full is answered "busy, try again"
    /// instead of the connection closing without an answer.
    #[test]
    fn a_full_input_queue_answers_busy() {
        let (mut lp, mut f, path) = setup("full");
        f.fill_inbox = true;
        assert_eq!(
            ask(&mut lp, &mut f, &path, Request::Reload),
            Response::Refused(BUSY.into())
        );
        f.fill_inbox = false;
        turns(&mut lp, &mut f, 5);
        assert!(matches!(
            ask(&mut lp, &mut f, &path, Request::Reload),
            Response::ConfigErrors(_)
        ));
    }

    #[test]
    fn accepts_beyond_the_window_budget_wait_for_the_next_window() {
        let (mut lp, mut f, path) = setup("throttle");
        let n = ACCEPTS_PER_WINDOW as usize + 20;
        let h = std::thread::spawn(move || {
            // Each connects and closes at once, as fast as possible.
            for _ in 0..n {
                drop(UnixStream::connect(&path).unwrap());
            }
        });
        let start = std::time::Instant::now();
        while f.server.stats().accepted < n as u64 && start.elapsed().as_secs() < 5 {
            turns(&mut lp, &mut f, 1);
        }
        h.join().unwrap();
        let s = f.server.stats();
        assert_eq!(s.accepted, n as u64);
        assert!(s.throttled >= 1, "{s:?}");
        // At most one window's budget per window: n accepts took more than one window.
        assert!(start.elapsed() >= std::time::Duration::from_millis(90));
    }

    #[test]
    fn a_socket_file_left_by_a_crashed_daemon_is_replaced() {
        let path = std::env::temp_dir().join(format!("mv-ctl-{}-stale.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        // std leaves the file behind when the listener closes, as a kill -9 would.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let s = ControlServer::bind(&path).expect("stale socket replaced");
        assert!(UnixStream::connect(&path).is_ok());
        drop(s);
        assert!(!path.exists());
    }

    #[test]
    fn a_second_daemon_cannot_take_a_live_socket() {
        let (_lp, _f, path) = setup("twice");
        assert!(ControlServer::bind(&path).is_err());
        assert!(path.exists());
    }
}
