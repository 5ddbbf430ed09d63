//! Keeping the picture of links and addresses right when link events are lost.
//!
//! Link and address events travel from the rtnetlink socket through the loop's fixed event
//! queue. The kernel can drop them (a full socket buffer: `RtnlEvent::Overrun`), and so can
//! the queue when a turn read more than it holds. Either way the daemon may believe a link
//! is up that is down, or keep an advert source address that is gone, until the next event
//! for it, which may never come. So a lost event schedules a resynchronisation from dumps.
//!
//! When: not at once. Events read before the loss may still be queued; handled after the
//! dump they would put their older picture back (a queued "down" followed by a dropped
//! "up"), so the resync waits until the last link event that was queued has been handled.
//! Events read after the dump are newer than it and are applied as usual.

use super::event_loop::Inbox;

/// Bookkeeping for one event source (the rtnetlink event socket), fed by the runtime as
/// events are queued ([`Self::push`]), lost and handled; no I/O of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkSync {
    /// Link events in the loop's queue, not yet handled.
    queued: u32,
    /// An event was lost since the last resync.
    lost: bool,
    /// Events lost in total (the queue's and the kernel's), and resyncs done: for the log.
    lost_total: u64,
    resyncs: u64,
}

impl LinkSync {
    pub fn new() -> LinkSync {
        LinkSync::default()
    }

    /// Queue a link event read from the socket; when the queue is full it is dropped (the
    /// loop counts it against the fd) and a resync is scheduled instead.
    pub fn push<I>(&mut self, inbox: &mut Inbox<'_, I>, ev: I) {
        if inbox.push(ev) {
            self.queued();
        } else {
            self.lost();
        }
    }

    /// An event was put in the queue.
    pub fn queued(&mut self) {
        self.queued = self.queued.saturating_add(1);
    }

    /// An event was dropped (the queue was full) or the kernel reported it dropped some.
    pub fn lost(&mut self) {
        self.lost = true;
        self.lost_total = self.lost_total.saturating_add(1);
    }

    /// A queued event was handled.
    pub fn handled(&mut self) {
        self.queued = self.queued.saturating_sub(1);
    }

    /// `true` when a resync is due now: something was lost and no older event is still
    /// queued. The caller dumps links and addresses; the loss is then forgotten.
    pub fn take_resync(&mut self) -> bool {
        if self.lost && self.queued == 0 {
            self.lost = false;
            self.resyncs = self.resyncs.saturating_add(1);
            return true;
        }
        false
    }

    /// (events lost, resyncs done).
    pub fn stats(&self) -> (u64, u64) {
        (self.lost_total, self.resyncs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_lost_no_resync() {
        let mut s = LinkSync::new();
        s.queued();
        s.handled();
        assert!(!s.take_resync());
    }

    #[test]
    fn a_loss_with_an_empty_queue_resyncs_once() {
        let mut s = LinkSync::new();
        s.lost();
        assert!(s.take_resync());
        assert!(!s.take_resync(), "one resync per loss");
        assert_eq!(s.stats(), (1, 1));
    }

    #[test]
    fn resync_waits_for_older_queued_events() {
        // Queued: "eth1 down"; dropped: "eth1 up". Were the dump taken before "down" is
        // handled, "down" would be applied after it and nothing would correct it.
        let mut s = LinkSync::new();
        s.queued();
        s.lost();
        assert!(!s.take_resync(), "an older event is still queued");
        s.handled();
        assert!(s.take_resync());
        // Several losses before the queue drains: still one resync.
        s.queued();
        s.queued();
        s.lost();
        s.lost();
        s.handled();
        assert!(!s.take_resync());
        s.handled();
        assert!(s.take_resync());
        assert!(!s.take_resync());
        assert_eq!(s.stats(), (3, 2));
    }
}
