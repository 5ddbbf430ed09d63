//! Capacities, checked when the config is loaded so the daemon can size its fixed (heapless)
//! tables once and never fail for lack of room at run time.

/// VRRP instances (`config instance`): every VRID of one address family on one interface.
pub const MAX_INSTANCES: usize = 255;
/// Virtual addresses per instance (`list vip`). One VRRP advert carries them all; 20 IPv6
/// addresses still fit a 1500-byte frame.
pub const MAX_VIPS: usize = 20;
/// Unicast peers per instance (`list unicast_peer`).
pub const MAX_UNICAST_PEERS: usize = 16;
/// Trackers per instance, all `track_*` lists together.
pub const MAX_TRACKERS: usize = 16;
/// `config script` sections.
pub const MAX_SCRIPTS: usize = 64;
/// `config check` sections.
pub const MAX_CHECKS: usize = 1024;
/// `config sync_group` sections.
pub const MAX_SYNC_GROUPS: usize = 16;
/// Members of one sync group (`list member`): the group state machine's fixed table.
pub const MAX_SYNC_MEMBERS: usize = crate::vrrp::sync_group::MAX_MEMBERS;
/// `config virtual_server` sections.
pub const MAX_VIRTUAL_SERVERS: usize = 64;
/// `config real_server` sections, over all virtual servers. Each checked one may hold a
/// socket while its check runs, so the loop's fd table (`daemon::MAX_FDS`) is sized for it.
/// The tables are on the heap and grow with use: the capacity itself costs no memory
/// (10,000 TCP-checked servers at 1 s ran at 16.5 MB RSS, 48.6 % of a core, bench `perf`).
pub const MAX_REAL_SERVERS: usize = 10240;
/// Real servers checked by a `type script` check. Each runs at most one child at a time, so
/// with the track scripts at most `MAX_SCRIPTS` + this many check processes run at once.
pub const MAX_SCRIPT_CHECKED_SERVERS: usize = 64;
