//! Which seqs of one conversation a session has written: a few disjoint, merged ranges.
//! With it a session never writes a message twice, knows which part of a conversation a
//! `sync` must replay, and notices a gap in live deliveries.

use actors::domain::Seq;

/// Ranges kept per conversation; older ones are forgotten first (the client's cursor
/// covers them).
const MAX_RANGES: usize = 16;

/// Sorted, disjoint, non-adjacent inclusive ranges of seqs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Written(Vec<(Seq, Seq)>);

impl Written {
    /// Whether `seq` was written.
    pub(crate) fn contains(&self, seq: Seq) -> bool {
        self.0.iter().any(|&(a, b)| a <= seq && seq <= b)
    }

    /// The highest seq written, if any.
    pub(crate) fn top(&self) -> Option<Seq> {
        self.0.last().map(|&(_, b)| b)
    }

    /// Records `from..=to` as written, merging with neighbours.
    pub(crate) fn insert(&mut self, from: Seq, to: Seq) {
        if from > to {
            return;
        }
        let (mut a, mut b) = (from, to);
        self.0.retain(|&(x, y)| {
            // Overlapping or adjacent ranges merge into the new one.
            let touches = x <= b.saturating_add(1) && a <= y.saturating_add(1);
            if touches {
                a = a.min(x);
                b = b.max(y);
            }
            !touches
        });
        let at = self.0.partition_point(|&(x, _)| x < a);
        self.0.insert(at, (a, b));
        if self.0.len() > MAX_RANGES {
            self.0.remove(0);
        }
    }

    /// The highest seq up to which everything after `cursor` is written: `cursor`
    /// itself when `cursor + 1` is not.
    pub(crate) fn complete_from(&self, cursor: Seq) -> Seq {
        self.0
            .iter()
            .find(|&&(a, b)| a <= cursor + 1 && cursor < b)
            .map_or(cursor, |&(_, b)| b)
    }

    /// The stretches after `cursor` that are not written, as (after, before) bounds
    /// (exclusive; `None` = unbounded), in order.
    pub(crate) fn gaps_after(&self, cursor: Seq) -> Vec<(Seq, Option<Seq>)> {
        let mut gaps = Vec::new();
        let mut after = cursor;
        for &(a, b) in &self.0 {
            if b <= after {
                continue;
            }
            if a > after + 1 {
                gaps.push((after, Some(a)));
            }
            after = after.max(b);
        }
        gaps.push((after, None));
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(ranges: &[(Seq, Seq)]) -> Written {
        let mut w = Written::default();
        for &(a, b) in ranges {
            w.insert(a, b);
        }
        w
    }

    #[test]
    fn ranges_merge_when_they_touch_and_stay_apart_when_they_do_not() {
        assert_eq!(w(&[(1, 3), (4, 4)]).0, [(1, 4)]);
        assert_eq!(w(&[(5, 6), (1, 2)]).0, [(1, 2), (5, 6)]);
        assert_eq!(w(&[(1, 2), (5, 6), (3, 4)]).0, [(1, 6)]);
        assert_eq!(w(&[(2, 9), (3, 4)]).0, [(2, 9)]);
    }

    #[test]
    fn an_old_seq_does_not_disturb_later_ranges() {
        let mut written = w(&[(5, 7)]);
        written.insert(2, 2);
        assert!(written.contains(2) && written.contains(6) && !written.contains(3));
        assert_eq!(written.top(), Some(7));
    }

    #[test]
    fn gaps_are_what_a_sync_must_replay() {
        let written = w(&[(3, 4), (7, 8)]);
        assert_eq!(
            written.gaps_after(0),
            [(0, Some(3)), (4, Some(7)), (8, None)]
        );
        assert_eq!(written.gaps_after(5), [(5, Some(7)), (8, None)]);
        assert_eq!(written.gaps_after(9), [(9, None)]);
        assert_eq!(Written::default().gaps_after(2), [(2, None)]);
    }

    #[test]
    fn completeness_follows_the_range_holding_the_next_seq() {
        let written = w(&[(3, 4), (7, 8)]);
        assert_eq!(written.complete_from(2), 4);
        assert_eq!(written.complete_from(4), 4);
        assert_eq!(written.complete_from(5), 5);
        assert_eq!(written.complete_from(6), 8);
    }

    #[test]
    fn only_the_newest_ranges_are_kept() {
        let mut written = Written::default();
        for i in 0..40 {
            written.insert(i * 10, i * 10);
        }
        assert_eq!(written.0.len(), MAX_RANGES);
        assert_eq!(written.top(), Some(390));
    }
}
