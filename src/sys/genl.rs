//! A raw NETLINK_GENERIC socket and the IPVS client on top of it. Encoding and decoding are
//! the pure `crate::ipvs` code; this file only moves bytes and matches replies to requests.
//!
//! The socket is blocking with a receive timeout: generic netlink handlers run inside
//! `sendmsg`, so the answer is already queued when `send` returns, and a dump is produced as
//! it is read. The timeout only guards against a kernel that never answers.

use nix::errno::Errno;
use std::os::fd::{AsFd, OwnedFd};

use super::nlsock::{self, Step};

use crate::ipvs::consts::{IPVS_CMD_FLUSH, IPVS_GENL_NAME};
use crate::ipvs::model::{Dest, DestConns, Service, ServiceKey};
use crate::ipvs::msg::{self, Op, Reply};
use crate::ipvs::nl::{self, Messages, NlError, NlMsg};
use crate::ipvs::reconcile::{self, Change, Desired, KernelService, VirtualServer};
use crate::ipvs::IpvsError;

/// Big enough for any single datagram the kernel sends on a genl dump (it sizes dump skbs at
/// most 32 KiB); a truncated datagram is reported, never parsed.
const RX_BUF: usize = 32 * 1024;
/// Our largest request is a destination command, 200 bytes.
const TX_BUF: usize = 512;

/// A bound NETLINK_GENERIC socket with request/reply matching by sequence number.
pub struct GenlSocket {
    fd: OwnedFd,
    seq: u32,
    rx: Vec<u8>,
}

impl GenlSocket {
    pub fn open() -> Result<Self, IpvsError> {
        let fd = nlsock::open(libc::NETLINK_GENERIC, 0, false, Some(2)).map_err(|e| {
            let errno = e.errno as i32;
            let what = match e.step {
                // No generic netlink at all (e.g. qemu-user): same outcome as no ip_vs.
                Step::Socket
                    if e.errno == Errno::EPROTONOSUPPORT || e.errno == Errno::EAFNOSUPPORT =>
                {
                    return IpvsError::NotAvailable;
                }
                Step::Socket => "socket(NETLINK_GENERIC)",
                Step::Bind => "bind(NETLINK_GENERIC)",
                Step::RcvTimeout => "setsockopt(SO_RCVTIMEO)",
            };
            IpvsError::Io { what, errno }
        })?;
        Ok(GenlSocket {
            fd,
            seq: 1,
            rx: vec![0; RX_BUF],
        })
    }

    /// The next request sequence number (never 0, which the kernel uses for notifications).
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send(&self, msg: &[u8]) -> Result<(), IpvsError> {
        nlsock::send_to_kernel(self.fd.as_fd(), msg).map_err(|e| IpvsError::Io {
            what: "sendto(netlink)",
            errno: e as i32,
        })
    }

    /// Receives one datagram from the kernel into the rx buffer; returns its length.
    fn recv(&mut self) -> Result<usize, IpvsError> {
        nlsock::recv_from_kernel(self.fd.as_fd(), &mut self.rx, 0).map_err(|e| match e {
            Errno::EAGAIN => IpvsError::Protocol("no reply from the kernel"),
            Errno::EMSGSIZE => IpvsError::Protocol("netlink reply larger than the buffer"),
            e => IpvsError::Io {
                what: "recvfrom(netlink)",
                errno: e as i32,
            },
        })
    }

    /// Sends `req` (sequence `seq`) and reads until its ACK, error or end of dump, handing
    /// each data message to `on_data`. Kernel errors come back as `Err(Ok(errno))`, local
    /// failures as `Err(Err(IpvsError))`. Messages with another sequence number (late answers
    /// to an earlier request that failed half-way) are skipped.
    pub fn request(
        &mut self,
        req: &[u8],
        seq: u32,
        on_data: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), IpvsError>,
    ) -> Result<(), Result<i32, IpvsError>> {
        self.send(req).map_err(Err)?;
        loop {
            let n = self.recv().map_err(Err)?;
            let mut finished = false;
            for m in Messages::new(&self.rx[..n]) {
                let m = m.map_err(|e| Err(IpvsError::Decode(e)))?;
                if m.seq != seq {
                    continue;
                }
                match msg::classify(&m).map_err(|e| Err(IpvsError::Decode(e)))? {
                    Reply::Ack | Reply::Done => finished = true,
                    Reply::Error(errno) => return Err(Ok(errno)),
                    Reply::Data(d) => on_data(&d).map_err(Err)?,
                }
            }
            if finished {
                return Ok(());
            }
        }
    }

    /// Resolves a generic netlink family name to its id (CTRL_CMD_GETFAMILY).
    pub fn resolve_family(&mut self, name: &str) -> Result<Option<u16>, IpvsError> {
        let mut tx = [0u8; 64];
        let seq = self.next_seq();
        let len = nl::encode_get_family(&mut tx, seq, name)?;
        let mut id = None;
        let mut on_data = |m: &NlMsg<'_>| -> Result<(), IpvsError> {
            id = Some(nl::decode_family_id(m)?);
            Ok(())
        };
        match self.request(&tx[..len], seq, &mut on_data) {
            Ok(()) => {}
            Err(Ok(libc::ENOENT)) => return Ok(None),
            Err(Ok(errno)) => {
                return Err(IpvsError::Request {
                    what: "resolve generic netlink family",
                    errno,
                })
            }
            Err(Err(e)) => return Err(e),
        }
        match id {
            Some(id) => Ok(Some(id)),
            None => Err(IpvsError::Decode(NlError::MissingAttr {
                kind: crate::ipvs::consts::CTRL_ATTR_FAMILY_ID,
            })),
        }
    }
}

/// The kernel's IPVS table over generic netlink.
pub struct IpvsClient {
    sock: GenlSocket,
    family: u16,
    tx: [u8; TX_BUF],
}

impl IpvsClient {
    /// Opens the socket and resolves the "IPVS" family. Without ip_vs in the kernel this is
    /// `Err(IpvsError::NotAvailable)`: the daemon logs it and keeps running VRRP.
    pub fn open() -> Result<Self, IpvsError> {
        let mut sock = GenlSocket::open()?;
        let family = sock
            .resolve_family(IPVS_GENL_NAME)?
            .ok_or(IpvsError::NotAvailable)?;
        Ok(IpvsClient {
            sock,
            family,
            tx: [0; TX_BUF],
        })
    }

    /// The IPVS family id the kernel assigned (dynamic, e.g. 32 on Linux 6.1).
    pub fn family_id(&self) -> u16 {
        self.family
    }

    /// Dumps all virtual services. Entries this code cannot decode (e.g. a protocol it does
    /// not know) are skipped with a warning: they cannot be ours.
    pub fn services(&mut self) -> Result<Vec<Service>, IpvsError> {
        let seq = self.sock.next_seq();
        let len = msg::encode_get_services(&mut self.tx, self.family, seq)?;
        let mut out = Vec::new();
        let mut on_data = |m: &NlMsg<'_>| -> Result<(), IpvsError> {
            match msg::decode_service(m) {
                Ok(s) => out.push(s),
                Err(e) => log::warn!("ipvs: skipping a service in the dump: {e}"),
            }
            Ok(())
        };
        self.sock
            .request(&self.tx[..len], seq, &mut on_data)
            .map_err(|e| dump_error(e, "dump IPVS services"))?;
        Ok(out)
    }

    /// Dumps the destinations of one service, with their connection counters.
    pub fn dests_with_conns(
        &mut self,
        key: &ServiceKey,
    ) -> Result<Vec<(Dest, DestConns)>, IpvsError> {
        let seq = self.sock.next_seq();
        let len = msg::encode_get_dests(&mut self.tx, self.family, seq, key)?;
        let family = key.family();
        let mut out = Vec::new();
        let mut on_data = |m: &NlMsg<'_>| -> Result<(), IpvsError> {
            match msg::decode_dest(m, family) {
                Ok(d) => out.push(d),
                Err(e) => log::warn!("ipvs: skipping a real server of {key} in the dump: {e}"),
            }
            Ok(())
        };
        match self.sock.request(&self.tx[..len], seq, &mut on_data) {
            Ok(()) => Ok(out),
            Err(Ok(errno)) => Err(IpvsError::Kernel {
                cmd: crate::ipvs::consts::IPVS_CMD_GET_DEST,
                service: *key,
                dest: None,
                errno,
            }),
            Err(Err(e)) => Err(e),
        }
    }

    /// Dumps the destinations of one service.
    pub fn dests(&mut self, key: &ServiceKey) -> Result<Vec<Dest>, IpvsError> {
        Ok(self
            .dests_with_conns(key)?
            .into_iter()
            .map(|(d, _)| d)
            .collect())
    }

    /// The whole table: every service with its destinations (input to `ipvs::reconcile`).
    pub fn table(&mut self) -> Result<Vec<KernelService>, IpvsError> {
        let services = self.services()?;
        let mut out = Vec::with_capacity(services.len());
        for service in services {
            let dests = self.dests(&service.key)?;
            out.push(KernelService { service, dests });
        }
        Ok(out)
    }

    /// Applies one change; a kernel refusal names the virtual server and real server.
    pub fn apply_one(&mut self, op: &Op) -> Result<(), IpvsError> {
        let seq = self.sock.next_seq();
        let len = msg::encode_op(&mut self.tx, self.family, seq, op)?;
        let mut ignore = |_: &NlMsg<'_>| -> Result<(), IpvsError> { Ok(()) };
        match self.sock.request(&self.tx[..len], seq, &mut ignore) {
            Ok(()) => Ok(()),
            Err(Ok(errno)) => Err(op.error(errno)),
            Err(Err(e)) => Err(e),
        }
    }

    /// Applies changes in order and stops at the first failure (later changes usually depend
    /// on it, e.g. real servers of a service that could not be added). The next reconcile
    /// dumps the table again and retries what is still missing.
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), IpvsError> {
        for op in ops {
            self.apply_one(op)?;
        }
        Ok(())
    }

    /// Applies reconcile's changes, logging each with its reason before it is made (the log
    /// line names the virtual and real server, e.g. "delete real server 10.0.1.1:80 from
    /// TCP 10.0.0.1:80: real server is down"). Stops at the first failure, like [`apply`](Self::apply).
    pub fn apply_changes(&mut self, changes: &[Change]) -> Result<(), IpvsError> {
        for c in changes {
            log::info!("ipvs: {c}");
            self.apply_one(&c.op)?;
        }
        Ok(())
    }

    /// One reconcile round: dump the table, compute the changes towards `desired`, apply and
    /// log them. Returns the changes made. Services not in `desired` are left alone.
    pub fn sync(&mut self, desired: &Desired) -> Result<Vec<Change>, IpvsError> {
        let table = self.table()?;
        let changes = reconcile::reconcile(desired, &table);
        self.apply_changes(&changes)?;
        Ok(changes)
    }

    /// Shutdown: delete the services of `servers` that have `cleanup` set and exist now.
    pub fn shutdown(&mut self, servers: &[VirtualServer]) -> Result<Vec<Change>, IpvsError> {
        let table = self.table()?;
        let changes = reconcile::cleanup(servers, &table);
        self.apply_changes(&changes)?;
        Ok(changes)
    }

    /// Deletes every service (ipvsadm -C). For tests; the daemon never flushes, since it must
    /// not touch services it does not own.
    pub fn flush(&mut self) -> Result<(), IpvsError> {
        let seq = self.sock.next_seq();
        let len = msg::encode_simple(&mut self.tx, self.family, seq, IPVS_CMD_FLUSH)?;
        let mut ignore = |_: &NlMsg<'_>| -> Result<(), IpvsError> { Ok(()) };
        self.sock
            .request(&self.tx[..len], seq, &mut ignore)
            .map_err(|e| dump_error(e, "flush IPVS table"))
    }
}

fn dump_error(e: Result<i32, IpvsError>, what: &'static str) -> IpvsError {
    match e {
        Ok(errno) => IpvsError::Request { what, errno },
        Err(e) => e,
    }
}
