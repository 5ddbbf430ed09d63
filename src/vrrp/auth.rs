//! Authenticated adverts: the HMAC trailer of `draft-cassen-vrrp-auth-hmac`, as keepalived 2.4
//! sends it with `auth_hmac`, for VRRPv2 and v3, IPv4 and IPv6, multicast and unicast.
//!
//! The trailer follows the VRRP message (after the v2 authentication data); a receiver finds
//! it from the length alone, since a message is exactly what its count says:
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Ext Type    |    Key ID     |           Reserved (0)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |              Seconds (UTC, since the Unix epoch)              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Fraction (1/65536 s)      |            Counter            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +         HMAC-SHA256 truncated to 128 bits (16 bytes)          +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Seconds, fraction and counter read together are one 64-bit sequence number, compared with
//! serial-number arithmetic (RFC 1982). The MAC covers a 20-byte pseudo-header (family 4/6,
//! version, VRID, zero, the IP source zero-padded to 16 bytes), then the message with its
//! checksum field read as zero, then the trailer with its MAC field read as zero. The IP
//! header stays out, so TTL and destination may differ between the copies of one advert
//! (one signature is sent to every unicast peer). The VRRP checksum is computed as without
//! the trailer over IPv4 (the message only) and over the whole payload, trailer included,
//! over IPv6 (the kernel's transport checksum).
//!
//! Everything here is pure: the wall clock comes in as a `Duration` since the Unix epoch,
//! nothing allocates, and a received trailer is verified before its advert reaches the state
//! machine.

use core::net::IpAddr;
use core::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::wire::Version;
use crate::base::Family;

/// Bytes the trailer adds to every advert.
pub const TRAILER_LEN: usize = 28;
/// Ext Type of HMAC-SHA256 truncated to 128 bits, the only scheme defined.
pub const EXT_HMAC_SHA256_128: u8 = 1;
/// Bytes of the truncated MAC at the end of the trailer.
pub const MAC_LEN: usize = 16;
/// Key length bounds: the 32-byte floor keeps a 128-bit margin against a quantum search.
pub const KEY_MIN: usize = 32;
pub const KEY_MAX: usize = 64;
/// `time_window` bounds (seconds), and the floor of the derived default.
pub const WINDOW_MIN: u16 = 1;
pub const WINDOW_MAX: u16 = 300;
pub const WINDOW_FLOOR: u16 = 5;
/// Senders whose last sequence a receiver remembers (least recently used one evicted). Only
/// adverts whose MAC verified take a slot, so forged sources cannot churn the table; more
/// than one legitimate sender per VRID exists only during an election.
pub const REPLAY_SLOTS: usize = 8;
/// The pseudo-header bound into the MAC.
const PSEUDO_LEN: usize = 20;
/// The address-count limit leaves room for the trailer: the longest advert with it (20 IPv6
/// addresses) fits the IPv6 minimum MTU, so no configured address has to leave the advert
/// for the trailer (keepalived, whose lists are longer, moves addresses to the excluded set
/// near the MTU instead).
const _: () =
    assert!(40 + super::wire::HEADER_LEN + super::wire::MAX_ADDRS * 16 + TRAILER_LEN <= 1280);
/// Trailer bytes before the MAC.
const MAC_AT: usize = TRAILER_LEN - MAC_LEN;

/// keepalived's `mode`: what a node sends and what it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMode {
    /// Sign every advert; accept only adverts with a valid trailer.
    Enforce,
    /// Sign every advert; accept a valid trailer, or none (a rollout step).
    Permissive,
    /// Send no trailer; verify a trailer when one comes, accept adverts without (the first
    /// rollout step: every node can verify before any node signs).
    ReceiveOnly,
}

impl AuthMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMode::Enforce => "enforce",
            AuthMode::Permissive => "permissive",
            AuthMode::ReceiveOnly => "receive-only",
        }
    }

    /// Whether adverts sent carry a trailer.
    pub const fn signs(self) -> bool {
        !matches!(self, AuthMode::ReceiveOnly)
    }
}

/// keepalived's `anti_replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AntiReplay {
    /// A freshness window around the receiver's UTC clock, plus a growing sequence per sender.
    Time,
    /// Only a growing sequence per sender: no shared clock needed, no freshness guarantee.
    Monotonic,
}

impl AntiReplay {
    pub const fn as_str(self) -> &'static str {
        match self {
            AntiReplay::Time => "time",
            AntiReplay::Monotonic => "monotonic",
        }
    }
}

/// One key: id and 32..64 bytes. Zeroed when dropped; its `Debug` shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKey {
    id: u8,
    len: u8,
    bytes: [u8; KEY_MAX],
}

impl HmacKey {
    /// `None` for id 0 or a length outside 32..=64 (the configuration layer reports which).
    pub fn new(id: u8, material: &[u8]) -> Option<HmacKey> {
        if id == 0 || !(KEY_MIN..=KEY_MAX).contains(&material.len()) {
            return None;
        }
        let mut bytes = [0u8; KEY_MAX];
        bytes[..material.len()].copy_from_slice(material);
        Some(HmacKey {
            id,
            len: material.len() as u8,
            bytes,
        })
    }

    pub const fn id(&self) -> u8 {
        self.id
    }

    pub const fn len(&self) -> usize {
        self.len as usize
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether two keys hold the same bytes (whatever their IDs).
    pub fn same_material(&self, other: &HmacKey) -> bool {
        self.material() == other.material()
    }

    fn material(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        // `black_box` hides the buffer from the optimiser, so the stores into memory about to
        // be freed are kept (and no `unsafe`: it is forbidden outside `sys`).
        core::hint::black_box(&mut self.bytes).fill(0);
        self.len = 0;
        core::hint::black_box(&self.bytes);
    }
}

impl core::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "HmacKey {{ id: {}, len: {}, bytes: *** }}",
            self.id, self.len
        )
    }
}

/// An instance's `auth_hmac` settings, validated: at least one key, the active key among
/// them, the window resolved (keepalived: max(3 x advert_int, 5) s when not given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthHmac {
    pub keys: Vec<HmacKey>,
    pub active_key: u8,
    pub mode: AuthMode,
    pub anti_replay: AntiReplay,
    /// Seconds, 1..=300.
    pub time_window: u16,
}

impl AuthHmac {
    pub fn key(&self, id: u8) -> Option<&HmacKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Bytes a sent advert carries beyond the message: the trailer, unless receive-only.
    pub fn trailer_len(&self) -> usize {
        if self.mode.signs() {
            TRAILER_LEN
        } else {
            0
        }
    }
}

/// keepalived's default window: three advert intervals in whole seconds, at least 5, at
/// most 300.
pub fn default_window(advert_int: Duration) -> u16 {
    let three = 3 * advert_int.as_secs();
    three.clamp(u64::from(WINDOW_FLOOR), u64::from(WINDOW_MAX)) as u16
}

/// A received or sent trailer as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trailer {
    pub ext_type: u8,
    pub key_id: u8,
    pub reserved: u16,
    /// Seconds << 32 | fraction << 16 | counter.
    pub seq: u64,
    pub mac: [u8; MAC_LEN],
}

impl Trailer {
    /// Read a trailer from exactly [`TRAILER_LEN`] bytes. Only the length is checked here;
    /// [`verify`] judges the fields.
    pub fn parse(bytes: &[u8]) -> Option<Trailer> {
        let b: &[u8; TRAILER_LEN] = bytes.try_into().ok()?;
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&b[MAC_AT..]);
        Some(Trailer {
            ext_type: b[0],
            key_id: b[1],
            reserved: u16::from_be_bytes([b[2], b[3]]),
            seq: u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]),
            mac,
        })
    }

    /// Write the trailer into `out` (exactly [`TRAILER_LEN`] bytes).
    pub fn emit(&self, out: &mut [u8; TRAILER_LEN]) {
        out[0] = self.ext_type;
        out[1] = self.key_id;
        out[2..4].copy_from_slice(&self.reserved.to_be_bytes());
        out[4..12].copy_from_slice(&self.seq.to_be_bytes());
        out[MAC_AT..].copy_from_slice(&self.mac);
    }

    /// The seconds field.
    pub const fn seconds(&self) -> u32 {
        (self.seq >> 32) as u32
    }
}

/// What the MAC binds besides the message: who sent it, for which virtual router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub version: Version,
    pub vrid: u8,
    /// The IP source of the advert (its family is the pseudo-header's).
    pub src: IpAddr,
}

impl Binding {
    fn pseudo(&self) -> [u8; PSEUDO_LEN] {
        let mut p = [0u8; PSEUDO_LEN];
        p[0] = match Family::of(&self.src) {
            Family::Ipv4 => 4,
            Family::Ipv6 => 6,
        };
        p[1] = self.version.number();
        p[2] = self.vrid;
        match self.src {
            IpAddr::V4(a) => p[4..8].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => p[4..20].copy_from_slice(&a.octets()),
        }
        p
    }
}

/// The truncated MAC of `msg` (the VRRP message, checksum field ignored) under `key`, with
/// the trailer's first 12 bytes as given in `head`.
fn mac_of(key: &HmacKey, at: &Binding, msg: &[u8], head: &[u8; MAC_AT]) -> Option<Hmac<Sha256>> {
    if msg.len() < 8 {
        return None;
    }
    let mut m = Hmac::<Sha256>::new_from_slice(key.material()).ok()?;
    m.update(&at.pseudo());
    m.update(&msg[..6]);
    m.update(&[0, 0]);
    m.update(&msg[8..]);
    m.update(head);
    m.update(&[0u8; MAC_LEN]);
    Some(m)
}

fn head_of(t: &Trailer) -> [u8; MAC_AT] {
    let mut full = [0u8; TRAILER_LEN];
    t.emit(&mut full);
    let mut head = [0u8; MAC_AT];
    head.copy_from_slice(&full[..MAC_AT]);
    head
}

/// RFC 1982 serial-number order over the 64-bit sequence: `a` comes after `b`.
pub const fn seq_after(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

/// The sequence number of a wall-clock reading: seconds in the top 32 bits, a 1/65536 s
/// fraction in the next 16, the counter zero.
pub fn clock_seq(wall: Duration) -> u64 {
    let frac = (u64::from(wall.subsec_nanos()) << 16) / 1_000_000_000;
    ((wall.as_secs() as u32 as u64) << 32) | (frac << 16)
}

/// The sender's side: the last sequence number sent (not persisted; a restarted sender stays
/// ahead as long as its clock moved forward across the restart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendSeq {
    last: u64,
}

impl SendSeq {
    /// The next sequence: the clock's, or one past the last when the clock has not moved
    /// past it (the counter carries into the timestamp). In `time` mode a sequence stranded
    /// beyond the window by a clock stepped back restarts from the clock, since no receiver
    /// would accept it anyway.
    pub fn next(&mut self, wall: Duration, anti_replay: AntiReplay, window: u16) -> u64 {
        let clk = clock_seq(wall);
        if seq_after(clk, self.last) {
            self.last = clk;
            return clk;
        }
        let ahead = ((self.last >> 32) as u32).wrapping_sub((clk >> 32) as u32) as i32;
        if anti_replay == AntiReplay::Time && ahead > i32::from(window) {
            self.last = clk;
        } else {
            self.last = self.last.wrapping_add(1);
        }
        self.last
    }

    pub const fn last(&self) -> u64 {
        self.last
    }
}

/// Sign `msg` (the VRRP message as it will be sent; its checksum field is ignored) and write
/// the trailer into `out`. `None` when the active key is missing (validation prevents it).
pub fn sign(
    cfg: &AuthHmac,
    seq: &mut SendSeq,
    wall: Duration,
    at: &Binding,
    msg: &[u8],
    out: &mut [u8; TRAILER_LEN],
) -> Option<()> {
    let key = cfg.key(cfg.active_key)?;
    let mut t = Trailer {
        ext_type: EXT_HMAC_SHA256_128,
        key_id: cfg.active_key,
        reserved: 0,
        seq: seq.next(wall, cfg.anti_replay, cfg.time_window),
        mac: [0; MAC_LEN],
    };
    let full = mac_of(key, at, msg, &head_of(&t))?.finalize().into_bytes();
    t.mac.copy_from_slice(&full[..MAC_LEN]);
    t.emit(out);
    Some(())
}

/// Why a received advert was refused, one variant per counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AuthReject {
    /// No trailer, in `enforce` mode.
    Missing,
    /// Ext Type not 1 or reserved bits set.
    Malformed,
    /// Key ID not configured here (key id 0 included: never configurable).
    UnknownKey,
    /// The MAC does not verify: another key, a forgery, a modified advert or another sender.
    BadMac,
    /// `time` mode: the timestamp is further than the window from our clock.
    Stale,
    /// The sequence does not grow past the sender's last accepted one.
    Replayed,
}

/// What happened to a received advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthVerdict {
    /// The trailer verified. `skew` is our clock minus the sender's, in seconds (`time` mode
    /// only), for the warning past half the window.
    Accepted {
        skew: Option<i32>,
    },
    /// No trailer, accepted by a migration mode (`permissive`, `receive-only`).
    Unsigned,
    Rejected(AuthReject),
}

/// Outcome counters of one instance (saturating; 32-bit targets have no 64-bit atomics and
/// need none: one thread).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthCounters {
    pub accepted: u32,
    pub unsigned: u32,
    pub missing: u32,
    pub malformed: u32,
    pub unknown_key: u32,
    pub bad_mac: u32,
    pub stale: u32,
    pub replayed: u32,
    /// Accepted adverts whose clock was more than half the window away from ours.
    pub clock_skew: u32,
}

impl AuthCounters {
    pub fn record(&mut self, v: &AuthVerdict, window: u16) {
        let c = match v {
            AuthVerdict::Accepted { skew } => {
                if skew.is_some_and(|s| skew_warns(s, window)) {
                    self.clock_skew = self.clock_skew.saturating_add(1);
                }
                &mut self.accepted
            }
            AuthVerdict::Unsigned => &mut self.unsigned,
            AuthVerdict::Rejected(r) => match r {
                AuthReject::Missing => &mut self.missing,
                AuthReject::Malformed => &mut self.malformed,
                AuthReject::UnknownKey => &mut self.unknown_key,
                AuthReject::BadMac => &mut self.bad_mac,
                AuthReject::Stale => &mut self.stale,
                AuthReject::Replayed => &mut self.replayed,
            },
        };
        *c = c.saturating_add(1);
    }

    /// Every counter with its stable name, for status and metrics.
    pub fn fields(&self) -> [(&'static str, u32); 9] {
        [
            ("accepted", self.accepted),
            ("unsigned", self.unsigned),
            ("missing", self.missing),
            ("malformed", self.malformed),
            ("unknown_key", self.unknown_key),
            ("bad_mac", self.bad_mac),
            ("stale", self.stale),
            ("replayed", self.replayed),
            ("clock_skew", self.clock_skew),
        ]
    }
}

impl AuthReject {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthReject::Missing => "missing trailer",
            AuthReject::Malformed => "malformed trailer",
            AuthReject::UnknownKey => "unknown key id",
            AuthReject::BadMac => "bad MAC",
            AuthReject::Stale => "stale timestamp",
            AuthReject::Replayed => "replayed sequence",
        }
    }
}

/// The clock-skew warning fires past half the window (keepalived: the early signal to fix
/// NTP before adverts start failing).
pub const fn skew_warns(skew: i32, window: u16) -> bool {
    let half = (window / 2) as i32;
    skew > half || skew < -half
}

/// The receiver's memory of each sender's last accepted sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayTable {
    slots: [Slot; REPLAY_SLOTS],
    clock: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    src: Option<IpAddr>,
    seq: Option<u64>,
    last_used: u32,
}

impl ReplayTable {
    fn slot(&mut self, src: IpAddr) -> &mut Slot {
        self.clock = self.clock.wrapping_add(1).max(1);
        let now = self.clock;
        let i = match self.slots.iter().position(|s| s.src == Some(src)) {
            Some(i) => i,
            None => {
                let i = (0..REPLAY_SLOTS)
                    .min_by_key(|&i| (self.slots[i].src.is_some(), self.slots[i].last_used))
                    .unwrap_or(0);
                self.slots[i] = Slot {
                    src: Some(src),
                    seq: None,
                    last_used: 0,
                };
                i
            }
        };
        let s = &mut self.slots[i];
        s.last_used = now;
        s
    }
}

/// Verify a received advert: `msg` is the VRRP message (its checksum field is ignored),
/// `trailer` the 28 bytes after it, if any. Checks in keepalived's order: missing, format,
/// the window (before the costly MAC, so a flood of stale captures costs no digest), key,
/// MAC, and only then the sender's sequence (never moved by unverified data).
pub fn verify(
    cfg: &AuthHmac,
    replay: &mut ReplayTable,
    wall: Duration,
    at: &Binding,
    msg: &[u8],
    trailer: Option<&[u8]>,
) -> AuthVerdict {
    use AuthVerdict::Rejected;
    let Some(bytes) = trailer else {
        return match cfg.mode {
            AuthMode::Enforce => Rejected(AuthReject::Missing),
            AuthMode::Permissive | AuthMode::ReceiveOnly => AuthVerdict::Unsigned,
        };
    };
    let Some(t) = Trailer::parse(bytes) else {
        return Rejected(AuthReject::Malformed);
    };
    if t.ext_type != EXT_HMAC_SHA256_128 || t.reserved != 0 {
        return Rejected(AuthReject::Malformed);
    }
    let now_secs = wall.as_secs() as u32;
    let window = i32::from(cfg.time_window);
    let skew = match cfg.anti_replay {
        AntiReplay::Time => {
            let delta = now_secs.wrapping_sub(t.seconds()) as i32;
            if delta > window || delta < -window {
                return Rejected(AuthReject::Stale);
            }
            Some(delta)
        }
        AntiReplay::Monotonic => None,
    };
    let Some(key) = cfg.key(t.key_id) else {
        return Rejected(AuthReject::UnknownKey);
    };
    let Some(m) = mac_of(key, at, msg, &head_of(&t)) else {
        return Rejected(AuthReject::Malformed);
    };
    // Constant-time comparison of the leftmost 16 bytes (RFC 2104 5 truncation).
    if m.verify_truncated_left(&t.mac).is_err() {
        return Rejected(AuthReject::BadMac);
    }
    let slot = replay.slot(at.src);
    if let (Some(last), AntiReplay::Time) = (slot.seq, cfg.anti_replay) {
        // A mark outside the window orders only what the window rejects anyway; forgetting
        // it lets a sender whose clock was stepped back recover.
        let age = now_secs.wrapping_sub((last >> 32) as u32) as i32;
        if age > window || age < -window {
            slot.seq = None;
        }
    }
    if let Some(last) = slot.seq {
        if !seq_after(t.seq, last) {
            return Rejected(AuthReject::Replayed);
        }
    }
    slot.seq = Some(t.seq);
    AuthVerdict::Accepted { skew }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn key00() -> HmacKey {
        let m: Vec<u8> = (0u8..32).collect();
        HmacKey::new(1, &m).unwrap()
    }

    fn cfg(anti_replay: AntiReplay) -> AuthHmac {
        AuthHmac {
            keys: vec![key00()],
            active_key: 1,
            mode: AuthMode::Enforce,
            anti_replay,
            time_window: 5,
        }
    }

    fn v6() -> Binding {
        Binding {
            version: Version::V3,
            vrid: 51,
            src: IpAddr::V6("fe80::10".parse().unwrap()),
        }
    }

    fn sec(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn signed(c: &AuthHmac, seq: &mut SendSeq, wall: Duration) -> ([u8; 24], [u8; TRAILER_LEN]) {
        let mut msg = [0u8; 24];
        msg[..8].copy_from_slice(&[0x31, 51, 200, 1, 0, 100, 0, 0]);
        msg[8..].copy_from_slice(&"fe80::100".parse::<Ipv6Addr>().unwrap().octets());
        let mut t = [0u8; TRAILER_LEN];
        sign(c, seq, wall, &v6(), &msg, &mut t).unwrap();
        (msg, t)
    }

    #[test]
    fn a_signed_advert_verifies_once_then_is_a_replay() {
        let c = cfg(AntiReplay::Time);
        let (msg, t) = signed(&c, &mut SendSeq::default(), sec(1_800_000_000));
        let mut rt = ReplayTable::default();
        let now = sec(1_800_000_001);
        let v = verify(&c, &mut rt, now, &v6(), &msg, Some(&t));
        assert_eq!(v, AuthVerdict::Accepted { skew: Some(1) });
        let v = verify(&c, &mut rt, now, &v6(), &msg, Some(&t));
        assert_eq!(v, AuthVerdict::Rejected(AuthReject::Replayed));
        // A second receiver (or a second peer's copy) accepts the same bytes.
        let v = verify(&c, &mut ReplayTable::default(), now, &v6(), &msg, Some(&t));
        assert_eq!(v, AuthVerdict::Accepted { skew: Some(1) });
    }

    #[test]
    fn the_checksum_field_is_outside_the_mac() {
        let c = cfg(AntiReplay::Monotonic);
        let (mut msg, t) = signed(&c, &mut SendSeq::default(), sec(1_800_000_000));
        msg[6] ^= 0xff;
        let v = verify(
            &c,
            &mut ReplayTable::default(),
            sec(0),
            &v6(),
            &msg,
            Some(&t),
        );
        assert_eq!(v, AuthVerdict::Accepted { skew: None });
    }

    #[test]
    fn window_rejects_old_and_future_stamps_before_the_mac() {
        let c = cfg(AntiReplay::Time);
        let (msg, t) = signed(&c, &mut SendSeq::default(), sec(1_800_000_000));
        for now in [1_800_000_006, 1_799_999_994] {
            let v = verify(
                &c,
                &mut ReplayTable::default(),
                sec(now),
                &v6(),
                &msg,
                Some(&t),
            );
            assert_eq!(v, AuthVerdict::Rejected(AuthReject::Stale), "{now}");
        }
        for now in [1_800_000_005, 1_799_999_995] {
            let v = verify(
                &c,
                &mut ReplayTable::default(),
                sec(now),
                &v6(),
                &msg,
                Some(&t),
            );
            assert!(matches!(v, AuthVerdict::Accepted { .. }), "{now}");
        }
    }

    #[test]
    fn missing_trailer_by_mode() {
        let mut c = cfg(AntiReplay::Time);
        let at = v6();
        let mut rt = ReplayTable::default();
        let msg = [0x31, 51, 200, 1, 0, 100, 0, 0];
        let expect = [
            (
                AuthMode::Enforce,
                AuthVerdict::Rejected(AuthReject::Missing),
            ),
            (AuthMode::Permissive, AuthVerdict::Unsigned),
            (AuthMode::ReceiveOnly, AuthVerdict::Unsigned),
        ];
        for (mode, want) in expect {
            c.mode = mode;
            assert_eq!(verify(&c, &mut rt, sec(0), &at, &msg, None), want);
        }
        assert_eq!(c.trailer_len(), 0);
    }

    #[test]
    fn truncated_trailer_and_key_zero_are_refused() {
        let c = cfg(AntiReplay::Monotonic);
        let (msg, mut t) = signed(&c, &mut SendSeq::default(), sec(1_800_000_000));
        let mut rt = ReplayTable::default();
        let v = verify(&c, &mut rt, sec(0), &v6(), &msg, Some(&t[..27]));
        assert_eq!(v, AuthVerdict::Rejected(AuthReject::Malformed));
        t[1] = 0;
        let v = verify(&c, &mut rt, sec(0), &v6(), &msg, Some(&t));
        assert_eq!(v, AuthVerdict::Rejected(AuthReject::UnknownKey));
        assert!(HmacKey::new(0, &[7; 32]).is_none());
        assert!(HmacKey::new(1, &[7; 31]).is_none());
        assert!(HmacKey::new(1, &[7; 65]).is_none());
    }

    #[test]
    fn sequence_grows_when_the_clock_stands_still() {
        let mut s = SendSeq::default();
        let a = s.next(sec(1_800_000_000), AntiReplay::Time, 5);
        let b = s.next(sec(1_800_000_000), AntiReplay::Time, 5);
        assert_eq!(b, a + 1);
        // A clock stepped back by less than the window keeps counting up...
        let c = s.next(sec(1_799_999_998), AntiReplay::Time, 5);
        assert_eq!(c, b + 1);
        // ...by more, time mode restarts from the clock, monotonic mode keeps growing.
        let mut m = s;
        let d = s.next(sec(1_799_990_000), AntiReplay::Time, 5);
        assert_eq!(d >> 32, 1_799_990_000);
        let e = m.next(sec(1_799_990_000), AntiReplay::Monotonic, 5);
        assert_eq!(e, c + 1);
    }

    #[test]
    fn a_stale_mark_expires_in_time_mode() {
        let c = cfg(AntiReplay::Time);
        let mut rt = ReplayTable::default();
        let far = sec(1_800_003_600);
        let (msg, t) = signed(&c, &mut SendSeq::default(), far);
        assert!(matches!(
            verify(&c, &mut rt, far, &v6(), &msg, Some(&t)),
            AuthVerdict::Accepted { .. }
        ));
        // The sender's clock is fixed and steps back an hour: its first advert is older
        // than the mark, but the mark is outside the window, so it is forgotten.
        let now = sec(1_800_000_000);
        let (msg, t) = signed(&c, &mut SendSeq::default(), now);
        assert!(matches!(
            verify(&c, &mut rt, now, &v6(), &msg, Some(&t)),
            AuthVerdict::Accepted { .. }
        ));
    }

    #[test]
    fn replay_table_keeps_senders_apart_and_evicts_the_oldest() {
        let c = cfg(AntiReplay::Monotonic);
        let mut rt = ReplayTable::default();
        let mut msg = [0u8; 12];
        msg[..8].copy_from_slice(&[0x31, 51, 200, 1, 0, 100, 0, 0]);
        let mut sent = Vec::new();
        for i in 0..=REPLAY_SLOTS as u8 {
            let at = Binding {
                version: Version::V3,
                vrid: 51,
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i + 1)),
            };
            let mut t = [0u8; TRAILER_LEN];
            sign(
                &c,
                &mut SendSeq::default(),
                sec(1_800_000_000),
                &at,
                &msg,
                &mut t,
            )
            .unwrap();
            let v = verify(&c, &mut rt, sec(0), &at, &msg, Some(&t));
            assert!(matches!(v, AuthVerdict::Accepted { .. }));
            sent.push((at, t));
        }
        // The newest senders are remembered: their replay is refused.
        let (at, t) = sent[REPLAY_SLOTS];
        let v = verify(&c, &mut rt, sec(0), &at, &msg, Some(&t));
        assert_eq!(v, AuthVerdict::Rejected(AuthReject::Replayed));
    }

    #[test]
    fn key_debug_masks_the_material() {
        let s = format!("{:?}", cfg(AntiReplay::Time));
        assert!(s.contains("***"));
        assert!(!s.contains("31"), "{s}");
    }

    #[test]
    fn default_window_is_three_intervals_at_least_five() {
        assert_eq!(default_window(Duration::from_secs(1)), 5);
        assert_eq!(default_window(Duration::from_millis(100)), 5);
        assert_eq!(default_window(Duration::from_secs(4)), 12);
        assert_eq!(default_window(Duration::from_secs(200)), 300);
    }
}
