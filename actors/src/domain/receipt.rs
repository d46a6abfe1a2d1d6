//! Receipts: how far a member has received and read a conversation, as high-water
//! marks. They only move forward: a mark below the one stored is stale and changes
//! nothing, so receipts may arrive late, twice, or from several devices in any order.

use super::Seq;

/// Which mark a receipt raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Received up to the seq.
    Delivered,
    /// Read up to the seq (and so received it).
    Read,
}

/// A member's marks in one conversation; 0 means none yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Receipt {
    /// Every event up to this seq reached one of the member's sessions.
    pub delivered: Seq,
    /// The member read up to this seq.
    pub read: Seq,
}

impl Receipt {
    /// The marks after also taking `other` into account: each the higher of the two,
    /// and having read something means having received it.
    pub fn merged(self, other: Receipt) -> Receipt {
        let read = self.read.max(other.read);
        Receipt {
            delivered: self.delivered.max(other.delivered).max(read),
            read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_only_move_forward_and_read_implies_delivered() {
        let now = Receipt {
            delivered: 5,
            read: 3,
        };
        assert_eq!(
            now.merged(Receipt {
                delivered: 2,
                read: 1
            }),
            now
        );
        assert_eq!(
            now.merged(Receipt {
                delivered: 0,
                read: 7
            }),
            Receipt {
                delivered: 7,
                read: 7
            }
        );
    }
}
