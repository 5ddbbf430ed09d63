//! Small pieces every layer shares: explicit time values.

pub mod time;

pub use time::{Duration, Instant};
