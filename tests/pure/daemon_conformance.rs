//! Replays every scenario in `tests/daemon_conformance/<scenario>/` against the daemon's VRRP
//! part (`daemon::vrrp::Vrrp`), or the whole runtime (`daemon::runtime::Daemon`, scenarios
//! with `"runtime": true`), on a recording fake of the kernel seam (`daemon::kernel`) instead
//! of Linux, so reload diffing, sync groups, link events, the link dump at start, the resync
//! after lost events, VIP handling and the order of notify commands are checked without
//! namespaces or root (the namespace tests in `vrrp_lab.rs` stay for the wire). See the folder's README.md for
//! the file formats. Run one scenario with
//! `DAEMON_CONFORMANCE=<name> cargo test --test pure daemon_conformance:: -- --nocapture`.

use crate::common;

use common::scenarios::{differ, jsonl, replay_all};
use std::collections::VecDeque;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use minivrrp::base::{Duration, Family, Instant};
use minivrrp::check::ExitStatus;
use minivrrp::config::Config;
use minivrrp::daemon::event_loop::{Ctx, Loop, Read};
use minivrrp::daemon::ids::Part;
use minivrrp::daemon::kernel::{
    ChildOf, IpvsTable, KernelAddrs, KernelIpvs, KernelLinks, KernelRoutes, PacketIo, Spawner,
};
use minivrrp::daemon::notify;
use minivrrp::daemon::runtime::{Daemon, Event};
use minivrrp::daemon::vrrp::{LinkFacts, Vrrp, VIP_REFRESH_TIMER};
use minivrrp::daemon::{Handler, Signal};
use minivrrp::ipvs::IpvsError;
use minivrrp::sys::bpf;
use minivrrp::sys::packet::{KernelStats, PktType, RecvFrame};
use minivrrp::sys::process::Child;
use minivrrp::sys::rtnl::{
    AddrAttrs, AddrInfo, IfName, LinkInfo, LinkTracker, RouteAttrs, RtnlEvent, RuleAttrs,
    SourceRule, IFF_RUNNING, IFF_UP,
};
use minivrrp::vrrp::frame::{emit_advert_v4, emit_advert_v6, parse_frame, RxContext};
use minivrrp::vrrp::priority::Adjustment;
use minivrrp::vrrp::wire::{AddrList, Auth, ChecksumMode, Packet, Version, VrrpRepr};
use nix::errno::Errno;
use serde_json::{json, Value};
use smoltcp::wire::{
    ArpPacket, EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv6Packet, Ipv6Packet,
};

// ---------------------------------------------------------------------------------------
// The fake kernel: links and addresses as plain data, every change and every frame sent
// recorded as one JSON line with the scenario time.

struct FakeLink {
    name: String,
    facts: LinkFacts,
    /// Addresses on the link (VIPs the daemon added, and any the scenario put there).
    addrs: Vec<(IpAddr, u8)>,
}

#[derive(Default)]
struct Fake {
    now: f64,
    links: Vec<FakeLink>,
    /// Frames waiting to be read, per ifindex.
    rx: Vec<(u32, Vec<u8>)>,
    log: Vec<Value>,
    next_ifindex: u32,
    /// Record reads of link facts and addresses too (only around `address` and
    /// `events_lost` events, so the other scenarios list changes only).
    log_reads: bool,
    /// The routing table: added and not yet deleted routes.
    routes: Vec<RouteAttrs>,
    /// Children started and neither killed nor reported ended: (pid, instance or notify
    /// entry, whether it is a pre-master hook).
    hooks: Vec<(i32, String, bool)>,
    /// Children that ended, waiting to be reaped (`notify_exit` events).
    exited: VecDeque<(i32, ExitStatus)>,
    /// Notify jobs end as soon as they start (`kernel.json` `"notify_exits_at_once"`), for
    /// scenarios about something else that show transitions through their notify commands.
    notify_exits_at_once: bool,
    /// The whole runtime is driven, not only the VRRP part (`kernel.json` `"runtime"`).
    runtime: bool,
    /// Programs whose notify jobs are not recorded and end at once (hotplug-call, ubus).
    helpers: Vec<String>,
    /// The event side's picture of the links, as `Linux` keeps it: a link message becomes an
    /// event only when it differs from what the last reseeding dump or event showed.
    tracker: LinkTracker,
    next_pid: i32,
    /// A hook command whose spawn fails (`kernel.json` `"spawn_fails"`), as exec would.
    spawn_fails: Option<String>,
    /// The policy rules added and not yet deleted, in `ip rule` words.
    rules: Vec<String>,
}

/// A rule in `ip rule` words, as `expected.jsonl` lists it.
fn rule_text(r: &RuleAttrs<'_>) -> String {
    let mut w: Vec<String> = Vec::new();
    if r.ipv6 {
        w.push("inet6".into());
    }
    if r.invert {
        w.push("not".into());
    }
    if let Some((a, p)) = r.src {
        w.push(format!("from {a}/{p}"));
    }
    if let Some((a, p)) = r.dst {
        w.push(format!("to {a}/{p}"));
    }
    if let Some(i) = r.iif {
        w.push(format!("iif {i}"));
    }
    if let Some(o) = r.oif {
        w.push(format!("oif {o}"));
    }
    if let Some(m) = r.fwmark {
        w.push(format!("fwmark {m:#x}"));
    }
    if let Some(k) = r.fwmask {
        w.push(format!("fwmask {k:#x}"));
    }
    w.push(format!("priority {} table {}", r.priority, r.table));
    w.join(" ")
}

/// A link as the kernel's dump gives it (up: administratively up and running).
fn link_info(l: &FakeLink) -> LinkInfo {
    LinkInfo {
        ifindex: l.facts.ifindex,
        name: IfName::try_from(l.name.as_str()).expect("link name"),
        mac: Some(l.facts.mac),
        flags: if l.facts.up { IFF_UP | IFF_RUNNING } else { 0 },
        mtu: 1500,
        operstate: if l.facts.up { 6 } else { 2 },
    }
}

/// Listener and unicast socket stand-ins: the loop never polls them (the runner calls the
/// part directly), so a negative fd, which poll(2) would ignore anyway, is enough.
struct FakeListener {
    ifindex: u32,
}

impl AsRawFd for FakeListener {
    fn as_raw_fd(&self) -> RawFd {
        -1
    }
}

struct FakeUnicast {
    device: String,
}

impl Fake {
    fn record(&mut self, mut v: Value) {
        v["t"] = json!(self.now);
        // Repeated identical frames at one instant (a GARP burst) are one line with a count.
        if let Some(last) = self.log.last_mut() {
            let mut a = last.clone();
            let count = a.as_object_mut().and_then(|o| o.remove("count"));
            if a == v {
                let n = count.and_then(|c| c.as_u64()).unwrap_or(1) + 1;
                last["count"] = json!(n);
                return;
            }
        }
        self.log.push(v);
    }

    fn name_of(&self, ifindex: u32) -> String {
        self.links
            .iter()
            .find(|l| l.facts.ifindex == ifindex)
            .map_or(format!("#{ifindex}"), |l| l.name.clone())
    }

    fn link_mut(&mut self, ifindex: u32) -> Result<&mut FakeLink, Errno> {
        self.links
            .iter_mut()
            .find(|l| l.facts.ifindex == ifindex)
            .ok_or(Errno::ENODEV)
    }

    /// What a sent frame is, in a line a reader can check against the RFC.
    fn describe(&self, link: &str, frame: &[u8]) -> Value {
        if let Ok(a) = parse_frame(frame, RxContext { unicast: false }) {
            return json!({
                "kernel": "advert", "link": link, "vrid": a.vrrp.vrid,
                "priority": a.vrrp.priority, "src": a.ip.src.to_string(),
                "mac": a.ip.src_mac.map(|m| mac_str(m.0)),
            });
        }
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return json!({"kernel": "frame", "link": link, "bytes": frame.len()});
        };
        let mac = mac_str(eth.src_addr().0);
        match eth.ethertype() {
            EthernetProtocol::Arp => {
                let arp = ArpPacket::new_checked(eth.payload()).expect("arp");
                let ip =
                    Ipv4Addr::from(<[u8; 4]>::try_from(arp.source_protocol_addr()).expect("ipv4"));
                json!({"kernel": "garp", "link": link, "ip": ip.to_string(), "mac": mac})
            }
            EthernetProtocol::Ipv6 => {
                let ip = Ipv6Packet::new_checked(eth.payload()).expect("ipv6");
                Icmpv6Packet::new_checked(ip.payload()).expect("icmpv6");
                // The target address of the unsolicited NA (RFC 4861 4.4: after type, code,
                // checksum and flags), read from the bytes: smoltcp's `payload()` of an
                // NDISC message starts after the target.
                let target = Ipv6Addr::from(
                    <[u8; 16]>::try_from(ip.payload().get(8..24).expect("target")).expect("target"),
                );
                json!({"kernel": "na", "link": link, "ip": target.to_string(), "mac": mac})
            }
            _ => json!({"kernel": "frame", "link": link, "bytes": frame.len()}),
        }
    }
}

impl Fake {
    /// A route as a record: `route` `DEST/PREFIX`, `via`, `link` (the output interface when
    /// given), `metric` and `table` when not 0 and main.
    fn route_json(&self, kernel: &str, r: &RouteAttrs) -> Value {
        let mut v = json!({"kernel": kernel, "route": format!("{}/{}", r.dest, r.prefix)});
        if let Some(g) = r.gateway {
            v["via"] = json!(g.to_string());
        }
        if let Some(oif) = r.oif {
            v["link"] = json!(self.name_of(oif));
        }
        if r.metric != 0 {
            v["metric"] = json!(r.metric);
        }
        if r.table != 254 {
            v["table"] = json!(r.table);
        }
        v
    }
}

impl KernelLinks for Fake {
    fn link_facts(
        &mut self,
        name: &str,
        rule: &SourceRule<'_>,
    ) -> Result<Option<LinkFacts>, Errno> {
        if self.log_reads {
            self.record(json!({"kernel": "read_link", "link": name}));
        }
        // The link's facts are what the kernel's dump yields as sources; a VIP never is one.
        Ok(self.links.iter().find(|l| l.name == name).map(|l| {
            let mut f = l.facts;
            f.primary4 = f.primary4.filter(|a| !(rule.skip)(IpAddr::V4(*a)));
            f.link_local6 = f.link_local6.filter(|a| !(rule.skip)(IpAddr::V6(*a)));
            f
        }))
    }

    fn source_addresses(
        &mut self,
        ifindex: u32,
        rule: &SourceRule<'_>,
    ) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), Errno> {
        if self.log_reads {
            let link = self.name_of(ifindex);
            self.record(json!({"kernel": "read_addresses", "link": link}));
        }
        // The link's facts are what the kernel's dump yields as sources; a VIP never is one.
        let f = self.link_mut(ifindex)?.facts;
        Ok((
            f.primary4.filter(|a| !(rule.skip)(IpAddr::V4(*a))),
            f.link_local6.filter(|a| !(rule.skip)(IpAddr::V6(*a))),
        ))
    }

    /// Only the runtime dumps every link, and every dump is recorded.
    fn dump_links(&mut self, each: &mut dyn FnMut(&LinkInfo)) -> Result<(), Errno> {
        self.record(json!({"kernel": "dump_links"}));
        for l in &self.links {
            each(&link_info(l));
        }
        Ok(())
    }

    fn reseed_link_events(&mut self, each: &mut dyn FnMut(&LinkInfo)) -> Result<(), Errno> {
        self.record(json!({"kernel": "dump_links", "reseed": true}));
        for l in &self.links {
            let info = link_info(l);
            self.tracker.seed(&info);
            each(&info);
        }
        Ok(())
    }

    fn link_events_fd(&self) -> Option<RawFd> {
        None
    }

    fn read_link_events(&mut self, _each: &mut dyn FnMut(RtnlEvent)) -> Result<bool, Errno> {
        Ok(false)
    }

    fn create_vmac(
        &mut self,
        name: &str,
        parent: u32,
        parent_name: &str,
        mac: [u8; 6],
    ) -> Result<u32, Errno> {
        self.link_mut(parent)?;
        self.next_ifindex += 1;
        let ifindex = self.next_ifindex;
        self.links.push(FakeLink {
            name: name.to_string(),
            facts: LinkFacts {
                ifindex,
                up: true,
                mac,
                primary4: None,
                link_local6: None,
            },
            addrs: Vec::new(),
        });
        self.record(json!({
            "kernel": "create_vmac", "link": name, "parent": parent_name,
            "mac": mac_str(mac),
        }));
        Ok(ifindex)
    }

    fn delete_link(&mut self, ifindex: u32) -> Result<(), Errno> {
        let k = self
            .links
            .iter()
            .position(|l| l.facts.ifindex == ifindex)
            .ok_or(Errno::ENODEV)?;
        let l = self.links.remove(k);
        self.record(json!({"kernel": "delete_link", "link": l.name}));
        Ok(())
    }
}

impl KernelAddrs for Fake {
    fn addresses(&mut self, ifindex: u32, each: &mut dyn FnMut(IpAddr, u8)) -> Result<(), Errno> {
        for &(a, p) in &self.link_mut(ifindex)?.addrs {
            each(a, p);
        }
        Ok(())
    }

    fn add_address(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix: u8,
        opts: &AddrAttrs<'_>,
    ) -> Result<(), Errno> {
        let link = self.link_mut(ifindex)?;
        // Create or replace, as RTM_NEWADDR with NLM_F_REPLACE does (a lease refresh).
        if !link.addrs.iter().any(|(a, _)| *a == addr) {
            link.addrs.push((addr, prefix));
        }
        let name = link.name.clone();
        let mut v =
            json!({"kernel": "add_address", "link": name, "addr": format!("{addr}/{prefix}")});
        if let Some(l) = opts.lifetime_s {
            v["lifetime"] = json!(l);
        }
        if let Some(l) = opts.label {
            v["label"] = json!(l);
        }
        if opts.scope != 0 {
            v["scope"] = json!(opts.scope);
        }
        self.record(v);
        Ok(())
    }

    fn del_address(&mut self, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<(), Errno> {
        let link = self.link_mut(ifindex)?;
        let Some(k) = link.addrs.iter().position(|(a, _)| *a == addr) else {
            return Err(Errno::EADDRNOTAVAIL);
        };
        link.addrs.remove(k);
        let name = link.name.clone();
        self.record(
            json!({"kernel": "del_address", "link": name, "addr": format!("{addr}/{prefix}")}),
        );
        Ok(())
    }
}

impl KernelRoutes for Fake {
    fn add_route(&mut self, r: &RouteAttrs) -> Result<(), Errno> {
        // Create or replace by destination, table and metric, as RTM_NEWROUTE with
        // NLM_F_REPLACE does.
        self.routes.retain(|x| {
            (x.dest, x.prefix, x.table, x.metric) != (r.dest, r.prefix, r.table, r.metric)
        });
        self.routes.push(*r);
        let v = self.route_json("add_route", r);
        self.record(v);
        Ok(())
    }

    fn del_route(&mut self, r: &RouteAttrs) -> Result<(), Errno> {
        let Some(k) = self.routes.iter().position(|x| x == r) else {
            return Err(Errno::ESRCH);
        };
        self.routes.remove(k);
        let v = self.route_json("del_route", r);
        self.record(v);
        Ok(())
    }

    fn add_rule(&mut self, r: &RuleAttrs<'_>) -> Result<(), Errno> {
        // NLM_F_EXCL: the same rule twice is refused.
        let text = rule_text(r);
        if self.rules.contains(&text) {
            return Err(Errno::EEXIST);
        }
        self.record(json!({"kernel": "add_rule", "rule": text}));
        self.rules.push(text);
        Ok(())
    }

    fn del_rule(&mut self, r: &RuleAttrs<'_>) -> Result<(), Errno> {
        let text = rule_text(r);
        let Some(k) = self.rules.iter().position(|x| *x == text) else {
            return Err(Errno::ENOENT);
        };
        self.rules.remove(k);
        self.record(json!({"kernel": "del_rule", "rule": text}));
        Ok(())
    }
}

impl PacketIo for Fake {
    type Listener = FakeListener;
    type Unicast = FakeUnicast;

    fn open_listener(
        &mut self,
        ifindex: u32,
        name: &str,
        _filter: &[bpf::Insn],
        _rcvbuf: usize,
        _rx_delay: Option<Duration>,
    ) -> Result<FakeListener, Errno> {
        self.link_mut(ifindex)?;
        self.record(json!({"kernel": "listen", "link": name}));
        Ok(FakeListener { ifindex })
    }

    /// Not recorded: the filter only decides what reaches `recv`, and the fake delivers
    /// what a scenario sends (the filter itself is tested in `sys::bpf`).
    fn set_filter(
        &mut self,
        _listener: &FakeListener,
        _filter: &[bpf::Insn],
        _rcvbuf: usize,
    ) -> Result<(), Errno> {
        Ok(())
    }

    /// Not recorded: the fake hands frames over as a scenario sends them.
    fn set_rx_delay(
        &mut self,
        _listener: &mut FakeListener,
        _rx_delay: Option<Duration>,
    ) -> Result<(), Errno> {
        Ok(())
    }

    fn take_kernel_stats(&mut self, _listener: &FakeListener) -> Result<KernelStats, Errno> {
        Ok(KernelStats::default())
    }

    fn recv(
        &mut self,
        listener: &mut FakeListener,
        buf: &mut [u8],
    ) -> Result<Option<RecvFrame>, Errno> {
        let Some(k) = self.rx.iter().position(|(i, _)| *i == listener.ifindex) else {
            return Ok(None);
        };
        let (_, frame) = self.rx.remove(k);
        let len = frame.len().min(buf.len());
        buf[..len].copy_from_slice(&frame[..len]);
        let mut src_mac = [0u8; 6];
        src_mac.copy_from_slice(&frame[6..12]);
        Ok(Some(RecvFrame {
            len,
            truncated: len < frame.len(),
            pkttype: PktType::Multicast,
            ifindex: listener.ifindex,
            src_mac,
            vlan_tagged: false,
            at: None,
        }))
    }

    fn send_frame(
        &mut self,
        listener: &FakeListener,
        frame: &[u8],
    ) -> Result<Option<usize>, Errno> {
        let link = self.name_of(listener.ifindex);
        let v = self.describe(&link, frame);
        self.record(v);
        Ok(Some(frame.len()))
    }

    fn send_frame_on(&mut self, ifindex: u32, frame: &[u8], count: u8) -> Result<(), Errno> {
        let link = self.name_of(ifindex);
        for _ in 0..count {
            let v = self.describe(&link, frame);
            self.record(v);
        }
        Ok(())
    }

    fn open_unicast(
        &mut self,
        _family: Family,
        device: &str,
        _src: Option<IpAddr>,
    ) -> Result<FakeUnicast, Errno> {
        Ok(FakeUnicast {
            device: device.to_string(),
        })
    }

    fn send_unicast(
        &mut self,
        sock: &FakeUnicast,
        msg: &[u8],
        peer: IpAddr,
        _ifindex: u32,
    ) -> Result<Option<usize>, Errno> {
        let p = Packet::new_checked(msg).map_err(|_| Errno::EINVAL)?;
        self.record(json!({
            "kernel": "advert", "link": sock.device, "to": peer.to_string(), "vrid": p.vrid(),
            "priority": p.priority(),
        }));
        Ok(Some(msg.len()))
    }
}

/// No IPVS: the scenarios have no virtual servers (the IPVS part has its own tests).
impl KernelIpvs for Fake {
    fn open_ipvs(&mut self) -> Result<Box<dyn IpvsTable>, IpvsError> {
        Err(IpvsError::NotAvailable)
    }
}

impl Spawner for Fake {
    /// Recorded with the command and, for a hook, the `MINIVRRP_*` / `NAME` context it
    /// gets (a notify job's arguments say it all).
    fn spawn(
        &mut self,
        of: ChildOf<'_>,
        argv: &[&str],
        env: &[&str],
        _user: Option<(u32, u32)>,
    ) -> Result<i32, Errno> {
        if matches!(of, ChildOf::Notify(_))
            && argv
                .first()
                .is_some_and(|p| self.helpers.iter().any(|h| h == p))
        {
            self.next_pid += 1;
            self.exited.push_back((self.next_pid, ExitStatus::Code(0)));
            return Ok(self.next_pid);
        }
        let name = match of {
            ChildOf::PreMaster(name) => {
                self.record(
                    json!({"kernel": "run_pre_master", "instance": name, "argv": argv, "env": env}),
                );
                name
            }
            ChildOf::Notify(name) => {
                self.record(json!({"kernel": "run_notify", "for": name, "argv": argv}));
                name
            }
        };
        if self.spawn_fails.as_deref() == argv.first().copied() {
            return Err(Errno::ENOENT);
        }
        self.next_pid += 1;
        let hook = matches!(of, ChildOf::PreMaster(_));
        if !hook && self.notify_exits_at_once {
            self.exited.push_back((self.next_pid, ExitStatus::Code(0)));
            return Ok(self.next_pid);
        }
        self.hooks.push((self.next_pid, name.to_string(), hook));
        Ok(self.next_pid)
    }

    /// Recorded and refused: the scenarios have no script checks (the check engine has its
    /// own tests, `tests/daemon_checks.rs`).
    fn spawn_captured(&mut self, argv: &[&str], _user: Option<(u32, u32)>) -> Result<Child, Errno> {
        self.record(json!({"kernel": "run_check", "argv": argv}));
        Err(Errno::ENOSYS)
    }

    fn kill(&mut self, pid: i32) -> Result<(), Errno> {
        let k = self
            .hooks
            .iter()
            .position(|(p, ..)| *p == pid)
            .ok_or(Errno::ESRCH)?;
        let (_, name, hook) = self.hooks.remove(k);
        let line = if hook {
            json!({"kernel": "kill_pre_master", "instance": name})
        } else {
            json!({"kernel": "kill_notify", "for": name})
        };
        self.record(line);
        // Killed with SIGKILL: the runtime reaps it with the next SIGCHLD (runtime scenarios).
        self.exited.push_back((pid, ExitStatus::Signal(9)));
        Ok(())
    }

    fn reap(&mut self) -> Option<(i32, ExitStatus)> {
        self.exited.pop_front()
    }

    fn reap_pid(&mut self, pid: i32) -> Option<ExitStatus> {
        let k = self.exited.iter().position(|(p, _)| *p == pid)?;
        self.exited.remove(k).map(|(_, st)| st)
    }
}

// ---------------------------------------------------------------------------------------
// The runner.

fn at(t: f64) -> Instant {
    Instant::from_micros((t * 1e6).round() as u64)
}

fn str_of<'a>(v: &'a Value, k: &str) -> Result<&'a str, String> {
    v[k].as_str().ok_or_else(|| format!("'{k}' missing in {v}"))
}

fn mac_str(m: [u8; 6]) -> String {
    let h: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
    h.join(":")
}

fn mac_of(s: &str) -> Result<[u8; 6], String> {
    let b: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("mac {s}: {e}"))?;
    b.try_into().map_err(|_| format!("mac {s}: not 6 bytes"))
}

fn load_config(dir: &Path, file: &str) -> Result<Config, String> {
    Config::load(&dir.join(file)).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// `kernel.json`: the links that exist when the daemon starts.
fn load_kernel(dir: &Path) -> Result<Fake, String> {
    let text = fs::read_to_string(dir.join("kernel.json")).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut fake = Fake {
        next_ifindex: 100,
        next_pid: 1000,
        spawn_fails: v["spawn_fails"].as_str().map(String::from),
        notify_exits_at_once: v["notify_exits_at_once"].as_bool().unwrap_or(false),
        runtime: v["runtime"].as_bool().unwrap_or(false),
        ..Fake::default()
    };
    for l in v["links"].as_array().ok_or("kernel.json: links")? {
        fake.links.push(fake_link(l)?);
    }
    Ok(fake)
}

fn fake_link(l: &Value) -> Result<FakeLink, String> {
    fn opt<T: std::str::FromStr>(l: &Value, k: &str) -> Result<Option<T>, String> {
        l[k].as_str()
            .map(|s| s.parse().map_err(|_| format!("{k}: bad address {s}")))
            .transpose()
    }
    let mut addrs = Vec::new();
    let primary4: Option<Ipv4Addr> = opt(l, "ipv4")?;
    let link_local6: Option<Ipv6Addr> = opt(l, "ll6")?;
    if let Some(a) = primary4 {
        addrs.push((IpAddr::V4(a), 24));
    }
    if let Some(a) = link_local6 {
        addrs.push((IpAddr::V6(a), 64));
    }
    // Other addresses already there (e.g. a VIP left by a crashed run), as `ADDR/PREFIX`.
    for v in l["addrs"].as_array().into_iter().flatten() {
        let text = v.as_str().ok_or("addrs: strings")?;
        let (a, p) = text.split_once('/').ok_or("addrs: ADDR/PREFIX")?;
        let a: IpAddr = a.parse().map_err(|_| format!("addrs: {text}"))?;
        addrs.push((a, p.parse().map_err(|_| format!("addrs: {text}"))?));
    }
    Ok(FakeLink {
        name: str_of(l, "name")?.to_string(),
        facts: LinkFacts {
            ifindex: l["ifindex"].as_u64().ok_or("ifindex")? as u32,
            up: l["up"].as_bool().unwrap_or(true),
            mac: mac_of(str_of(l, "mac")?)?,
            primary4,
            link_local6,
        },
        addrs,
    })
}

struct Run {
    vrrp: Vrrp<Fake>,
    lp: Loop<()>,
}

impl Run {
    fn ctx(&mut self) -> &mut Ctx {
        self.lp.ctx()
    }

    fn fake(&mut self) -> &mut Fake {
        self.vrrp.southbound_mut()
    }

    /// What the runtime's settle step does for the VRRP part: sync groups, then the
    /// transitions (recorded as the lines notify would get).
    fn settle(&mut self, now: Instant) {
        let ctx = self.lp.ctx();
        self.vrrp.settle_sync_groups(ctx, now);
        while let Some(t) = self.vrrp.take_transition() {
            let name = self.vrrp.instance_name(usize::from(t.inst)).to_string();
            let line = json!({"instance": name, "state": t.to.to_string(), "priority": t.priority});
            self.fake().record(line);
        }
    }

    /// Fire every timer of the part due at or before `until` (the instances' and the VIP
    /// lease refresh), earliest first, like the loop.
    fn run_timers(&mut self, until: Instant) {
        loop {
            let n = self.vrrp.router_count() as u32;
            let next = (0..n)
                .chain([VIP_REFRESH_TIMER])
                .filter_map(|i| self.ctx().deadline(Part::Vrrp.timer(i)).map(|d| (d, i)))
                .min();
            let Some((d, i)) = next.filter(|(d, _)| *d <= until) else {
                return;
            };
            self.fake().now = d.total_micros() as f64 / 1e6;
            self.ctx().cancel(Part::Vrrp.timer(i));
            let ctx = self.lp.ctx();
            self.vrrp.on_timer(ctx, i as usize, d);
            self.settle(d);
        }
    }

    fn instance(&self, name: &str) -> Result<usize, String> {
        (0..self.vrrp.instance_count())
            .find(|&i| self.vrrp.instance_name(i) == name)
            .ok_or_else(|| format!("no instance {name}"))
    }

    /// Read every listener until it is drained, and hand what was queued to the part.
    fn read_all(&mut self, now: Instant) {
        let mut queued = Vec::new();
        // Interface indices are small and dense (one per configured interface).
        for idx in 0..64 {
            for _ in 0..64 {
                let more = |ev| {
                    queued.push(ev);
                    true
                };
                if self.vrrp.on_readable(idx, more) == Read::Drained {
                    break;
                }
            }
        }
        for ev in queued {
            let ctx = self.lp.ctx();
            self.vrrp.on_event(ctx, ev, now);
        }
    }

    /// An address came or went on `link` (`addr`, `removed`); `ipv4` is the link's primary
    /// IPv4 address after it (absent: none), as the kernel would report it.
    fn address_event(&mut self, ev: &Value, now: Instant) -> Result<(), String> {
        let name = str_of(ev, "link")?;
        let (addr, prefix) = str_of(ev, "addr")?
            .split_once('/')
            .ok_or("address: addr is ADDR/PREFIX")?;
        let addr: IpAddr = addr.parse().map_err(|e| format!("addr: {e}"))?;
        let prefix: u8 = prefix.parse().map_err(|e| format!("prefix: {e}"))?;
        let primary4 = match ev["ipv4"].as_str() {
            Some(a) => Some(a.parse().map_err(|e| format!("ipv4: {e}"))?),
            None => None,
        };
        let fake = self.fake();
        let l = fake
            .links
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or("no such link")?;
        l.facts.primary4 = primary4;
        let info = AddrInfo {
            ifindex: l.facts.ifindex,
            addr,
            prefix,
            flags: 0,
            scope: 0,
        };
        let rtnl = if ev["removed"].as_bool().unwrap_or(false) {
            RtnlEvent::AddrRemoved(info)
        } else {
            RtnlEvent::AddrAdded(info)
        };
        fake.log_reads = true;
        let ctx = self.lp.ctx();
        self.vrrp.on_link_event(ctx, &rtnl, now);
        self.fake().log_reads = false;
        Ok(())
    }

    fn link_event(&mut self, ev: &Value, now: Instant) -> Result<(), String> {
        let name = str_of(ev, "link")?;
        let ifname = IfName::try_from(name).map_err(|_| "link name too long")?;
        let fake = self.fake();
        let pos = fake.links.iter().position(|l| l.name == name);
        let rtnl = match str_of(ev, "event")? {
            "link_down" | "link_up" => {
                let up = ev["event"] == "link_up";
                let l = &mut fake.links[pos.ok_or("no such link")?];
                l.facts.up = up;
                let ifindex = l.facts.ifindex;
                if up {
                    RtnlEvent::LinkUp {
                        name: ifname,
                        ifindex,
                    }
                } else {
                    RtnlEvent::LinkDown {
                        name: ifname,
                        ifindex,
                    }
                }
            }
            "link_gone" => {
                let l = fake.links.remove(pos.ok_or("no such link")?);
                RtnlEvent::LinkGone {
                    name: ifname,
                    ifindex: l.facts.ifindex,
                }
            }
            "link_new" => {
                let l = fake_link(ev)?;
                let (ifindex, up) = (l.facts.ifindex, l.facts.up);
                fake.links.push(l);
                RtnlEvent::LinkNew {
                    name: ifname,
                    ifindex,
                    up,
                }
            }
            other => return Err(format!("unknown link event {other}")),
        };
        if ev["lost"].as_bool().unwrap_or(false) {
            // The kernel changed, the event never reached the part (an `events_lost`
            // event, the runtime's resync, follows).
            return Ok(());
        }
        let ctx = self.lp.ctx();
        self.vrrp.on_link_event(ctx, &rtnl, now);
        Ok(())
    }
}

/// An advert from a peer, as the wire would carry it (multicast to the group).
fn advert_frame(ev: &Value) -> Result<Vec<u8>, String> {
    let src: IpAddr = str_of(ev, "src")?
        .parse()
        .map_err(|e| format!("src: {e}"))?;
    let version = match ev["version"].as_u64().unwrap_or(3) {
        2 => Version::V2,
        _ => Version::V3,
    };
    let mut addrs = AddrList::new();
    for a in ev["vips"].as_array().ok_or("advert: vips")? {
        let a: IpAddr = a
            .as_str()
            .unwrap_or("")
            .parse()
            .map_err(|e| format!("vip: {e}"))?;
        addrs.push(a).map_err(|_| "too many vips")?;
    }
    let repr = VrrpRepr {
        version,
        vrid: ev["vrid"].as_u64().ok_or("advert: vrid")? as u8,
        priority: ev["priority"].as_u64().ok_or("advert: priority")? as u8,
        // v2 seconds, v3 centiseconds (the field's units); 1 s unless given.
        adver_int: ev["adver_int"].as_u64().unwrap_or(match version {
            Version::V2 => 1,
            Version::V3 => 100,
        }) as u16,
        auth: Auth::None,
        addrs,
    };
    let mac = EthernetAddress(mac_of(ev["mac"].as_str().unwrap_or("02:00:00:00:00:99"))?);
    let mut buf = [0u8; 512];
    let n = match src {
        IpAddr::V4(s) => {
            let mode = match version {
                Version::V2 => ChecksumMode::VrrpOnly,
                Version::V3 => ChecksumMode::PseudoHeader,
            };
            emit_advert_v4(&mut buf, &repr, mac, s, 1, mode)
        }
        IpAddr::V6(s) => emit_advert_v6(&mut buf, &repr, mac, s, 0),
    }
    .map_err(|e| format!("advert: {e:?}"))?;
    Ok(buf[..n].to_vec())
}

fn run_scenario(dir: &Path) -> Result<Vec<Value>, String> {
    let fake = load_kernel(dir)?;
    if fake.runtime {
        return run_runtime_scenario(dir, fake);
    }
    let cfg = load_config(dir, "config.uci")?;
    let mut run = Run {
        vrrp: Vrrp::new(&cfg, fake),
        lp: Loop::new(),
    };
    for ev in jsonl(&dir.join("events.jsonl"))? {
        let t = ev["t"].as_f64().ok_or_else(|| format!("no t in {ev}"))?;
        let now = at(t);
        run.run_timers(now);
        run.fake().now = t;
        match str_of(&ev, "event")? {
            "start" => {
                let ctx = run.lp.ctx();
                run.vrrp.start(ctx, now);
            }
            "advert" => {
                let link = str_of(&ev, "link")?;
                let fake = run.fake();
                let ifindex = fake
                    .links
                    .iter()
                    .find(|l| l.name == link)
                    .ok_or("advert on a link that does not exist")?
                    .facts
                    .ifindex;
                fake.rx.push((ifindex, advert_frame(&ev)?));
                run.read_all(now);
            }
            "link_down" | "link_up" | "link_gone" | "link_new" => run.link_event(&ev, now)?,
            "address" => run.address_event(&ev, now)?,
            "events_lost" => {
                // What the runtime does once link events were lost (`daemon::link_sync`).
                run.fake().log_reads = true;
                let ctx = run.lp.ctx();
                run.vrrp.resync_links(ctx, now);
                run.fake().log_reads = false;
            }
            "trackers" => {
                let i = run.instance(str_of(&ev, "instance")?)?;
                let adj = Adjustment {
                    delta: ev["delta"].as_i64().unwrap_or(0) as i32,
                    fault: ev["fault"].as_bool().unwrap_or(false),
                };
                let ctx = run.lp.ctx();
                run.vrrp.set_trackers(ctx, i, adj, now);
            }
            "reload" => {
                let new = load_config(dir, str_of(&ev, "config")?)?;
                let ctx = run.lp.ctx();
                run.vrrp.reload(ctx, &new, now);
            }
            "shutdown" => {
                let ctx = run.lp.ctx();
                run.vrrp.shutdown(ctx, now);
            }
            "pre_master_exit" => {
                // The runtime reaped the instance's running hook (SIGCHLD).
                let name = str_of(&ev, "instance")?;
                let fake = run.fake();
                let k = fake
                    .hooks
                    .iter()
                    .position(|(_, n, hook)| *hook && n == name)
                    .ok_or("pre_master_exit: no hook running for that instance")?;
                let (pid, ..) = fake.hooks.remove(k);
                let status = ExitStatus::Code(ev["code"].as_i64().unwrap_or(0) as i32);
                let ctx = run.lp.ctx();
                if !run.vrrp.on_child_exit(ctx, pid, status, now) {
                    return Err("pre_master_exit: the part did not claim its hook".into());
                }
            }
            "end" => {}
            other => return Err(format!("unknown event {other}")),
        }
        run.settle(now);
    }
    Ok(std::mem::take(&mut run.fake().log))
}

// ---------------------------------------------------------------------------------------
// The runtime runner: scenarios with `"runtime": true` in `kernel.json` drive the whole
// daemon (`daemon::runtime::Daemon`: the settle order, link tracking, the lost-event resync,
// notify and reaping) on the fake, through the loop callbacks `Loop::run` would call.

struct RuntimeRun {
    d: Box<Daemon<Fake>>,
    lp: Loop<Event>,
}

impl RuntimeRun {
    fn fake(&mut self) -> &mut Fake {
        self.d.kernel_mut()
    }

    /// Every timer due at or before `until`, earliest first, each handled at its deadline;
    /// children that ended meanwhile are reaped after each, as SIGCHLD would have them.
    fn run_timers(&mut self, until: Instant) -> Result<(), String> {
        // A timer re-armed at its own deadline forever would be a bug: the bound says so.
        for _ in 0..100_000 {
            let Some((id, at)) = self.lp.ctx().pop_due(until) else {
                return Ok(());
            };
            self.fake().now = at.total_micros() as f64 / 1e6;
            self.d.on_timer(self.lp.ctx(), id, at);
            self.reap(at);
        }
        Err("timers keep firing at one instant".into())
    }

    /// SIGCHLD when children ended, again while reaping started children that ended at once.
    fn reap(&mut self, now: Instant) {
        for _ in 0..64 {
            if self.fake().exited.is_empty() {
                return;
            }
            self.d.on_signal(self.lp.ctx(), Signal::Child, now);
        }
    }

    /// A link message from the kernel: the event side's picture (the fake's tracker, as
    /// `Linux` keeps one) turns it into the events the runtime gets, none when nothing it
    /// tracks changed; `"lost": true` changes the kernel only (the message was dropped).
    fn link_message(&mut self, ev: &Value, now: Instant) -> Result<(), String> {
        let name = str_of(ev, "link")?;
        let fake = self.fake();
        let pos = fake.links.iter().position(|l| l.name == name);
        let mut events = Vec::new();
        let info = match str_of(ev, "event")? {
            "link_down" | "link_up" => {
                let l = &mut fake.links[pos.ok_or("no such link")?];
                l.facts.up = ev["event"] == "link_up";
                link_info(l)
            }
            // An RTM_NEWLINK that changes nothing VRRP tracks (an MTU, a counter).
            "link_update" => link_info(&fake.links[pos.ok_or("no such link")?]),
            "link_new" => {
                let l = fake_link(ev)?;
                let info = link_info(&l);
                fake.links.push(l);
                info
            }
            "link_gone" => {
                let l = fake.links.remove(pos.ok_or("no such link")?);
                let info = link_info(&l);
                if !ev["lost"].as_bool().unwrap_or(false) {
                    fake.tracker.remove(&info, |e| events.push(e));
                }
                self.deliver(events, now);
                return Ok(());
            }
            other => return Err(format!("unknown link event {other}")),
        };
        if !ev["lost"].as_bool().unwrap_or(false) {
            fake.tracker.update(&info, |e| events.push(e));
        }
        self.deliver(events, now);
        Ok(())
    }

    /// Link events read from the event socket, each handled as a queued input; the reads
    /// they cost are recorded (an event the picture should not have produced shows).
    fn deliver(&mut self, events: Vec<RtnlEvent>, now: Instant) {
        self.fake().log_reads = true;
        for e in events {
            self.d
                .on_input(self.lp.ctx(), Part::Links.token(0), Event::Link(e), now);
        }
        self.fake().log_reads = false;
    }

    /// A child ended (`code`): the pre-master hook of `instance`, or the running notify
    /// job of instance, group or server `for`.
    fn child_exit(&mut self, ev: &Value, hook: bool) -> Result<(), String> {
        let name = if hook {
            str_of(ev, "instance")?
        } else {
            str_of(ev, "for")?
        };
        let fake = self.fake();
        let k = fake
            .hooks
            .iter()
            .position(|(_, n, h)| *h == hook && n == name)
            .ok_or_else(|| format!("no child running for {name}"))?;
        let (pid, ..) = fake.hooks.remove(k);
        let status = ExitStatus::Code(ev["code"].as_i64().unwrap_or(0) as i32);
        fake.exited.push_back((pid, status));
        Ok(())
    }
}

fn run_runtime_scenario(dir: &Path, fake: Fake) -> Result<Vec<Value>, String> {
    let mut fake = fake;
    // The machine's hotplug-call and ubus, where it has them, are the daemon's own jobs, not
    // the scenario's: they run unrecorded and end at once (the environment is left alone,
    // other tests share the process).
    fake.helpers = [notify::hotplug_from_env(), notify::ubus_from_env()]
        .into_iter()
        .flatten()
        .collect();
    let path = dir.join("config.uci");
    let cfg = load_config(dir, "config.uci")?;
    let tag = dir.file_name().and_then(|n| n.to_str()).unwrap_or("x");
    let socket = std::env::temp_dir().join(format!("mv-dc-{}-{tag}.sock", std::process::id()));
    let _ = fs::remove_file(&socket);
    let mut run = RuntimeRun {
        d: Box::new(Daemon::with_kernel(&path, cfg, &socket, fake)?),
        lp: Loop::new(),
    };
    let result = (|| {
        for ev in jsonl(&dir.join("events.jsonl"))? {
            let t = ev["t"].as_f64().ok_or_else(|| format!("no t in {ev}"))?;
            let now = at(t);
            run.run_timers(now)?;
            run.fake().now = t;
            match str_of(&ev, "event")? {
                "start" => run.d.start(run.lp.ctx(), now),
                "link_down" | "link_up" | "link_gone" | "link_new" | "link_update" => {
                    run.link_message(&ev, now)?
                }
                // The event socket's read failed with ENOBUFS: the kernel dropped events.
                "enobufs" => run.deliver(vec![RtnlEvent::Overrun], now),
                "notify_exit" => run.child_exit(&ev, false)?,
                "pre_master_exit" => run.child_exit(&ev, true)?,
                "shutdown" => run.d.on_signal(run.lp.ctx(), Signal::Terminate, now),
                "end" => {}
                other => return Err(format!("unknown runtime event {other}")),
            }
            run.reap(now);
        }
        Ok(std::mem::take(&mut run.fake().log))
    })();
    let _ = fs::remove_file(&socket);
    result
}

/// One JSON line with the time first, the way the expected files are written.
fn line(v: &Value) -> String {
    let mut rest = v.clone();
    let t = rest.as_object_mut().and_then(|o| o.remove("t"));
    let body = rest.to_string();
    match t {
        Some(t) if body.len() > 2 => format!("{{\"t\":{t},{}", &body[1..]),
        Some(t) => format!("{{\"t\":{t}}}"),
        None => body,
    }
}

/// Times compared at microsecond resolution, like the state machine's clock.
fn normalise(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(t) = v["t"].as_f64() {
        v["t"] = json!((t * 1e6).round() / 1e6);
    }
    v
}

#[test]
fn daemon_conformance_scenarios_replay() {
    replay_all(
        "daemon_conformance",
        "events.jsonl",
        "DAEMON_CONFORMANCE",
        |dir| {
            let actual = run_scenario(dir)?;
            if std::env::var_os("DAEMON_CONFORMANCE_WRITE").is_some() {
                // Writes what ran as the expectation, for a new scenario: read it against the
                // RFC before committing it.
                let text: String = actual.iter().map(|v| line(&normalise(v)) + "\n").collect();
                fs::write(dir.join("expected.jsonl"), text).map_err(|e| e.to_string())?;
            }
            let expected = jsonl(&dir.join("expected.jsonl"))?;
            let a: Vec<Value> = actual.iter().map(normalise).collect();
            let e: Vec<Value> = expected.iter().map(normalise).collect();
            if a == e {
                return Ok(());
            }
            Err(differ("kernel calls", &e, &a))
        },
    );
}
