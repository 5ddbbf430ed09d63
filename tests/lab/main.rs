//! The namespace lab tier: real daemons (minivrrp, keepalived, FRR, the OpenWrt userland) on
//! a bridged LAN of network namespaces (`common::lab`), as root. Every lab names its
//! namespaces `mv<pid>-<n><tag>-...` so the tests of this one crate run side by side.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod auth_hmac_interop;
mod auth_hmac_lab;
mod conntrackd_lab;
mod control_lab;
mod daemon_checks_lab;
mod dual_stack_lab;
mod fault_matrix;
mod first_hop_lab;
mod frr_interop;
mod ha_gateway_owrt;
mod import_lab;
mod lab_keepalived;
mod lan_attacks;
mod link_delay_lab;
mod luci_browser;
mod mail_lab;
mod misc_check_lab;
mod openwrt_day_one;
mod pre_master_lab;
mod priority_tag_lab;
mod routes_lab;
mod rt_lab;
mod rules_lab;
mod split_brain;
mod startup_delay_lab;
mod vip_dev_lab;
mod vrrp_interop;
mod vrrp_lab;
