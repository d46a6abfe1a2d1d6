//! Whether the calling thread may block on the store's I/O.
//!
//! The group commit runs on a thread of its own that exists to wait for the store. A
//! store that would otherwise hand blocking work (a write and its fsync) to the runtime's
//! blocking pool may do it inline there: the hand-over and the wake-up back cost two
//! thread switches per commit, more CPU than the rest of the commit's bookkeeping.

use std::cell::Cell;

thread_local! {
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread may block on I/O (true only on the group commit's thread).
pub fn may_block() -> bool {
    MAY_BLOCK.with(Cell::get)
}

/// Marks this thread as one that exists to wait for the store.
pub(crate) fn allow_blocking() {
    MAY_BLOCK.with(|b| b.set(true));
}
