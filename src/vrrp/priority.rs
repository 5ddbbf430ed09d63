//! Effective priority: the configured base priority adjusted by tracker weights, exactly as
//! keepalived documents `track_interface` / `track_script` / `track_file` weights:
//!
//! - a positive weight is **added** while the tracked object is up;
//! - a negative weight is **subtracted** (its magnitude) while the tracked object is down;
//! - weight 0 means a failure of that object puts the instance in FAULT;
//! - the result is clamped to 1..=254, and an address owner (base 255) always stays 255
//!   (only a weight-0 failure can take an owner down, into FAULT).
//!
//! Pure: the tracker layer (`check`) decides up/down, this module only does the arithmetic.

/// One tracked object as the instance sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// keepalived range -254..=254; 0 means "fault on failure".
    pub weight: i16,
    /// Whether the tracked object is currently up (link up, script exit 0, ...).
    pub up: bool,
}

/// The sum of all trackers' contributions, computed once and handed to the instance
/// (`Input::Trackers`), which combines it with its own base priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adjustment {
    /// Sum of applied weights (positive weights of up objects, negative weights of down ones).
    pub delta: i32,
    /// A weight-0 object is down.
    pub fault: bool,
}

/// What the instance should run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effective {
    Priority(u8),
    Fault,
}

/// The address owner's priority (RFC 5798 5.2.4): never adjusted.
pub const OWNER: u8 = 255;

/// Sum the trackers' contributions (keepalived weight semantics, see the module docs).
pub fn adjustment(tracked: &[Tracked]) -> Adjustment {
    let mut adj = Adjustment::default();
    for t in tracked {
        match (t.weight, t.up) {
            (0, false) => adj.fault = true,
            (w, true) if w > 0 => adj.delta += i32::from(w),
            (w, false) if w < 0 => adj.delta += i32::from(w),
            _ => {}
        }
    }
    adj
}

/// Apply an adjustment to a base priority: clamp to 1..=254, owner stays 255.
pub fn apply(base: u8, adj: Adjustment) -> Effective {
    if adj.fault {
        return Effective::Fault;
    }
    if base == OWNER {
        return Effective::Priority(OWNER);
    }
    let p = (i32::from(base) + adj.delta).clamp(1, 254);
    // The clamp above keeps p in 1..=254, so the conversion cannot fail; fall back to 1
    // rather than panic all the same.
    Effective::Priority(u8::try_from(p).unwrap_or(1))
}

/// Convenience: `apply(base, adjustment(tracked))`.
pub fn effective_priority(base: u8, tracked: &[Tracked]) -> Effective {
    apply(base, adjustment(tracked))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(weight: i16, up: bool) -> Tracked {
        Tracked { weight, up }
    }

    #[test]
    fn positive_weight_added_while_up() {
        assert_eq!(
            effective_priority(100, &[t(20, true)]),
            Effective::Priority(120)
        );
        assert_eq!(
            effective_priority(100, &[t(20, false)]),
            Effective::Priority(100)
        );
    }

    #[test]
    fn negative_weight_subtracted_while_down() {
        assert_eq!(
            effective_priority(100, &[t(-30, false)]),
            Effective::Priority(70)
        );
        assert_eq!(
            effective_priority(100, &[t(-30, true)]),
            Effective::Priority(100)
        );
    }

    #[test]
    fn weight_zero_failure_is_fault() {
        assert_eq!(effective_priority(100, &[t(0, false)]), Effective::Fault);
        assert_eq!(
            effective_priority(100, &[t(0, true)]),
            Effective::Priority(100)
        );
        assert_eq!(effective_priority(255, &[t(0, false)]), Effective::Fault);
    }

    #[test]
    fn clamped_to_1_254() {
        assert_eq!(
            effective_priority(250, &[t(50, true), t(10, true)]),
            Effective::Priority(254)
        );
        assert_eq!(
            effective_priority(10, &[t(-200, false), t(-54, false)]),
            Effective::Priority(1)
        );
    }

    #[test]
    fn owner_255_never_changes_5_2_4() {
        assert_eq!(
            effective_priority(255, &[t(-100, false)]),
            Effective::Priority(255)
        );
        assert_eq!(
            effective_priority(255, &[t(100, true)]),
            Effective::Priority(255)
        );
    }

    #[test]
    fn several_trackers_sum() {
        let tr = [t(10, true), t(-5, false), t(7, false), t(-9, true)];
        assert_eq!(
            adjustment(&tr),
            Adjustment {
                delta: 5,
                fault: false
            }
        );
        assert_eq!(effective_priority(100, &tr), Effective::Priority(105));
    }
}
