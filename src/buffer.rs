//! The bounded block buffer between the data source and the drive. It holds
//! at most `capacity` blocks (so memory stays bounded whatever the target's
//! size), releases blocks to the drive only once it has filled to its
//! high-water mark (and again after each time it ran dry), so the drive is
//! fed in long runs instead of stopping and starting, and it counts the
//! times it ran dry — each one a stop a real drive would have made.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// One tape record's worth of bytes, shared without copying.
pub type Block = Arc<Vec<u8>>;

/// What `pop` found.
#[derive(Debug)]
pub enum Pop {
    /// The next block.
    Block(Block),
    /// Nothing yet (the caller may check for an abort and wait again).
    Waiting,
    /// The source finished and every block was taken.
    End,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Block>,
    finished: bool,
    abandoned: bool,
    filling: bool,
    started: bool,
    dry_runs: u64,
}

/// A bounded FIFO of blocks with a high-water mark.
pub struct BlockBuffer {
    state: Mutex<State>,
    not_full: Condvar,
    not_empty: Condvar,
    capacity: usize,
    high_water: usize,
}

impl BlockBuffer {
    /// A buffer of `capacity` blocks that starts releasing at `high_water`.
    pub fn new(capacity: usize, high_water: usize) -> BlockBuffer {
        let capacity = capacity.max(1);
        BlockBuffer {
            state: Mutex::new(State { filling: true, ..State::default() }),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
            capacity,
            high_water: high_water.clamp(1, capacity),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a block, waiting while the buffer is full. Returns false when the
    /// drive side has given up (the block is dropped).
    pub fn push(&self, block: Block) -> bool {
        let mut s = self.lock();
        while s.queue.len() >= self.capacity && !s.abandoned {
            s = self.not_full.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.abandoned {
            return false;
        }
        s.queue.push_back(block);
        if !s.filling || s.queue.len() >= self.high_water {
            self.not_empty.notify_one();
        }
        true
    }

    /// The source has sent its last block.
    pub fn finish(&self) {
        self.lock().finished = true;
        self.not_empty.notify_all();
    }

    /// The drive side stops taking blocks: wake and refuse the source.
    pub fn abandon(&self) {
        self.lock().abandoned = true;
        self.not_full.notify_all();
    }

    /// Take the next block, waiting at most `wait`.
    pub fn pop(&self, wait: Duration) -> Pop {
        let mut s = self.lock();
        if s.queue.is_empty() && !s.finished && !s.filling {
            s.filling = true;
            s.dry_runs += u64::from(s.started);
        }
        let ready = |s: &State| s.finished || s.queue.len() >= self.high_water || (!s.filling && !s.queue.is_empty());
        if !ready(&s) {
            s = self.not_empty.wait_timeout_while(s, wait, |s| !ready(s)).unwrap_or_else(|e| e.into_inner()).0;
            if !ready(&s) {
                return Pop::Waiting;
            }
        }
        match s.queue.pop_front() {
            Some(block) => {
                s.filling = false;
                s.started = true;
                self.not_full.notify_one();
                Pop::Block(block)
            }
            None if s.finished => Pop::End,
            None => Pop::Waiting,
        }
    }

    /// How many times the drive side found the buffer empty mid-stream.
    pub fn dry_runs(&self) -> u64 {
        self.lock().dry_runs
    }
}

/// Spent blocks kept for reuse, so a long stream does not allocate (and
/// page-fault and zero) a fresh block for every record. Holds at most
/// `limit` blocks; the buffer's capacity bounds how many are in use.
pub struct BlockPool {
    free: Mutex<Vec<Vec<u8>>>,
    size: usize,
    limit: usize,
}

impl BlockPool {
    /// A pool of blocks of `size` bytes, keeping at most `limit` spare.
    pub fn new(size: usize, limit: usize) -> BlockPool {
        BlockPool { free: Mutex::new(Vec::new()), size, limit }
    }

    /// A block of `size` bytes: a spent one (with old contents) or a new,
    /// zeroed one.
    pub fn take(&self) -> Vec<u8> {
        let spare = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        spare.unwrap_or_else(|| vec![0u8; self.size])
    }

    /// Give back `block` once nobody else holds it (else it is just dropped).
    pub fn give(&self, block: Block) {
        if let Ok(v) = Arc::try_unwrap(block) {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            if v.len() == self.size && free.len() < self.limit {
                free.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn block(n: u8) -> Block {
        Arc::new(vec![n; 4])
    }

    #[test]
    fn releases_only_at_the_high_water_mark() {
        let b = BlockBuffer::new(8, 3);
        b.push(block(1));
        b.push(block(2));
        assert!(matches!(b.pop(Duration::from_millis(1)), Pop::Waiting));
        b.push(block(3));
        for want in 1..=3 {
            match b.pop(Duration::from_millis(1)) {
                Pop::Block(got) => assert_eq!(got[0], want),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(b.pop(Duration::from_millis(1)), Pop::Waiting), "ran dry");
        assert_eq!(b.dry_runs(), 1);
        b.push(block(4));
        assert!(matches!(b.pop(Duration::from_millis(1)), Pop::Waiting), "refills to the mark after running dry");
        assert_eq!(b.dry_runs(), 1, "one stop, however long it lasts");
        b.finish();
        assert!(matches!(b.pop(Duration::from_millis(1)), Pop::Block(_)));
        assert!(matches!(b.pop(Duration::from_millis(1)), Pop::End));
    }

    #[test]
    fn the_pool_reuses_only_unshared_blocks_of_its_size() {
        let pool = BlockPool::new(4, 1);
        let mut a = pool.take();
        assert_eq!(a, [0; 4]);
        a[0] = 9;
        let shared = Arc::new(a);
        let other = Arc::clone(&shared);
        pool.give(shared);
        assert_eq!(pool.take(), [0; 4], "a block still held elsewhere is not reused");
        pool.give(other);
        assert_eq!(pool.take(), [9, 0, 0, 0], "the spent block comes back as it was");
        pool.give(Arc::new(vec![1; 3]));
        assert_eq!(pool.take(), [0; 4], "a block of another size is not kept");
    }

    #[test]
    fn bounded_and_abandonable() {
        let b = Arc::new(BlockBuffer::new(2, 1));
        assert!(b.push(block(1)) && b.push(block(2)));
        let b2 = Arc::clone(&b);
        let pusher = thread::spawn(move || b2.push(block(3)));
        b.abandon();
        assert!(!pusher.join().unwrap(), "a full buffer's push is refused once abandoned");
    }
}
