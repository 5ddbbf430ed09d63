//! How the daemon's parts share the loop's token and timer spaces: the top four bits of a
//! [`Token`] or [`TimerId`] name the owning part, the low 28 bits are the part's own index.
//! One table, so two parts can never collide and a dump can say who owns an fd or timer.

/// Handle of a registered fd, chosen by the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u32);

/// Identity of a timer, chosen by the handler. One timer per id: arming an armed id moves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u32);

/// Owners of tokens/timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Part {
    /// VRRP: packet socket per interface (token), timer per instance.
    Vrrp = 1,
    /// rtnetlink event socket.
    Links = 2,
    /// Health checks and trackers (check sockets, script pipes, its one timer).
    Checks = 3,
    /// Notify scripts (the deadline of the oldest running one).
    Notify = 4,
    /// IPVS (its one debounce / resync timer).
    Lvs = 5,
    /// Control socket: token 0 the listener, 1.. its clients; timer 0 the client deadlines.
    Control = 6,
}

const SHIFT: u32 = 28;
const LOW: u32 = (1 << SHIFT) - 1;

impl Part {
    fn from_bits(v: u32) -> Option<Part> {
        Some(match v >> SHIFT {
            1 => Part::Vrrp,
            2 => Part::Links,
            3 => Part::Checks,
            4 => Part::Notify,
            5 => Part::Lvs,
            6 => Part::Control,
            _ => return None,
        })
    }

    pub const fn token(self, index: u32) -> Token {
        Token(((self as u32) << SHIFT) | (index & LOW))
    }

    pub const fn timer(self, index: u32) -> TimerId {
        TimerId(((self as u32) << SHIFT) | (index & LOW))
    }
}

/// Split a token into its owner and index.
pub fn token_owner(t: Token) -> Option<(Part, u32)> {
    Part::from_bits(t.0).map(|p| (p, t.0 & LOW))
}

/// Split a timer id into its owner and index.
pub fn timer_owner(t: TimerId) -> Option<(Part, u32)> {
    Part::from_bits(t.0).map(|p| (p, t.0 & LOW))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_do_not_collide() {
        assert_eq!(token_owner(Part::Checks.token(7)), Some((Part::Checks, 7)));
        assert_eq!(timer_owner(Part::Vrrp.timer(3)), Some((Part::Vrrp, 3)));
        assert_ne!(Part::Vrrp.token(1), Part::Links.token(1));
        assert_eq!(token_owner(Token(0)), None);
    }
}
