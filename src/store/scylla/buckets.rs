//! Seq buckets: how a conversation's stream is cut into bounded partitions, and which
//! partitions a history range touches. Pure arithmetic, so it is tested on its own.
//!
//! Bucket `b` holds seqs `b * size .. (b + 1) * size`; seq 0 is never used, so bucket 0
//! starts at 1. Seqs are CQL `bigint`s: a seq above `i64::MAX` cannot be stored, and a
//! range bound above it is clamped.

use actors::domain::Seq;

/// The largest seq a `bigint` holds.
pub(super) const MAX_SEQ: Seq = i64::MAX as Seq;

/// The bucket of a seq.
pub(super) fn of(seq: Seq, size: u64) -> u64 {
    seq / size
}

/// The first seq of a bucket: an event with this seq opens the bucket, and the batch
/// that holds it records the bucket in `event_buckets` before writing it.
pub(super) fn opens(seq: Seq, size: u64) -> bool {
    seq == 1 || seq.is_multiple_of(size)
}

/// The seqs a history range can return, both included, or `None` when it is empty.
pub(super) fn seq_bounds(after: Option<Seq>, before: Option<Seq>) -> Option<(Seq, Seq)> {
    let lowest = match after {
        None => 1,
        Some(after) => after.checked_add(1)?,
    };
    let highest = match before {
        None => MAX_SEQ,
        Some(0) => return None,
        Some(before) => (before - 1).min(MAX_SEQ),
    };
    (lowest <= highest).then_some((lowest, highest))
}

/// The buckets to read for seqs `lowest..=highest` in a conversation whose newest bucket
/// is `top`, in reading order: newest first when `from_newest`, oldest first otherwise.
pub(super) fn walk(
    (lowest, highest): (Seq, Seq),
    top: u64,
    size: u64,
    from_newest: bool,
) -> Box<dyn Iterator<Item = u64> + Send> {
    let first = of(lowest, size);
    let last = of(highest, size).min(top);
    if first > last {
        return Box::new(std::iter::empty());
    }
    if from_newest {
        Box::new((first..=last).rev())
    } else {
        Box::new(first..=last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_runs_of_size_seqs_and_bucket_zero_starts_at_one() {
        assert_eq!(of(1, 16), 0);
        assert_eq!(of(15, 16), 0);
        assert_eq!(of(16, 16), 1);
        assert_eq!(of(MAX_SEQ, 1024), MAX_SEQ / 1024);
        let openers: Vec<Seq> = (0..50).filter(|&s| opens(s, 16)).collect();
        assert_eq!(openers, [0, 1, 16, 32, 48]);
    }

    #[test]
    fn seq_bounds_are_the_open_interval_or_nothing() {
        assert_eq!(seq_bounds(None, None), Some((1, MAX_SEQ)));
        assert_eq!(seq_bounds(Some(3), Some(7)), Some((4, 6)));
        assert_eq!(seq_bounds(Some(3), Some(5)), Some((4, 4)));
        assert_eq!(seq_bounds(Some(3), Some(4)), None);
        assert_eq!(seq_bounds(Some(7), Some(3)), None);
        assert_eq!(seq_bounds(None, Some(1)), None);
        assert_eq!(seq_bounds(None, Some(0)), None);
        assert_eq!(seq_bounds(Some(Seq::MAX), None), None);
        assert_eq!(seq_bounds(None, Some(Seq::MAX)), Some((1, MAX_SEQ)));
        assert_eq!(seq_bounds(Some(MAX_SEQ), None), None);
    }

    #[test]
    fn a_walk_covers_exactly_the_buckets_of_the_range_up_to_the_newest() {
        let walked =
            |bounds, top, from_newest| walk(bounds, top, 10, from_newest).collect::<Vec<_>>();
        assert_eq!(walked((1, MAX_SEQ), 3, false), [0, 1, 2, 3]);
        assert_eq!(walked((1, MAX_SEQ), 3, true), [3, 2, 1, 0]);
        assert_eq!(walked((25, 41), 9, false), [2, 3, 4]);
        assert_eq!(walked((25, 41), 3, true), [3, 2]);
        assert_eq!(walked((45, 60), 3, false), Vec::<u64>::new());
        assert_eq!(walked((5, 8), 0, true), [0]);
    }
}
