//! IPVS generic-netlink messages: the requests we send and the replies/dumps we read.
//! Attribute order and defaults follow what ipvsadm sends (vectors V6-V35), so the byte-level
//! tests can compare our requests with ipvsadm's.

use super::consts::*;
use super::error::IpvsError;
use super::model::*;
use super::nl::{Attrs, MsgWriter, NlError, NlMsg};

/// One change to the kernel table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    AddService(Service),
    EditService(Service),
    DelService(ServiceKey),
    AddDest(ServiceKey, Dest),
    EditDest(ServiceKey, Dest),
    DelDest(ServiceKey, Dest),
}

impl Op {
    pub fn cmd(&self) -> u8 {
        match self {
            Op::AddService(_) => IPVS_CMD_NEW_SERVICE,
            Op::EditService(_) => IPVS_CMD_SET_SERVICE,
            Op::DelService(_) => IPVS_CMD_DEL_SERVICE,
            Op::AddDest(..) => IPVS_CMD_NEW_DEST,
            Op::EditDest(..) => IPVS_CMD_SET_DEST,
            Op::DelDest(..) => IPVS_CMD_DEL_DEST,
        }
    }

    pub fn key(&self) -> ServiceKey {
        match self {
            Op::AddService(s) | Op::EditService(s) => s.key,
            Op::DelService(k) => *k,
            Op::AddDest(k, _) | Op::EditDest(k, _) | Op::DelDest(k, _) => *k,
        }
    }

    pub fn dest(&self) -> Option<&Dest> {
        match self {
            Op::AddDest(_, d) | Op::EditDest(_, d) | Op::DelDest(_, d) => Some(d),
            _ => None,
        }
    }

    /// Turns a kernel errno for this op into an error naming the virtual server.
    pub fn error(&self, errno: i32) -> IpvsError {
        IpvsError::Kernel {
            cmd: self.cmd(),
            service: self.key(),
            dest: self.dest().map(|d| d.sockaddr()),
            errno,
        }
    }
}

impl core::fmt::Display for Op {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Op::AddService(s) => write!(
                f,
                "add virtual server {} scheduler {}{}",
                s.key,
                s.scheduler.name(),
                Persist(s.persistence)
            ),
            Op::EditService(s) => write!(
                f,
                "edit virtual server {} scheduler {}{}",
                s.key,
                s.scheduler.name(),
                Persist(s.persistence)
            ),
            Op::DelService(k) => write!(f, "delete virtual server {k}"),
            Op::AddDest(k, d) => write!(
                f,
                "add real server {} to {k} weight {} {:?}",
                d.sockaddr(),
                d.weight,
                d.forwarding
            ),
            Op::EditDest(k, d) => write!(
                f,
                "edit real server {} of {k} weight {} {:?}",
                d.sockaddr(),
                d.weight,
                d.forwarding
            ),
            Op::DelDest(k, d) => write!(f, "delete real server {} from {k}", d.sockaddr()),
        }
    }
}

struct Persist(Option<Persistence>);

impl core::fmt::Display for Persist {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(p) => write!(f, " persistent {}s /{}", p.timeout, p.prefix),
            None => Ok(()),
        }
    }
}

/// Which fields of the service nest to write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SvcForm {
    /// Lookup key only (GET_DEST, vector V14/V35).
    Key,
    /// Key plus ipvsadm's empty defaults: sched "", flags 0, timeout 0, full netmask
    /// (DEL_SERVICE and the dest commands, V8/V16/V20).
    Ident,
    /// Everything (NEW/SET_SERVICE, V6/V23/V24/V26/V28).
    Full,
}

fn put_service(w: &mut MsgWriter<'_>, svc: &Service, form: SvcForm) {
    let family = svc.key.family();
    w.nest_start(IPVS_CMD_ATTR_SERVICE);
    w.attr_u16(IPVS_SVC_ATTR_AF, af(family));
    match svc.key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            w.attr_u16(IPVS_SVC_ATTR_PROTOCOL, protocol.number());
            w.attr(IPVS_SVC_ATTR_ADDR, &addr_to_nf(&addr));
            w.attr_be16(IPVS_SVC_ATTR_PORT, port);
        }
        ServiceKey::Fwmark { mark, .. } => w.attr_u32(IPVS_SVC_ATTR_FWMARK, mark),
    }
    if form != SvcForm::Key {
        let (sched, persist) = match form {
            SvcForm::Full => (svc.scheduler.name(), svc.persistence),
            _ => ("", None),
        };
        w.attr_str(IPVS_SVC_ATTR_SCHED_NAME, sched);
        let flags = if persist.is_some() {
            IP_VS_SVC_F_PERSISTENT
        } else {
            0
        };
        // struct ip_vs_flags {flags, mask}: mask ~0 so a SET also clears persistence.
        let mut fl = [0u8; 8];
        fl[..4].copy_from_slice(&flags.to_ne_bytes());
        fl[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        w.attr(IPVS_SVC_ATTR_FLAGS, &fl);
        w.attr_u32(IPVS_SVC_ATTR_TIMEOUT, persist.map_or(0, |p| p.timeout));
        let prefix = persist.map_or(family.max_prefix(), |p| p.prefix);
        // The kernel reads NETMASK as a network-order mask for AF_INET but as a prefix
        // length (host order) for AF_INET6 (vector V28).
        match family {
            Family::Ipv4 => w.attr(IPVS_SVC_ATTR_NETMASK, &prefix_to_mask_v4(prefix)),
            Family::Ipv6 => w.attr_u32(IPVS_SVC_ATTR_NETMASK, prefix.min(128) as u32),
        }
    }
    w.nest_end();
}

fn put_dest(w: &mut MsgWriter<'_>, d: &Dest) {
    w.nest_start(IPVS_CMD_ATTR_DEST);
    w.attr_u16(IPVS_DEST_ATTR_ADDR_FAMILY, af(Family::of(&d.addr)));
    w.attr(IPVS_DEST_ATTR_ADDR, &addr_to_nf(&d.addr));
    w.attr_be16(IPVS_DEST_ATTR_PORT, d.port);
    w.attr_u32(IPVS_DEST_ATTR_FWD_METHOD, d.forwarding.code());
    w.attr_u32(IPVS_DEST_ATTR_WEIGHT, d.weight);
    // Tunnel type ipip, no port/flags: the only tunnel kind we configure.
    w.attr_u8(IPVS_DEST_ATTR_TUN_TYPE, 0);
    w.attr_be16(IPVS_DEST_ATTR_TUN_PORT, 0);
    w.attr_u16(IPVS_DEST_ATTR_TUN_FLAGS, 0);
    w.attr_u32(IPVS_DEST_ATTR_U_THRESH, d.u_thresh);
    w.attr_u32(IPVS_DEST_ATTR_L_THRESH, d.l_thresh);
    w.nest_end();
}

const REQ_ACK: u16 = NLM_F_REQUEST | NLM_F_ACK;
const REQ_DUMP: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP;

/// Encodes one change as an IPVS request for `family` (the id resolved at run time).
pub fn encode_op(buf: &mut [u8], family: u16, seq: u32, op: &Op) -> Result<usize, NlError> {
    let mut w = MsgWriter::genl(buf, family, REQ_ACK, seq, op.cmd(), IPVS_GENL_VERSION);
    match op {
        Op::AddService(s) | Op::EditService(s) => put_service(&mut w, s, SvcForm::Full),
        Op::DelService(k) => put_service(&mut w, &ident(*k), SvcForm::Ident),
        Op::AddDest(k, d) | Op::EditDest(k, d) | Op::DelDest(k, d) => {
            put_service(&mut w, &ident(*k), SvcForm::Ident);
            put_dest(&mut w, d);
        }
    }
    w.finish()
}

fn ident(key: ServiceKey) -> Service {
    Service::new(key, Scheduler::Unknown)
}

/// IPVS_CMD_GET_SERVICE dump request (V11).
pub fn encode_get_services(buf: &mut [u8], family: u16, seq: u32) -> Result<usize, NlError> {
    MsgWriter::genl(
        buf,
        family,
        REQ_DUMP,
        seq,
        IPVS_CMD_GET_SERVICE,
        IPVS_GENL_VERSION,
    )
    .finish()
}

/// IPVS_CMD_GET_DEST dump request for one service (V14, V31, V33, V35).
pub fn encode_get_dests(
    buf: &mut [u8],
    family: u16,
    seq: u32,
    key: &ServiceKey,
) -> Result<usize, NlError> {
    let mut w = MsgWriter::genl(
        buf,
        family,
        REQ_DUMP,
        seq,
        IPVS_CMD_GET_DEST,
        IPVS_GENL_VERSION,
    );
    put_service(&mut w, &ident(*key), SvcForm::Key);
    w.finish()
}

/// A request with no attributes (IPVS_CMD_FLUSH V21, IPVS_CMD_GET_INFO V4).
pub fn encode_simple(buf: &mut [u8], family: u16, seq: u32, cmd: u8) -> Result<usize, NlError> {
    MsgWriter::genl(buf, family, REQ_ACK, seq, cmd, IPVS_GENL_VERSION).finish()
}

/// What one received message means for the request it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// NLMSG_ERROR with error 0.
    Ack,
    /// NLMSG_ERROR with a negative errno (returned here positive), or a failed dump's DONE.
    Error(i32),
    /// NLMSG_DONE: the end of a dump.
    Done,
    /// A data message (dump part or GETFAMILY answer).
    Data(NlMsg<'a>),
}

/// Classifies one received message.
pub fn classify<'a>(msg: &NlMsg<'a>) -> Result<Reply<'a>, NlError> {
    match msg.nl_type {
        NLMSG_ERROR => {
            let (code, _) = msg.error()?;
            Ok(if code == 0 {
                Reply::Ack
            } else {
                Reply::Error(code.saturating_neg())
            })
        }
        NLMSG_DONE => {
            // The dump status int; a negative value is an error raised while dumping.
            let status = msg
                .payload
                .get(..4)
                .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            Ok(if status < 0 {
                Reply::Error(status.saturating_neg())
            } else {
                Reply::Done
            })
        }
        NLMSG_OVERRUN => Ok(Reply::Error(libc::ENOBUFS)),
        _ => Ok(Reply::Data(*msg)),
    }
}

fn nested_attrs<'a>(msg: &NlMsg<'a>, cmd_want: u8, kind: u16) -> Result<Attrs<'a>, NlError> {
    let (cmd, attrs) = msg.genl()?;
    if cmd != cmd_want {
        return Err(NlError::BadValue { kind: 0 });
    }
    Ok(attrs.get(kind)?.nested())
}

/// The kernel's `AF_*` number of a family (`IPVS_SVC_ATTR_AF`, `IPVS_DEST_ATTR_ADDR_FAMILY`).
pub fn af(family: Family) -> u16 {
    match family {
        Family::Ipv4 => AF_INET,
        Family::Ipv6 => AF_INET6,
    }
}

fn family_from_af(af: u16, kind: u16) -> Result<Family, NlError> {
    match af {
        AF_INET => Ok(Family::Ipv4),
        AF_INET6 => Ok(Family::Ipv6),
        _ => Err(NlError::BadValue { kind }),
    }
}

/// Decodes one IPVS_CMD_NEW_SERVICE dump message (V12, V30).
pub fn decode_service(msg: &NlMsg<'_>) -> Result<Service, NlError> {
    let a = nested_attrs(msg, IPVS_CMD_NEW_SERVICE, IPVS_CMD_ATTR_SERVICE)?;
    let family = family_from_af(a.get(IPVS_SVC_ATTR_AF)?.u16()?, IPVS_SVC_ATTR_AF)?;
    let key = match a.find(IPVS_SVC_ATTR_FWMARK)? {
        // The kernel sends FWMARK 0 for address services in some versions; a nonzero mark
        // is what makes a firewall-mark service.
        Some(m) if m.u32()? != 0 => ServiceKey::Fwmark {
            family,
            mark: m.u32()?,
        },
        _ => {
            let proto = a.get(IPVS_SVC_ATTR_PROTOCOL)?.u16()?;
            let protocol = Protocol::from_number(proto).ok_or(NlError::BadValue {
                kind: IPVS_SVC_ATTR_PROTOCOL,
            })?;
            let addr = addr_from_nf(family, a.get(IPVS_SVC_ATTR_ADDR)?.value).ok_or(
                NlError::BadAttrSize {
                    kind: IPVS_SVC_ATTR_ADDR,
                },
            )?;
            let port = a.get(IPVS_SVC_ATTR_PORT)?.be16()?;
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            }
        }
    };
    let scheduler = match a.find(IPVS_SVC_ATTR_SCHED_NAME)? {
        Some(s) => Scheduler::from_name(s.str()?).unwrap_or(Scheduler::Unknown),
        None => Scheduler::Unknown,
    };
    let flags = match a.find(IPVS_SVC_ATTR_FLAGS)? {
        Some(f) => match f.value.get(..4) {
            Some(b) => u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            None => {
                return Err(NlError::BadAttrSize {
                    kind: IPVS_SVC_ATTR_FLAGS,
                })
            }
        },
        None => 0,
    };
    let persistence = if flags & IP_VS_SVC_F_PERSISTENT != 0 {
        let timeout = match a.find(IPVS_SVC_ATTR_TIMEOUT)? {
            Some(t) => t.u32()?,
            None => 0,
        };
        let prefix = match a.find(IPVS_SVC_ATTR_NETMASK)? {
            Some(m) => match family {
                Family::Ipv4 => {
                    let b: [u8; 4] = m.value.try_into().map_err(|_| NlError::BadAttrSize {
                        kind: IPVS_SVC_ATTR_NETMASK,
                    })?;
                    mask_v4_to_prefix(b)
                }
                Family::Ipv6 => m.u32()?.min(128) as u8,
            },
            None => family.max_prefix(),
        };
        Some(Persistence { timeout, prefix })
    } else {
        None
    };
    Ok(Service {
        key,
        scheduler,
        persistence,
    })
}

/// Decodes one IPVS_CMD_NEW_DEST dump message (V15, V32, V34). `service_family` is used when
/// the kernel predates IPVS_DEST_ATTR_ADDR_FAMILY (Linux < 4.16).
pub fn decode_dest(msg: &NlMsg<'_>, service_family: Family) -> Result<(Dest, DestConns), NlError> {
    let a = nested_attrs(msg, IPVS_CMD_NEW_DEST, IPVS_CMD_ATTR_DEST)?;
    let family = match a.find(IPVS_DEST_ATTR_ADDR_FAMILY)? {
        Some(f) => family_from_af(f.u16()?, IPVS_DEST_ATTR_ADDR_FAMILY)?,
        None => service_family,
    };
    let addr =
        addr_from_nf(family, a.get(IPVS_DEST_ATTR_ADDR)?.value).ok_or(NlError::BadAttrSize {
            kind: IPVS_DEST_ATTR_ADDR,
        })?;
    let port = a.get(IPVS_DEST_ATTR_PORT)?.be16()?;
    let fwd = a.get(IPVS_DEST_ATTR_FWD_METHOD)?.u32()?;
    let forwarding = Forwarding::from_code(fwd).ok_or(NlError::BadValue {
        kind: IPVS_DEST_ATTR_FWD_METHOD,
    })?;
    let weight = a.get(IPVS_DEST_ATTR_WEIGHT)?.u32()?;
    let opt = |kind| -> Result<u32, NlError> {
        match a.find(kind)? {
            Some(v) => v.u32(),
            None => Ok(0),
        }
    };
    let dest = Dest {
        addr,
        port,
        weight,
        forwarding,
        u_thresh: opt(IPVS_DEST_ATTR_U_THRESH)?,
        l_thresh: opt(IPVS_DEST_ATTR_L_THRESH)?,
    };
    let conns = DestConns {
        active: opt(IPVS_DEST_ATTR_ACTIVE_CONNS)?,
        inactive: opt(IPVS_DEST_ATTR_INACT_CONNS)?,
        persistent: opt(IPVS_DEST_ATTR_PERSIST_CONNS)?,
    };
    Ok((dest, conns))
}
