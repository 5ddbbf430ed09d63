//! Fixed-capacity timer queue. A sorted array rather than a binary heap because the loop needs
//! cancellation and re-arming by id (VRRP resets the master-down timer on every advert), which
//! a heap cannot do without lazy-deletion tombstones that would eat capacity. With a few
//! hundred timers at most, an O(n) insert is a few hundred bytes moved: cheaper than the
//! bookkeeping. Order is (deadline, arming sequence), so equal deadlines fire first-armed-first.

use super::TimerId;
use crate::base::Instant;

#[derive(Clone, Copy, Debug)]
struct Entry {
    at: Instant,
    seq: u64,
    id: TimerId,
}

impl Entry {
    fn key(&self) -> (Instant, u64) {
        (self.at, self.seq)
    }
}

/// Timers sorted *descending* by (deadline, seq): the next one to fire is at the end, so
/// popping it is O(1).
///
/// The entries are reserved for `N` on the heap once and never grown (arming never
/// allocates): inline, the table (about 7 KB for the daemon's capacity) would be copied with
/// every move of the loop, and each copy's stack pages would stay resident.
pub struct TimerQueue<const N: usize> {
    entries: Vec<Entry>,
    seq: u64,
}

/// The queue is full; the timer was not armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerFull;

impl<const N: usize> Default for TimerQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TimerQueue<N> {
    pub fn new() -> Self {
        TimerQueue {
            entries: Vec::with_capacity(N),
            seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Arm `id` to fire at `at`, replacing any earlier arming of the same id.
    pub fn arm(&mut self, id: TimerId, at: Instant) -> Result<(), TimerFull> {
        self.cancel(id);
        if self.entries.len() == N {
            return Err(TimerFull);
        }
        let e = Entry {
            at,
            seq: self.seq,
            id,
        };
        self.seq = self.seq.wrapping_add(1);
        // First index whose key is smaller than ours: descending order, insert before it.
        let pos = self.entries.partition_point(|x| x.key() > e.key());
        // Within the reserved capacity: length was checked above, so this never allocates.
        self.entries.insert(pos, e);
        Ok(())
    }

    /// Disarm `id`. Returns whether it was armed.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        match self.entries.iter().position(|e| e.id == id) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    /// When `id` fires, if armed.
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.entries.iter().find(|e| e.id == id).map(|e| e.at)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.last().map(|e| e.at)
    }

    /// How many timers are due at `now`.
    pub fn due_count(&self, now: Instant) -> usize {
        self.entries
            .iter()
            .rev()
            .take_while(|e| e.at <= now)
            .count()
    }

    /// Remove and return the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerId, Instant)> {
        match self.entries.last() {
            Some(e) if e.at <= now => self.entries.pop().map(|e| (e.id, e.at)),
            _ => None,
        }
    }

    /// A mark of the arming order: timers armed from now on are not
    /// [`armed_before`](Self::pop_due_armed_before) it. The loop takes one per turn, so a
    /// timer (re-)armed during a turn waits for the next one, however early its deadline.
    pub fn mark(&self) -> u64 {
        self.seq
    }

    /// Remove and return the earliest timer armed before `mark` if it is due at `now`
    /// (those armed since, due or not, stay).
    pub fn pop_due_armed_before(&mut self, now: Instant, mark: u64) -> Option<(TimerId, Instant)> {
        let back = self
            .entries
            .iter()
            .rev()
            .take_while(|e| e.at <= now)
            .position(|e| e.seq < mark)?;
        let i = self.entries.len() - 1 - back;
        let e = self.entries.remove(i);
        Some((e.id, e.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn timers_fire_in_deadline_order_and_fifo_on_ties() {
        let mut q: TimerQueue<8> = TimerQueue::new();
        q.arm(TimerId(1), t(30)).unwrap();
        q.arm(TimerId(2), t(10)).unwrap();
        q.arm(TimerId(3), t(20)).unwrap();
        q.arm(TimerId(4), t(10)).unwrap();
        assert_eq!(q.next_deadline(), Some(t(10)));
        assert_eq!(q.pop_due(t(5)), None);
        let mut fired = vec![];
        while let Some((id, _)) = q.pop_due(t(100)) {
            fired.push(id.0);
        }
        assert_eq!(fired, vec![2, 4, 3, 1]);
    }

    #[test]
    fn rearming_moves_the_timer_and_cancel_removes_it() {
        let mut q: TimerQueue<4> = TimerQueue::new();
        q.arm(TimerId(1), t(10)).unwrap();
        q.arm(TimerId(2), t(20)).unwrap();
        q.arm(TimerId(1), t(30)).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q.deadline(TimerId(1)), Some(t(30)));
        assert!(q.cancel(TimerId(2)));
        assert!(!q.cancel(TimerId(2)));
        assert_eq!(q.pop_due(t(25)), None);
        assert_eq!(q.pop_due(t(30)), Some((TimerId(1), t(30))));
        assert!(q.is_empty());
    }

    #[test]
    fn timers_armed_after_a_mark_wait_for_the_next_one() {
        let mut q: TimerQueue<8> = TimerQueue::new();
        q.arm(TimerId(1), t(10)).unwrap();
        q.arm(TimerId(2), t(20)).unwrap();
        let mark = q.mark();
        // Re-armed and newly armed after the mark, both earlier than everything else.
        q.arm(TimerId(2), t(5)).unwrap();
        q.arm(TimerId(3), t(1)).unwrap();
        assert_eq!(q.next_deadline(), Some(t(1)));
        assert_eq!(q.pop_due_armed_before(t(9), mark), None);
        assert_eq!(
            q.pop_due_armed_before(t(100), mark),
            Some((TimerId(1), t(10)))
        );
        assert_eq!(q.pop_due_armed_before(t(100), mark), None);
        assert_eq!(q.len(), 2);
        // The next mark covers them: they fire in deadline order.
        let mark = q.mark();
        assert_eq!(
            q.pop_due_armed_before(t(100), mark),
            Some((TimerId(3), t(1)))
        );
        assert_eq!(
            q.pop_due_armed_before(t(100), mark),
            Some((TimerId(2), t(5)))
        );
        assert!(q.is_empty());
    }

    #[test]
    fn full_queue_refuses_new_ids_but_accepts_rearm() {
        let mut q: TimerQueue<2> = TimerQueue::new();
        q.arm(TimerId(1), t(1)).unwrap();
        q.arm(TimerId(2), t(2)).unwrap();
        assert_eq!(q.arm(TimerId(3), t(3)), Err(TimerFull));
        assert_eq!(q.arm(TimerId(2), t(0)), Ok(()));
        assert_eq!(q.pop_due(t(0)), Some((TimerId(2), t(0))));
    }
}
