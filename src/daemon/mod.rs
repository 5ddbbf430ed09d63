//! The single-threaded poll loop: event queue, timer queue, signals, reload (issue 2, 4).
