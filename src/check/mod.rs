//! Health checks and trackers as pure state machines (issue 5).
