//! The generic-netlink socket on the host itself (no root needed for CTRL_CMD_GETFAMILY).
//! Hosts without ip_vs (like the development machines here) exercise the NotAvailable path
//! that lets the daemon keep running VRRP.

use minivrrp::ipvs::IpvsError;
use minivrrp::sys::genl::{GenlSocket, IpvsClient};

#[test]
fn genl_socket_resolves_the_controller_family_itself() {
    let mut s = match GenlSocket::open() {
        Ok(s) => s,
        // Sandboxes without generic netlink (e.g. qemu-user) cannot run this test.
        Err(IpvsError::NotAvailable) => {
            eprintln!("SKIP: no NETLINK_GENERIC here");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    // The controller registers itself as "nlctrl" with the fixed id GENL_ID_CTRL (0x10).
    assert_eq!(s.resolve_family("nlctrl").unwrap(), Some(0x10));
    // Unknown names are ENOENT (names longer than 15 bytes would be EINVAL by policy).
    assert_eq!(s.resolve_family("nosuchfamily").unwrap(), None);
}

#[test]
fn client_reports_not_available_without_ip_vs() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        // This kernel has IPVS: the family must resolve instead.
        match IpvsClient::open() {
            Ok(c) => assert_ne!(c.family_id(), 0),
            Err(IpvsError::NotAvailable) => {
                panic!("ip_vs is loaded but the family did not resolve")
            }
            Err(e) => eprintln!("SKIP: IPVS present but not usable here: {e}"),
        }
        return;
    }
    match IpvsClient::open() {
        Err(IpvsError::NotAvailable) => {}
        Err(e) => panic!("expected NotAvailable, got {e}"),
        Ok(_) => panic!("the IPVS family resolved without /proc/net/ip_vs"),
    }
}
