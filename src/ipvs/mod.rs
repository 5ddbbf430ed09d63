//! IPVS over generic netlink: pure message encoding/decoding and reconciliation (issue 6).
