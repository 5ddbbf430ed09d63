//! The loop wired to the real system sockets, in private namespaces: a VRRP frame sent from
//! ns B arrives as an input event in ns A's loop, and `ip link set e0 down/up` arrives as
//! LinkDown/LinkUp through the rtnetlink subscription, all driven by timers and poll; the
//! same packet socket keeps receiving after the link flap.
//! (The daemon's own wiring is the coordinator's; this shows the pieces fit.)

use crate::topo::*;
use minivrrp::base::{Duration, Instant};
use minivrrp::daemon::{Ctx, Handler, Inbox, Interest, Loop, Read, Ready, Signal, TimerId, Token};
use minivrrp::sys::packet::PacketSocket;
use minivrrp::sys::rtnl::{RtnlEvent, RtnlEvents};
use nix::errno::Errno;

const PKT: Token = Token(0);
const NL: Token = Token(1);
const SEND: TimerId = TimerId(1);
const GIVE_UP: TimerId = TimerId(2);

#[derive(Debug)]
enum Input {
    Frame { len: usize },
    Link(RtnlEvent),
}

struct Node {
    rx: PacketSocket,
    tx: PacketSocket,
    nl: RtnlEvents,
    e0: u32,
    frame: Vec<u8>,
    log: Vec<String>,
    recv_errors: Vec<Errno>,
    failed: Option<String>,
}

impl Handler for Node {
    type Input = Input;

    fn on_readable(
        &mut self,
        _: &mut Ctx,
        inbox: &mut Inbox<Input>,
        token: Token,
        _: Ready,
        _: Instant,
    ) -> Read {
        match token {
            PKT => {
                let mut buf = [0u8; 1600];
                match self.rx.recv(&mut buf) {
                    Ok(Some(f)) => {
                        inbox.push(Input::Frame { len: f.len });
                        Read::Again
                    }
                    Ok(None) => Read::Drained,
                    // A packet socket reports ENETDOWN once when its interface goes down.
                    Err(e) => {
                        self.recv_errors.push(e);
                        Read::Drained
                    }
                }
            }
            _ => match self.nl.recv(|ev| {
                inbox.push(Input::Link(ev));
            }) {
                Ok(true) => Read::Again,
                _ => Read::Drained,
            },
        }
    }

    fn on_input(&mut self, ctx: &mut Ctx, _: Token, input: Input, now: Instant) {
        match input {
            Input::Frame { len } => {
                if len != self.frame.len() {
                    self.failed = Some(format!("frame of {len} bytes"));
                    ctx.stop();
                    return;
                }
                self.log.push("frame".into());
                if self.log.len() > 1 {
                    // The second frame, after the link flap: the same socket still works.
                    ctx.stop();
                    return;
                }
                if let Err(e) = run(&["ip", "link", "set", "dev", "e0", "down"]) {
                    self.failed = Some(e);
                    ctx.stop();
                }
            }
            Input::Link(RtnlEvent::LinkDown { ifindex, .. }) if ifindex == self.e0 => {
                self.log.push("down".into());
                if let Err(e) = run(&["ip", "link", "set", "dev", "e0", "up"]) {
                    self.failed = Some(e);
                    ctx.stop();
                }
            }
            Input::Link(RtnlEvent::LinkUp { ifindex, .. }) if ifindex == self.e0 => {
                self.log.push("up".into());
                // Send again shortly; the packet socket stays bound across down/up.
                let _ = ctx.arm_after(SEND, now, Duration::from_millis(20));
            }
            Input::Link(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, _: Instant) {
        match id {
            SEND => {
                if self.tx.send(&self.frame) != Ok(Some(self.frame.len())) {
                    self.failed = Some("send failed".into());
                    ctx.stop();
                }
            }
            _ => {
                self.failed = Some(format!("timed out after {:?}", self.log));
                ctx.stop();
            }
        }
    }

    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

#[test]
fn loop_delivers_a_vrrp_frame_then_link_down_and_up_events() {
    require!(root);
    let t = Topo::new("loop");
    in_child(|| {
        enter(&t.b)?;
        let tx = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        enter(&t.a)?;
        let e0 = ifindex("e0")?;
        let rx = PacketSocket::open(e0, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        rx.join_vrrp_multicast().map_err(|e| e.to_string())?;
        let nl = RtnlEvents::open().map_err(|e| e.to_string())?;
        let frame = ipv4_frame(MCAST_V4, VMAC1, 112, [10, 77, 0, 2], [224, 0, 0, 18]);
        let mut node = Node {
            rx,
            tx,
            nl,
            e0,
            frame,
            log: vec![],
            recv_errors: vec![],
            failed: None,
        };
        // Let the tracker know e0 is up, so its going down is a transition.
        let mut nlreq = minivrrp::sys::rtnl::Rtnl::open().map_err(|e| e.to_string())?;
        nlreq
            .for_each_link(|l| node.nl.tracker.seed(l))
            .map_err(|e| e.to_string())?;

        let mut l: Loop<Input> = Loop::new();
        let now = minivrrp::sys::clock::now();
        let ctx = l.ctx();
        ctx.register(PKT, &node.rx, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        ctx.register(NL, &node.nl, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        ctx.arm(SEND, now + Duration::from_millis(20))
            .map_err(|e| e.to_string())?;
        ctx.arm(GIVE_UP, now + Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        l.run(&mut node).map_err(|e| e.to_string())?;
        if let Some(f) = node.failed {
            return Err(f);
        }
        check(
            node.log == ["frame", "down", "up", "frame"],
            &format!("order: {:?}", node.log),
        )?;
        check(
            node.recv_errors.iter().all(|e| *e == Errno::ENETDOWN),
            &format!(
                "only ENETDOWN from the packet socket: {:?}",
                node.recv_errors
            ),
        )?;
        Ok(())
    });
}

/// A listener with a receive ring (`sys::packet::ring`) read through the loop: frames held
/// in the kernel and handed over together are all delivered, in order, each with the time
/// it arrived, though the loop reads them later; and a timer that fell due meanwhile still
/// fires before any of them is handled (the loop's rule: due timers first).
struct RingNode {
    rx: PacketSocket,
    tx: PacketSocket,
    /// When each frame was sent.
    sent: Vec<Instant>,
    /// What the handler saw, in order: ("timer", fired at) or ("frame N", arrival, handled).
    log: Vec<(String, Option<Instant>, Instant)>,
    wake_reads: usize,
    failed: Option<String>,
}

const RING_FRAMES: usize = 12;
const DUE: TimerId = TimerId(3);

impl Handler for RingNode {
    type Input = (u8, Option<Instant>);

    fn on_readable(
        &mut self,
        _: &mut Ctx,
        inbox: &mut Inbox<(u8, Option<Instant>)>,
        _: Token,
        _: Ready,
        _: Instant,
    ) -> Read {
        self.wake_reads += 1;
        let mut buf = [0u8; 1600];
        // As the daemon does: everything handed over, a bounded batch per call.
        for _ in 0..16 {
            match self.rx.recv(&mut buf) {
                Ok(Some(f)) => {
                    inbox.push((buf[14 + 15], f.at));
                }
                Ok(None) => return Read::Drained,
                Err(e) => {
                    self.failed = Some(format!("recv: {e}"));
                    return Read::Drained;
                }
            }
        }
        Read::Again
    }

    fn on_input(
        &mut self,
        ctx: &mut Ctx,
        _: Token,
        (num, at): (u8, Option<Instant>),
        now: Instant,
    ) {
        self.log.push((format!("frame {num}"), at, now));
        if self.log.len() == RING_FRAMES + 1 {
            ctx.stop();
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        match id {
            SEND => {
                for i in 0..RING_FRAMES {
                    let f = ipv4_frame(
                        MCAST_V4,
                        VMAC1,
                        112,
                        [10, 77, 0, i as u8 + 2],
                        [224, 0, 0, 18],
                    );
                    self.sent.push(minivrrp::sys::clock::now());
                    if self.tx.send(&f) != Ok(Some(f.len())) {
                        self.failed = Some("send failed".into());
                        ctx.stop();
                    }
                }
                // Busy past the ring's hold and past DUE: next turn finds both the block
                // handed over and the timer due.
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            DUE => self.log.push(("timer".into(), None, now)),
            _ => {
                self.failed = Some(format!("timed out after {:?}", self.log));
                ctx.stop();
            }
        }
    }

    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

#[test]
fn loop_fires_a_due_timer_before_a_held_block_and_keeps_arrival_order_and_times() {
    require!(root);
    let t = Topo::new("lring");
    in_child(|| {
        enter(&t.b)?;
        let tx = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        enter(&t.a)?;
        let hold = Duration::from_millis(20);
        let rx = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, Some(hold))
            .map_err(|e| e.to_string())?;
        rx.join_vrrp_multicast().map_err(|e| e.to_string())?;
        let mut node = RingNode {
            rx,
            tx,
            sent: vec![],
            log: vec![],
            wake_reads: 0,
            failed: None,
        };
        let mut l: Loop<(u8, Option<Instant>)> = Loop::new();
        let now = minivrrp::sys::clock::now();
        let ctx = l.ctx();
        ctx.register(PKT, &node.rx, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let send_at = now + Duration::from_millis(20);
        ctx.arm(SEND, send_at).map_err(|e| e.to_string())?;
        // Due 5 ms after the frames are sent: later than their arrival, earlier than the
        // ring hands them over.
        ctx.arm(DUE, send_at + Duration::from_millis(5))
            .map_err(|e| e.to_string())?;
        ctx.arm(GIVE_UP, now + Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        l.run(&mut node).map_err(|e| e.to_string())?;
        if let Some(f) = node.failed {
            return Err(f);
        }
        let names: Vec<&str> = node.log.iter().map(|(n, _, _)| n.as_str()).collect();
        let mut want = vec!["timer".to_string()];
        want.extend((0..RING_FRAMES).map(|i| format!("frame {}", i + 2)));
        check(names == want, &format!("order: {names:?}"))?;
        for (i, (_, at, handled)) in node.log[1..].iter().enumerate() {
            let at = at.ok_or("a ring frame carries its arrival time")?;
            let sent = node.sent[i];
            check(
                at >= sent - Duration::from_millis(1) && at <= sent + Duration::from_millis(5),
                &format!("frame {i}: arrival {at} near its send {sent}"),
            )?;
            check(
                handled.saturating_duration_since(at) >= Duration::from_millis(20),
                &format!("frame {i}: handled at {handled}, well after its arrival {at}"),
            )?;
        }
        check(
            node.wake_reads <= 2,
            &format!(
                "the held block read in one wake-up ({} reads)",
                node.wake_reads
            ),
        )?;
        Ok(())
    });
}
