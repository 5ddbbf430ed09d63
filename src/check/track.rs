//! What a tracked object's state does to a VRRP instance's priority (keepalived semantics,
//! keepalived.conf(5) "VRRP script(s)", "Track files", `track_interface`).
//!
//! - weight 0: the object failing puts the instance in FAULT.
//! - weight > 0: the weight is added to the priority while the object is up.
//! - weight < 0: the weight is added (so subtracted) while the object is down.
//! - `reverse` swaps what counts as up and down.
//! - track_file: the file's integer times the weight is added; with weight 0 a non-zero
//!   value is a failure (FAULT); a result below -253 is FAULT.

use super::schedule::Health;

/// The effect of one tracked object on an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Add this to the configured priority (the instance clamps the sum to 1..=254).
    Delta(i32),
    /// The instance must go to FAULT.
    Fault,
}

/// Lowest delta a track_file may apply before it means FAULT.
pub const MIN_FILE_DELTA: i64 = -253;

/// Effect of a script or check with this weight in this health. `Unknown` (before the first
/// round decided) has no effect; configure `Schedule::initial = Down` for keepalived's
/// `init_fail`.
pub fn script_effect(weight: i32, reverse: bool, health: Health) -> Effect {
    let up = match health {
        Health::Unknown => return Effect::Delta(0),
        Health::Up => !reverse,
        Health::Down => reverse,
    };
    updown_effect(weight, up)
}

/// Effect of a tracked interface (the netlink layer decides up/down).
pub fn interface_effect(weight: i32, reverse: bool, oper_up: bool) -> Effect {
    updown_effect(weight, oper_up != reverse)
}

fn updown_effect(weight: i32, up: bool) -> Effect {
    match (weight, up) {
        (0, true) => Effect::Delta(0),
        (0, false) => Effect::Fault,
        (w, true) if w > 0 => Effect::Delta(w),
        (w, false) if w < 0 => Effect::Delta(w),
        _ => Effect::Delta(0),
    }
}

/// What was read from a track file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileValue {
    Value(i64),
    /// Out of the accepted range: keepalived logs and keeps the previous value.
    KeepPrevious,
}

/// Parse a track file's contents like C `strtol(buf, NULL, 0)`: leading spaces, optional
/// sign, `0x` hex / leading-0 octal / decimal, trailing text ignored; no digits (including an
/// empty or missing file) reads as 0. Values outside i32 (plus 2^31, as keepalived allows
/// for weight -1) are rejected.
pub fn parse_file_value(buf: &[u8]) -> FileValue {
    let mut s = buf;
    while let [b, rest @ ..] = s {
        if b.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    let mut neg = false;
    if let [sign @ (b'+' | b'-'), rest @ ..] = s {
        neg = *sign == b'-';
        s = rest;
    }
    let radix: u32 = match s {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => {
            s = &s[2..];
            16
        }
        [b'0', ..] => 8,
        _ => 10,
    };
    let mut v: i64 = 0;
    for &b in s {
        let Some(d) = (b as char).to_digit(radix) else {
            break;
        };
        v = match v
            .checked_mul(i64::from(radix))
            .and_then(|x| x.checked_add(i64::from(d)))
        {
            Some(x) => x,
            None => return FileValue::KeepPrevious,
        };
    }
    if neg {
        v = -v;
    }
    if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) + 1 {
        return FileValue::KeepPrevious;
    }
    FileValue::Value(v)
}

/// keepalived reads a file it cannot open (missing, unreadable) as 0: pass `None` then.
pub fn file_value(contents: Option<&[u8]>) -> FileValue {
    match contents {
        Some(b) => parse_file_value(b),
        None => FileValue::Value(0),
    }
}

/// Effect of a track file value for a VRRP instance.
pub fn file_effect(weight: i32, value: i64) -> Effect {
    if weight == 0 {
        return if value == 0 {
            Effect::Delta(0)
        } else {
            Effect::Fault
        };
    }
    let r = value.saturating_mul(i64::from(weight));
    if r < MIN_FILE_DELTA {
        Effect::Fault
    } else {
        // Anything above 253 lifts the priority to the cap anyway.
        Effect::Delta(r.min(253) as i32)
    }
}

/// Sum the effects of all tracked objects of one instance: any FAULT wins.
pub fn combine(effects: impl IntoIterator<Item = Effect>) -> Effect {
    let mut sum: i32 = 0;
    for e in effects {
        match e {
            Effect::Fault => return Effect::Fault,
            Effect::Delta(d) => sum = sum.saturating_add(d),
        }
    }
    Effect::Delta(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_weight_zero_faults_when_down() {
        assert_eq!(script_effect(0, false, Health::Down), Effect::Fault);
        assert_eq!(script_effect(0, false, Health::Up), Effect::Delta(0));
        assert_eq!(script_effect(0, true, Health::Up), Effect::Fault);
    }

    #[test]
    fn positive_weight_adds_when_up_negative_subtracts_when_down() {
        assert_eq!(script_effect(10, false, Health::Up), Effect::Delta(10));
        assert_eq!(script_effect(10, false, Health::Down), Effect::Delta(0));
        assert_eq!(script_effect(-20, false, Health::Down), Effect::Delta(-20));
        assert_eq!(script_effect(-20, false, Health::Up), Effect::Delta(0));
        assert_eq!(interface_effect(-5, false, false), Effect::Delta(-5));
        assert_eq!(interface_effect(0, false, false), Effect::Fault);
    }

    #[test]
    fn file_value_reads_like_strtol() {
        assert_eq!(parse_file_value(b"  42\n"), FileValue::Value(42));
        assert_eq!(parse_file_value(b"-7 junk"), FileValue::Value(-7));
        assert_eq!(parse_file_value(b"0x10"), FileValue::Value(16));
        assert_eq!(parse_file_value(b"010"), FileValue::Value(8));
        assert_eq!(parse_file_value(b"abc"), FileValue::Value(0));
        assert_eq!(parse_file_value(b""), FileValue::Value(0));
        assert_eq!(parse_file_value(b"99999999999"), FileValue::KeepPrevious);
        assert_eq!(
            parse_file_value(b"2147483648"),
            FileValue::Value(2147483648)
        );
    }

    #[test]
    fn file_weight_multiplies_and_faults_below_minus_253() {
        assert_eq!(file_effect(0, 0), Effect::Delta(0));
        assert_eq!(file_effect(0, 3), Effect::Fault);
        assert_eq!(file_effect(2, 5), Effect::Delta(10));
        assert_eq!(file_effect(-1, 20), Effect::Delta(-20));
        assert_eq!(file_effect(1, -254), Effect::Fault);
        assert_eq!(file_effect(254, -1), Effect::Fault);
        assert_eq!(file_effect(1, 1000), Effect::Delta(253));
        assert_eq!(
            combine([Effect::Delta(5), Effect::Delta(-2)]),
            Effect::Delta(3)
        );
        assert_eq!(combine([Effect::Delta(5), Effect::Fault]), Effect::Fault);
    }
}
