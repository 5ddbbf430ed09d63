//! A disposable network-namespace lab: one "switch" namespace holding a Linux bridge, and one
//! namespace per node (routers r1..rN and a client) wired to it by a veth pair whose node end is
//! called `br-lan`, so the shipped default config (`option interface 'br-lan'`) runs unchanged.
//!
//! Everything the lab creates lives in namespaces named `mv<pid>-<n><tag>-<node>` (the switch
//! is `-sw`), made with the one namespace fixture (`super::netns::Netns`), and in a temp dir
//! `/tmp/mvlab-<pid>-<n><tag>`; `Drop` kills every process left in those namespaces and deletes
//! them, also while a panicking test unwinds. `Lab::cleanup_dead_runs` removes what killed runs
//! left.
//!
//! Addressing (node index i: r1=1, r2=2, r3=3, client=100):
//! `10.0.0.i/24`, `fd00::i/64` (i in decimal digits: client = fd00::100), link-local from the
//! MAC, MAC `02:00:00:00:00:<i in hex>` (client 02:00:00:00:00:64).
//! Nothing here touches a host interface: every veth is created directly inside lab namespaces.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::netns::NS_PREFIX;
use super::netns::{run, run_quiet, Netns};
use super::pcap::{self, Kind};

/// Name of the interface every node sees (the shipped default config uses it).
pub const LAN_IF: &str = "br-lan";
/// Bridge name inside the switch namespace.
pub const BRIDGE: &str = "br0";

/// One node of the lab.
#[derive(Clone, Debug)]
pub struct Node {
    /// Logical name used in the API: "r1", "r2", "r3", "client".
    pub name: String,
    /// Network namespace name.
    pub ns: String,
    /// Host part of its addresses and last byte of its MAC.
    pub index: u8,
    pub mac: [u8; 6],
}

impl Node {
    pub fn ipv4(&self) -> String {
        format!("10.0.0.{}", self.index)
    }
    /// `fd00::<index in decimal digits>` (r1 fd00::1, client fd00::100), mirroring the IPv4
    /// address's last byte for readability (the group is read as hex, which is harmless).
    pub fn ipv6(&self) -> String {
        format!("fd00::{}", self.index)
    }
    pub fn mac_str(&self) -> String {
        pcap::mac_str(&self.mac)
    }
}

/// Current CLOCK_REALTIME as time since the epoch: the clock pcap timestamps use.
pub fn now_realtime() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// The lab. See the module docs.
pub struct Lab {
    /// `mv<pid>-<n><tag>`: every namespace of the lab is `<prefix>-<name>`.
    pub prefix: String,
    pub switch_ns: String,
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
    netns: Netns,
}

impl Lab {
    /// Routers r1, r2, r3 and a client.
    pub fn new(tag: &str) -> Lab {
        Lab::with_routers(tag, 3)
    }

    /// Routers r1..r`n` (n ≤ 99) and a client.
    pub fn with_routers(tag: &str, n: u8) -> Lab {
        assert!(n <= 99, "lab: at most 99 routers");
        let netns = Netns::new(tag, &[]);
        let prefix = netns.prefix.clone();
        // `/tmp/mvlab-<pid>-<n><tag>`, beside the namespaces' names.
        let dir = PathBuf::from(format!("/tmp/mvlab-{}", &prefix[NS_PREFIX.len()..]));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab: create temp dir");
        let mut lab = Lab {
            switch_ns: format!("{prefix}-sw"),
            prefix,
            nodes: Vec::new(),
            dir,
            netns,
        };
        let sw = lab.netns.add("sw");
        lab.netns.bridge(
            &sw,
            BRIDGE,
            &[
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        );
        let mut specs: Vec<(String, u8)> = (1..=n).map(|i| (format!("r{i}"), i)).collect();
        specs.push(("client".to_string(), 100));
        for (name, index) in specs {
            lab.add_node(&name, index);
        }
        lab
    }

    /// One more namespace `<prefix>-<suffix>` (loopback up), deleted with the lab; its name.
    /// For a test's own hosts beside the LAN (a server network behind the routers).
    pub fn add_ns(&mut self, suffix: &str) -> String {
        self.netns.add(suffix)
    }

    fn add_node(&mut self, name: &str, index: u8) {
        let ns = self.netns.add(name);
        // Before the interface exists, so it inherits them: no DAD (a tentative VIP cannot be
        // used or announced for a second), and keep IPv6 addresses across link down/up so the
        // link-flap trials do not lose the node's own fd00:: address.
        run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.all.keep_addr_on_down=1",
            "net.ipv6.conf.default.keep_addr_on_down=1",
        ]);
        let port = format!("v{name}");
        let port = &port[..port.len().min(15)];
        let mac = [0x02, 0, 0, 0, 0, index];
        let mac_s = pcap::mac_str(&mac);
        let sw = self.switch_ns.clone();
        self.netns
            .veth(&sw, port, &ns, LAN_IF, &["address", &mac_s]);
        self.netns.enslave(&sw, port, BRIDGE);
        let node = Node {
            name: name.to_string(),
            ns: ns.clone(),
            index,
            mac,
        };
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", node.ipv4()),
            "dev",
            LAN_IF,
        ]);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/64", node.ipv6()),
            "dev",
            LAN_IF,
            "nodad",
        ]);
        run(&["ip", "-n", &ns, "link", "set", LAN_IF, "up"]);
        self.nodes.push(node);
    }

    /// Deletes every namespace whose name starts with `prefix` (killing its processes first).
    /// `cleanup_stale("mv")` clears everything any fixture ever left; returns what it deleted.
    pub fn cleanup_stale(prefix: &str) -> Vec<String> {
        super::netns::cleanup_stale(prefix)
    }

    /// Deletes the namespaces of runs whose process is gone (`mv<pid>-...` with no live
    /// `pid`), e.g. after a run killed by a timeout or built with panic=abort. Safe while
    /// other test processes run labs: their pids are alive. Returns what it deleted.
    pub fn cleanup_dead_runs() -> Vec<String> {
        super::netns::cleanup_dead_runs()
    }

    /// The node called `name`; panics on an unknown name (a typo in a test).
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("lab: no node {name:?}"))
    }

    /// Namespaces this lab created (switch first).
    pub fn namespaces(&self) -> &[String] {
        self.netns.names()
    }

    /// Runs `f` on a thread inside a node's namespace (a socket it opens stays there).
    pub fn run_in<T: Send + 'static>(
        &self,
        node: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        super::netns::run_in(&self.node(node).ns, f)
    }

    /// Runs a command inside a node's namespace and returns its output (does not panic on a
    /// non-zero exit; check `status`).
    pub fn exec(&self, node: &str, cmd: &[&str]) -> Output {
        let ns = &self.node(node).ns;
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("lab: exec {cmd:?} in {node}: {e}"))
    }

    /// Like [`exec`](Self::exec) in the switch namespace.
    pub fn exec_switch(&self, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.switch_ns])
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("lab: exec {cmd:?} in switch: {e}"))
    }

    /// Starts a long-running process in a node. Its stdout+stderr go to `<dir>/<node>-<log>.log`.
    /// It runs in its own process group, so the guard's signals reach its children too
    /// (keepalived forks a VRRP child).
    pub fn spawn(&self, node: &str, log: &str, cmd: &[&str]) -> Proc {
        self.spawn_in(&self.node(node).ns.clone(), &format!("{node}-{log}"), cmd)
    }

    fn spawn_in(&self, ns: &str, log: &str, cmd: &[&str]) -> Proc {
        let log_path = self.dir.join(format!("{log}.log"));
        let f = std::fs::File::create(&log_path).expect("lab: create log");
        let f2 = f.try_clone().expect("lab: dup log");
        // `ip netns exec` execs the command in place (no fork), so the child pid is the process.
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("lab: spawn {cmd:?}: {e}"));
        Proc {
            child,
            log: log_path,
            name: log.to_string(),
        }
    }

    /// `ip link set br-lan down|up` in a node. Returns the realtime instant just before the
    /// command ran, to compare with capture timestamps.
    pub fn set_link(&self, node: &str, up: bool) -> Duration {
        let ns = self.node(node).ns.clone();
        let t = now_realtime();
        run(&[
            "ip",
            "-n",
            &ns,
            "link",
            "set",
            LAN_IF,
            if up { "up" } else { "down" },
        ]);
        t
    }

    /// Waits until a node's `br-lan` reports operational state UP, or `timeout`; true if it did.
    /// After `set_link(node, true)` the kernel's linkwatch applies the carrier change (and
    /// attaches the real qdisc) only up to ~1 s later; until then frames are dropped, so a test
    /// that needs traffic right after link up should wait here.
    pub fn wait_oper_up(&self, node: &str, timeout: Duration) -> bool {
        let ns = self.node(node).ns.clone();
        let start = Instant::now();
        loop {
            let out = run_quiet(&["ip", "-n", &ns, "-o", "link", "show", LAN_IF]);
            let text =
                String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default()).to_string();
            if text.contains("state UP") {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Nodes that currently have `addr` (no prefix length) on any interface.
    pub fn holders(&self, addr: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| self.node_has_addr(&n.name, addr))
            .map(|n| n.name.clone())
            .collect()
    }

    /// True if `node` has `addr` configured.
    pub fn node_has_addr(&self, node: &str, addr: &str) -> bool {
        let ns = &self.node(node).ns;
        let out = run_quiet(&["ip", "-n", ns, "-o", "addr", "show"]);
        let text = String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default()).to_string();
        text.lines().any(|l| {
            let mut it = l.split_whitespace();
            while let Some(w) = it.next() {
                if w == "inet" || w == "inet6" {
                    if let Some(a) = it.next() {
                        if a.split('/').next() == Some(addr) {
                            return true;
                        }
                    }
                }
            }
            false
        })
    }

    /// Polls [`holders`](Self::holders) until it equals `want` (order ignored) or `timeout`
    /// passes; returns the last value seen and the time it took.
    pub fn wait_holders(
        &self,
        addr: &str,
        want: &[&str],
        timeout: Duration,
    ) -> (Vec<String>, Duration) {
        let start = Instant::now();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        loop {
            let mut h = self.holders(addr);
            h.sort();
            if h == want || start.elapsed() >= timeout {
                return (h, start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the `client` node reaches `addr` (IPv4, or IPv6 when it has a colon): two
    /// echoes 0.2 s apart, giving up after 5 s.
    pub fn client_pings(&self, addr: &str) -> bool {
        let mut args = vec!["ping"];
        if addr.contains(':') {
            args.push("-6");
        }
        args.extend(["-c", "2", "-i", "0.2", "-w", "5", addr]);
        self.exec("client", &args).status.success()
    }

    /// Removes `addr` from a node's `br-lan` if present (e.g. a VIP a SIGKILLed daemon left).
    pub fn del_addr(&self, node: &str, addr_with_len: &str) {
        let ns = &self.node(node).ns;
        run_quiet(&["ip", "-n", ns, "addr", "del", addr_with_len, "dev", LAN_IF]);
    }

    /// Starts `tcpdump` on the bridge in the switch namespace, writing `<dir>/<name>.pcap`.
    /// Returns once tcpdump reports it is listening.
    pub fn capture(&self, name: &str) -> Capture {
        let file = self.dir.join(format!("{name}.pcap"));
        let sw = self.switch_ns.clone();
        let proc = self.tcpdump(&sw, &format!("tcpdump-{name}"), BRIDGE, "512", &file, &[]);
        if !proc.log_text().contains("listening on") {
            panic!("lab: tcpdump did not start: {}", proc.log_text());
        }
        Capture { proc, file }
    }

    /// A tcpdump on `node`'s LAN interface keeping only what `filter` matches (the first 128
    /// bytes of each frame) into `<name>.pcap`; the benches read the file after stopping it.
    pub fn capture_filtered(&self, node: &str, name: &str, filter: &str) -> (Proc, PathBuf) {
        let file = self.dir.join(format!("{name}.pcap"));
        let ns = self.node(node).ns.clone();
        let log = format!("{node}-tcpdump-{name}");
        let proc = self.tcpdump(&ns, &log, LAN_IF, "128", &file, &[filter]);
        (proc, file)
    }

    /// Starts tcpdump and waits (at most 10 s) until it listens. -U: flush after every packet
    /// so the file can be read while tcpdump runs. --immediate-mode: no kernel buffering
    /// delay. -Z root: Debian's tcpdump otherwise drops to user `tcpdump`, which cannot write
    /// into our root-owned temp dir.
    fn tcpdump(
        &self,
        ns: &str,
        log: &str,
        iface: &str,
        snaplen: &str,
        file: &Path,
        filter: &[&str],
    ) -> Proc {
        let file_s = file.to_string_lossy().to_string();
        let mut cmd = vec![
            "tcpdump",
            "-i",
            iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-s",
            snaplen,
            "-w",
            &file_s,
        ];
        cmd.extend_from_slice(filter);
        let proc = self.spawn_in(ns, log, &cmd);
        let start = Instant::now();
        while !proc.log_text().contains("listening on") && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        proc
    }

    /// Starts keepalived (VRRP only) with `instances` in a node.
    pub fn spawn_keepalived(&self, node: &str, instances: &[VrrpSpec]) -> Proc {
        self.spawn_keepalived_text(node, &keepalived_conf(node, instances))
    }

    /// Where [`spawn_keepalived`](Self::spawn_keepalived) writes a node's keepalived.conf
    /// (rewrite it and send SIGHUP to test reloads).
    pub fn keepalived_conf_path(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}-keepalived.conf"))
    }

    /// Starts keepalived (VRRP only) in a node on a config given as text.
    /// A second link `wan0` on `node` (10.9.0.2/24, a veth whose peer `wan0p` stays in the
    /// node, up), for VIPs and routes on another interface than the LAN.
    pub fn add_wan0(&self, node: &str) {
        for cmd in [
            &[
                "ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan0p",
            ][..],
            &["ip", "addr", "add", "10.9.0.2/24", "dev", "wan0"][..],
            &["ip", "link", "set", "wan0p", "up"][..],
            &["ip", "link", "set", "wan0", "up"][..],
        ] {
            let out = self.exec(node, cmd);
            assert!(
                out.status.success(),
                "{node}: {cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    pub fn spawn_keepalived_text(&self, node: &str, text: &str) -> Proc {
        self.spawn_keepalived_bin(node, "keepalived", text)
    }

    /// [`Lab::spawn_keepalived_text`] with another keepalived binary (a build from source).
    pub fn spawn_keepalived_bin(&self, node: &str, bin: &str, text: &str) -> Proc {
        let conf = self.keepalived_conf_path(node);
        std::fs::write(&conf, text).expect("lab: write keepalived.conf");
        let pid = self.dir.join(format!("{node}-keepalived.pid"));
        let vpid = self.dir.join(format!("{node}-keepalived-vrrp.pid"));
        let (c, p, v) = (
            conf.to_string_lossy().to_string(),
            pid.to_string_lossy().to_string(),
            vpid.to_string_lossy().to_string(),
        );
        // Stale pid files from a previous run in the same lab make keepalived believe it is
        // already running and exit at once.
        let _ = std::fs::remove_file(&pid);
        let _ = std::fs::remove_file(&vpid);
        self.spawn(
            node,
            "keepalived",
            &[
                bin,
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--no-syslog",
                "--vrrp",
                "--dont-respawn",
                "--use-file",
                &c,
                "--pid",
                &p,
                "--vrrp_pid",
                &v,
            ],
        )
    }

    /// Starts minivrrp (`bin -f FILE`) with `instances` in a node.
    pub fn spawn_minivrrp(&self, node: &str, bin: &Path, instances: &[VrrpSpec]) -> Proc {
        let conf = self.dir.join(format!("{node}-minivrrp.uci"));
        std::fs::write(&conf, minivrrp_uci(node, instances)).expect("lab: write minivrrp config");
        let c = conf.to_string_lossy().to_string();
        let b = bin.to_string_lossy().to_string();
        let sock = self.control_socket(node).to_string_lossy().to_string();
        self.spawn(node, "minivrrp", &[&b, "-f", &c, "--socket", &sock])
    }

    /// Where [`spawn_minivrrp`](Self::spawn_minivrrp) writes a node's config (rewrite it and
    /// send SIGHUP to test reloads).
    pub fn minivrrp_conf_path(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}-minivrrp.uci"))
    }

    /// Starts minivrrp in a node on a config given as UCI text (written to `<dir>/<node>-<log>.uci`);
    /// output goes to `<dir>/<node>-<log>.log`. A distinct `log` per start keeps the log of an
    /// earlier run of the same node.
    pub fn spawn_minivrrp_text(&self, node: &str, bin: &Path, uci: &str, log: &str) -> Proc {
        let conf = self.dir.join(format!("{node}-{log}.uci"));
        std::fs::write(&conf, uci).expect("lab: write minivrrp config");
        let c = conf.to_string_lossy().to_string();
        let b = bin.to_string_lossy().to_string();
        let sock = self.control_socket(node).to_string_lossy().to_string();
        self.spawn(node, log, &[&b, "-f", &c, "--socket", &sock])
    }

    /// The control socket of the minivrrp a node runs (`minivrrp status --socket PATH`):
    /// namespaces share the file system, so each node gets its own path in the lab dir.
    pub fn control_socket(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.sock"))
    }

    /// The link-layer address `node` has in its neighbour table for `addr` on `br-lan`
    /// (`ip neigh show`), in `ip`'s lowercase colon form, with the entry's state.
    pub fn neigh(&self, node: &str, addr: &str) -> Option<(String, String)> {
        let ns = &self.node(node).ns;
        let out = run_quiet(&["ip", "-n", ns, "neigh", "show", addr, "dev", LAN_IF])?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text.lines().next()?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let mac = words
            .iter()
            .position(|w| *w == "lladdr")
            .and_then(|i| words.get(i + 1))?;
        let state = words.last().copied().unwrap_or("").to_string();
        Some((mac.to_string(), state))
    }

    /// Starts the given implementation with `instances` in a node.
    pub fn spawn_vrrp(&self, imp: &Impl, node: &str, instances: &[VrrpSpec]) -> Proc {
        match imp {
            Impl::Keepalived => self.spawn_keepalived(node, instances),
            Impl::Minivrrp(bin) => self.spawn_minivrrp(node, bin, instances),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Nodes first, so their processes die before the bridge goes; deleting a node namespace
        // also destroys its veth pair (both ends).
        self.netns.delete_all();
        if std::env::var_os("MVLAB_KEEP_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab: kept {}", self.dir.display());
        }
    }
}

/// A process started in the lab. Dropping it sends SIGTERM to its process group, waits up to
/// 3 s, then SIGKILLs the group.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Every live pid of the process group (the process and its forked children).
    pub fn pids(&self) -> Vec<i32> {
        let pgid = self.pid();
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if let Some(st) = proc_stat(pid) {
                    if st.pgrp == pgid && st.state != 'Z' {
                        out.push(pid);
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Sends `sig` to the whole process group; returns the realtime instant just before.
    pub fn signal(&self, sig: i32) -> Duration {
        let t = now_realtime();
        unsafe { libc::kill(-self.pid(), sig) };
        t
    }

    /// SIGKILL to the group (a crash: no goodbye advert, VIP left configured).
    pub fn kill_hard(&mut self) -> Duration {
        let t = self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        t
    }

    /// SIGTERM to the group without waiting.
    pub fn terminate(&self) -> Duration {
        self.signal(libc::SIGTERM)
    }

    /// True while the main process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the main process to exit, up to `timeout`; true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if !self.running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        !self.running()
    }

    /// The exit status once the main process has exited (None while it runs).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What the process wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sum of VmRSS (kB) over the group.
    pub fn rss_kb(&self) -> u64 {
        self.pids().iter().filter_map(|&p| vm_rss_kb(p)).sum()
    }

    /// Sum of RssAnon over the group: the memory the processes own, without the mapped
    /// executable and libraries.
    pub fn rss_anon_kb(&self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|&p| status_kb(p, "RssAnon:"))
            .sum()
    }

    /// Sum of on-CPU time from /proc/PID/task/*/schedstat (nanoseconds) over the group: finer
    /// than utime+stime, whose 10 ms ticks round an idle daemon's minute down to zero.
    pub fn cpu_ns(&self) -> u64 {
        self.pids().iter().map(|&p| schedstat_ns(p)).sum()
    }

    /// Sum of utime+stime (clock ticks) over the group.
    pub fn cpu_ticks(&self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|&p| proc_stat(p))
            .map(|s| s.utime + s.stime)
            .sum()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            self.terminate();
            if !self.wait_exit(Duration::from_secs(3)) {
                self.signal(libc::SIGKILL);
            }
        }
        // Children of the group can outlive the leader by a moment.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The fields of /proc/PID/stat the lab uses.
pub struct ProcStat {
    pub state: char,
    pub pgrp: i32,
    pub utime: u64,
    pub stime: u64,
}

/// Parses /proc/PID/stat (the comm field may contain spaces and parentheses: split after the
/// last ')').
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After comm: state(3) ppid(4) pgrp(5) ... utime(14) stime(15); f[0] is field 3.
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        utime: f.get(11)?.parse().ok()?,
        stime: f.get(12)?.parse().ok()?,
    })
}

/// On-CPU nanoseconds of all threads of a process (first field of schedstat); 0 if unavailable.
pub fn schedstat_ns(pid: i32) -> u64 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// VmRSS of a process in kB.
pub fn vm_rss_kb(pid: i32) -> Option<u64> {
    status_kb(pid, "VmRSS:")
}

/// A `/proc/PID/status` line in kB, e.g. `RssAnon:` (private memory: heap, stack, data),
/// as opposed to `RssFile:` (the mapped executable and libraries, shared with the page cache).
pub fn status_kb(pid: i32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Clock ticks per second for /proc/PID/stat times.
pub fn clock_ticks() -> u64 {
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// A running bridge capture.
pub struct Capture {
    proc: Proc,
    pub file: PathBuf,
}

impl Capture {
    /// Frames captured so far (the file is flushed per packet).
    pub fn read(&self) -> pcap::Pcap {
        match pcap::read_file(&self.file) {
            Ok(p) => p,
            // tcpdump writes the file header lazily; nothing captured yet.
            Err(_) => pcap::Pcap {
                linktype: pcap::LINKTYPE_ETHERNET,
                snaplen: 0,
                frames: Vec::new(),
            },
        }
    }

    /// Classified frames so far.
    pub fn seen(&self) -> Vec<pcap::Seen> {
        pcap::classify_all(&self.read())
    }

    /// Polls the capture until `pred` matches a frame with `ts >= since`, or `timeout` passes.
    pub fn wait_for(
        &self,
        since: Duration,
        timeout: Duration,
        pred: impl Fn(&pcap::Kind) -> bool,
    ) -> Option<pcap::Seen> {
        let start = Instant::now();
        loop {
            if let Some(s) = self
                .seen()
                .into_iter()
                .find(|s| s.ts >= since && pred(&s.kind))
            {
                return Some(s);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// VRRP adverts captured so far with `ts >= since`, with their capture time and the
    /// frame's destination MAC (multicast 01:00:5e:00:00:12 / 33:33:00:00:00:12, or a peer's
    /// MAC for unicast).
    pub fn adverts(&self, since: Duration) -> Vec<(Duration, pcap::Advert, pcap::Mac)> {
        self.read()
            .frames
            .iter()
            .filter(|f| f.ts >= since)
            .filter_map(|f| match pcap::classify(&f.data) {
                Kind::Vrrp(a) => {
                    let dst: pcap::Mac = f.data.get(0..6)?.try_into().ok()?;
                    Some((f.ts, a, dst))
                }
                _ => None,
            })
            .collect()
    }

    /// Stops tcpdump cleanly (SIGINT makes it flush and close the file) and returns the capture.
    pub fn stop(mut self) -> pcap::Pcap {
        self.proc.signal(libc::SIGINT);
        self.proc.wait_exit(Duration::from_secs(5));
        self.read()
    }
}

/// How many VRRP state transitions a daemon log reports: minivrrp's `vi50: BACKUP -> MASTER
/// (...)`, keepalived's `Entering MASTER STATE`.
pub fn transitions(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            (l.contains(" -> ") && (l.contains("MASTER") || l.contains("BACKUP")))
                || l.contains("Entering MASTER STATE")
                || l.contains("Entering BACKUP STATE")
                || l.contains("Entering FAULT STATE")
        })
        .count()
}

/// The logs of `procs`, each under a `--- name ---` line, for assertion messages.
pub fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("--- {} ---\n{}", p.name, p.log_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An `ip route` / `ip rule` line without its `proto X` words (which `ip` prints for some
/// origins and not others) and with single blanks, so minivrrp's and keepalived's lines compare.
pub fn without_proto(line: &str) -> String {
    let mut keep = Vec::new();
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "proto" {
            words.next();
        } else {
            keep.push(w);
        }
    }
    keep.join(" ")
}

/// Polls `f` every 20 ms until it returns true or `timeout` passes; returns the elapsed time
/// when it did, None on timeout.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Which VRRP daemon to run.
#[derive(Clone, Debug)]
pub enum Impl {
    Keepalived,
    Minivrrp(PathBuf),
}

impl Impl {
    pub fn name(&self) -> &'static str {
        match self {
            Impl::Keepalived => "keepalived",
            Impl::Minivrrp(_) => "minivrrp",
        }
    }
}

/// One VRRP instance, independent of the daemon that runs it.
#[derive(Clone, Debug)]
pub struct VrrpSpec {
    pub name: String,
    pub vrid: u8,
    pub priority: u8,
    /// 2 or 3.
    pub version: u8,
    /// Seconds; v3 allows centisecond steps (0.1).
    pub advert_int: f64,
    /// VRRPv2 simple-text password (ignored for v3, which has no authentication).
    pub auth_pass: Option<String>,
    /// `10.0.0.254/24` or `fd00::254/64`; one address family per instance.
    pub vips: Vec<String>,
    /// Unicast peers (empty = multicast).
    pub unicast_peers: Vec<String>,
    pub preempt: bool,
    /// Run on a macvlan carrying the VRRP virtual MAC 00:00:5e:00:01:VRID (keepalived
    /// `use_vmac`, minivrrp `option use_vmac '1'`).
    pub use_vmac: bool,
    /// minivrrp only: `option v3_checksum` (`pseudo` or `rfc9568`); None leaves the default.
    pub v3_checksum: Option<String>,
    /// minivrrp only: further UCI lines for the instance section, e.g. `option garp_delay '0'`.
    pub extra_uci: Vec<String>,
}

impl VrrpSpec {
    /// An IPv4 instance with `vip`, preempting, no auth.
    pub fn new(vrid: u8, priority: u8, version: u8, advert_int: f64, vip: &str) -> VrrpSpec {
        VrrpSpec {
            name: format!("vi{vrid}"),
            vrid,
            priority,
            version,
            advert_int,
            auth_pass: None,
            vips: vec![vip.to_string()],
            unicast_peers: Vec::new(),
            preempt: true,
            use_vmac: false,
            v3_checksum: None,
            extra_uci: Vec::new(),
        }
    }

    /// The same instance for IPv6 (`fd00::254/64`-style VIP), VRRPv3.
    pub fn v6(vrid: u8, priority: u8, advert_int: f64, vip: &str) -> VrrpSpec {
        VrrpSpec::new(vrid, priority, 3, advert_int, vip)
    }

    /// RFC 5798 7.3: the virtual router MAC, 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID
    /// (IPv6).
    pub fn virtual_mac(&self) -> [u8; 6] {
        let v6 = self.vips.first().is_some_and(|v| v.contains(':'));
        [
            0x00,
            0x00,
            0x5e,
            0x00,
            if v6 { 0x02 } else { 0x01 },
            self.vrid,
        ]
    }

    /// RFC 5798 6.1 (and RFC 3768 6.1 for v2, where the interval is whole seconds):
    /// Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
    pub fn skew_time(&self) -> Duration {
        Duration::from_secs_f64((256.0 - self.priority as f64) * self.advert_int / 256.0)
    }

    /// RFC 5798 6.1: Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        Duration::from_secs_f64(3.0 * self.advert_int) + self.skew_time()
    }

    /// The VIPs without prefix length.
    pub fn vip_addrs(&self) -> Vec<String> {
        self.vips
            .iter()
            .map(|v| v.split('/').next().unwrap_or(v).to_string())
            .collect()
    }
}

/// Formats an advert interval without float noise ("1", "0.1").
fn fmt_int(s: f64) -> String {
    let cs = (s * 100.0).round() as u64;
    if cs % 100 == 0 {
        format!("{}", cs / 100)
    } else {
        format!("{}.{:02}", cs / 100, cs % 100)
            .trim_end_matches('0')
            .to_string()
    }
}

/// keepalived.conf for a node running `instances` on `br-lan`.
pub fn keepalived_conf(router_id: &str, instances: &[VrrpSpec]) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "global_defs {{\n    router_id {router_id}\n}}");
    for i in instances {
        let _ = writeln!(c, "vrrp_instance {} {{", i.name);
        // Everyone starts BACKUP: the election, not the config, decides the master.
        let _ = writeln!(c, "    state BACKUP");
        let _ = writeln!(c, "    interface {LAN_IF}");
        let _ = writeln!(c, "    virtual_router_id {}", i.vrid);
        let _ = writeln!(c, "    priority {}", i.priority);
        let _ = writeln!(c, "    version {}", i.version);
        let _ = writeln!(c, "    advert_int {}", fmt_int(i.advert_int));
        if !i.preempt {
            let _ = writeln!(c, "    nopreempt");
        }
        if i.use_vmac {
            let _ = writeln!(c, "    use_vmac");
        }
        if let (Some(p), 2) = (&i.auth_pass, i.version) {
            let _ = writeln!(
                c,
                "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}"
            );
        }
        if !i.unicast_peers.is_empty() {
            let _ = writeln!(c, "    unicast_peer {{");
            for p in &i.unicast_peers {
                let _ = writeln!(c, "        {p}");
            }
            let _ = writeln!(c, "    }}");
        }
        let _ = writeln!(c, "    virtual_ipaddress {{");
        for v in &i.vips {
            let _ = writeln!(c, "        {v} dev {LAN_IF}");
        }
        let _ = writeln!(c, "    }}\n}}");
    }
    c
}

/// /etc/config/minivrrp (UCI) for a node running `instances` on `br-lan`.
pub fn minivrrp_uci(router_id: &str, instances: &[VrrpSpec]) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "config globals 'globals'\n\toption router_id '{router_id}'\n\toption log_level 'info'\n"
    );
    for i in instances {
        let _ = writeln!(c, "config instance '{}'", i.name);
        let _ = writeln!(c, "\toption interface '{LAN_IF}'");
        let _ = writeln!(c, "\toption vrid '{}'", i.vrid);
        let _ = writeln!(c, "\toption priority '{}'", i.priority);
        let _ = writeln!(c, "\toption version '{}'", i.version);
        let _ = writeln!(c, "\toption advert_int '{}'", fmt_int(i.advert_int));
        let _ = writeln!(c, "\toption preempt '{}'", u8::from(i.preempt));
        // Authentication exists only in VRRPv2 (RFC 5798 dropped it); the schema rejects it
        // on a version 3 instance, as keepalived ignores it there.
        if let (Some(p), 2) = (&i.auth_pass, i.version) {
            let _ = writeln!(c, "\toption auth_type 'pass'");
            let _ = writeln!(c, "\toption auth_pass '{p}'");
        }
        for v in &i.vips {
            let _ = writeln!(c, "\tlist vip '{v}'");
        }
        for p in &i.unicast_peers {
            let _ = writeln!(c, "\tlist unicast_peer '{p}'");
        }
        if i.use_vmac {
            let _ = writeln!(c, "\toption use_vmac '1'");
        }
        if let Some(m) = &i.v3_checksum {
            let _ = writeln!(c, "\toption v3_checksum '{m}'");
        }
        for l in &i.extra_uci {
            let _ = writeln!(c, "\t{l}");
        }
        let _ = writeln!(c);
    }
    c
}
