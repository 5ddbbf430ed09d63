//! Small pieces every layer shares: explicit time values, the address family.

pub mod family;
pub mod lateness;
pub mod logging;
pub mod ratelimit;
pub mod time;

pub use family::Family;
pub use time::{Duration, Instant};
