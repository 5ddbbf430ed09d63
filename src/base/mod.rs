//! Small pieces every layer shares: explicit time values.

pub mod logging;
pub mod ratelimit;
pub mod time;

pub use time::{Duration, Instant};
