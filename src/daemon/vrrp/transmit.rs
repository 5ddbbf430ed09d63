//! Transmit: adverts (RFC 5798 5 / RFC 3768 5) to the group or to each unicast peer, and
//! the gratuitous ARPs / unsolicited NAs of a new master (RFC 5798 6.4.2).

use core::net::IpAddr;

use log::{error, warn};
use smoltcp::wire::EthernetAddress;

use super::{Inst, Vrrp};
use crate::daemon::kernel::Southbound;
use crate::vrrp::announce::{emit_garp, emit_unsolicited_na};
use crate::vrrp::auth::{self, Binding, TRAILER_LEN};
use crate::vrrp::frame::{
    append_trailer_frame, append_trailer_vrrp, emit_advert_v4, emit_advert_v6, emit_vrrp,
    virtual_mac,
};
use crate::vrrp::wire::{self, ChecksumMode, VrrpRepr};

impl<S: Southbound> Vrrp<S> {
    /// The MAC the VIPs answer with: the virtual MAC (RFC 5798 7.3) with `use_vmac`, else
    /// the interface's own (keepalived's default).
    pub(super) fn src_mac(&self, i: usize) -> EthernetAddress {
        let inst = &self.insts[i];
        if inst.cfg.use_vmac {
            virtual_mac(inst.cfg.vrid, inst.cfg.family)
        } else {
            EthernetAddress(self.ifaces[inst.iface].mac)
        }
    }

    /// RFC 5798 6.4.3 / RFC 3768 6.4.3: send one advertisement, multicast or to each
    /// unicast peer.
    pub(super) fn send_advert(&mut self, i: usize, priority: u8) {
        let Some(src) = self.source_addr(i) else {
            return;
        };
        let src_mac = self.src_mac(i);
        let inst = &self.insts[i];
        let repr = VrrpRepr {
            priority,
            ..inst.own.clone()
        };
        let mode = match (repr.version, src) {
            (wire::Version::V2, _) => ChecksumMode::VrrpOnly,
            (_, IpAddr::V6(_)) => ChecksumMode::PseudoHeader,
            _ => inst.checksum,
        };
        let trailer = self.sign(i, &repr, src);
        let inst = &self.insts[i];
        let name = &inst.cfg.name;
        if let Some(sock) = &inst.unicast {
            let ifindex = self.ifaces[inst.iface].ifindex.unwrap_or(0);
            for peer in &inst.cfg.unicast_peers {
                let built =
                    emit_vrrp(&mut self.tx, &repr, &src, peer, mode).and_then(|n| match &trailer {
                        Some(t) => append_trailer_vrrp(&mut self.tx, n, t, &src, peer),
                        None => Ok(n),
                    });
                match built {
                    Ok(n) => match self.south.send_unicast(sock, &self.tx[..n], *peer, ifindex) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            warn!(target: name, "advert to {peer} lost: socket buffer full")
                        }
                        Err(e) => warn!(target: name, "advert to {peer}: {e}"),
                    },
                    Err(e) => error!(target: name, "advert: {e:?}"),
                }
            }
            return;
        }
        let ifc = &mut self.ifaces[inst.iface];
        let Some(listener) = &ifc.listener else {
            return;
        };
        let built = match src {
            IpAddr::V4(s) => {
                ifc.ip_ident = ifc.ip_ident.wrapping_add(1);
                emit_advert_v4(&mut self.tx, &repr, src_mac, s, ifc.ip_ident, mode)
            }
            IpAddr::V6(s) => emit_advert_v6(&mut self.tx, &repr, src_mac, s, 0),
        };
        let built = built.and_then(|n| match &trailer {
            Some(t) => append_trailer_frame(&mut self.tx, n, t),
            None => Ok(n),
        });
        match built {
            Ok(n) => match self.south.send_frame(listener, &self.tx[..n]) {
                Ok(Some(_)) => {}
                Ok(None) => warn!(target: name, "advert lost: socket buffer full"),
                Err(e) => warn!(target: name, "advert on {}: {e}", ifc.name),
            },
            Err(e) => error!(target: name, "advert: {e:?}"),
        }
    }

    /// The `auth_hmac` trailer of the advert `repr` from `src`, when instance `i` signs:
    /// one per advert, the same for every unicast peer, since the MAC leaves the IP header
    /// and the checksum out (`vrrp::auth`).
    fn sign(&mut self, i: usize, repr: &VrrpRepr, src: IpAddr) -> Option<[u8; TRAILER_LEN]> {
        let Inst {
            cfg: inst, auth, ..
        } = &mut self.insts[i];
        let (cfg, state) = (inst.auth_hmac.as_ref()?, auth.as_mut()?);
        if !cfg.mode.signs() {
            return None;
        }
        let n = emit_vrrp(&mut self.tx, repr, &src, &src, ChecksumMode::VrrpOnly).ok()?;
        let at = Binding {
            version: repr.version,
            vrid: repr.vrid,
            src,
        };
        let mut out = [0u8; TRAILER_LEN];
        let wall = crate::sys::clock::wall();
        match auth::sign(cfg, &mut state.send, wall, &at, &self.tx[..n], &mut out) {
            Some(()) => Some(out),
            None => {
                error!(target: &inst.name, "auth_hmac: active key missing; advert not signed");
                None
            }
        }
    }

    /// RFC 5798 6.4.2: gratuitous ARP (IPv4) or unsolicited NA (IPv6) for every VIP, from
    /// the MAC the VIPs answer with; a VIP with its own `dev` is announced there, from that
    /// interface's MAC.
    ///
    /// The NAs' Router flag is the forwarding sysctl of the interface the VIP lives on
    /// (the macvlan with `use_vmac`), read now: the kernel answers solicitations for the
    /// VIP with that flag, and ours must agree (`emit_unsolicited_na`).
    pub(super) fn announce(&mut self, i: usize, count: u8) {
        let src_mac = self.src_mac(i);
        let inst = &self.insts[i];
        let home = if inst.cfg.use_vmac {
            &inst.cfg.vmac_name
        } else {
            &inst.cfg.interface
        };
        let mut router = None;
        for vip in &inst.cfg.vips {
            let (on, mac) = match &vip.dev {
                Some(dev) => match self.south.link(dev) {
                    Ok(Some(l)) => (Some(l.ifindex), EthernetAddress(l.mac)),
                    _ => continue,
                },
                None => (None, src_mac),
            };
            let built = match vip.addr {
                IpAddr::V4(a) => emit_garp(&mut self.tx, mac, a),
                IpAddr::V6(a) => {
                    let forwarding = match &vip.dev {
                        Some(dev) => self.south.ipv6_forwarding(dev),
                        None => *router.get_or_insert_with(|| self.south.ipv6_forwarding(home)),
                    };
                    emit_unsolicited_na(&mut self.tx, mac, a, forwarding)
                }
            };
            let Ok(n) = built else {
                continue;
            };
            let frame = &self.tx[..n];
            if let Some(ifindex) = on {
                if let Err(e) = self.south.send_frame_on(ifindex, frame, count) {
                    warn!(target: &inst.cfg.name, "announce {}: {e}", vip.addr);
                }
                continue;
            }
            let Some(listener) = &self.ifaces[inst.iface].listener else {
                return;
            };
            for _ in 0..count {
                if let Err(e) = self.south.send_frame(listener, frame) {
                    warn!(target: &inst.cfg.name, "announce {}: {e}", vip.addr);
                    break;
                }
            }
        }
    }
}
