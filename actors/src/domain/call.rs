//! Calls between two users: their type and the room that names a pair.

use std::fmt;
use std::str::FromStr;

use super::{Invalid, UserId};

/// The kind of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    /// Video (and audio).
    Video,
    /// Audio only.
    Audio,
}

impl CallType {
    /// Parses `video` or `audio`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "video" => Ok(Self::Video),
            "audio" => Ok(Self::Audio),
            _ => Err(Invalid("must be video or audio")),
        }
    }

    /// `video` or `audio`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }
}

/// The room of a call: the pair of users it is between. Written as their two ids,
/// sorted, joined with `_`, so either party names it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoomId {
    /// The lower id.
    low: UserId,
    /// The higher id.
    high: UserId,
}

impl RoomId {
    /// The room of two users (in either order).
    pub fn of(a: UserId, b: UserId) -> Self {
        Self {
            low: a.min(b),
            high: a.max(b),
        }
    }

    /// Whether `user` is one of its two parties.
    pub fn has(&self, user: UserId) -> bool {
        self.low == user || self.high == user
    }

    /// The party other than `user`, if `user` is one of the two.
    pub fn other_than(&self, user: UserId) -> Option<UserId> {
        if self.low == user {
            Some(self.high)
        } else if self.high == user {
            Some(self.low)
        } else {
            None
        }
    }

    /// The two parties, lower id first.
    pub fn parties(&self) -> (UserId, UserId) {
        (self.low, self.high)
    }
}

impl FromStr for RoomId {
    type Err = Invalid;

    /// Two user ids joined with `_`, in either order, not the same id twice.
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let invalid = Invalid("must be two user ids joined with _");
        let (a, b) = s.split_once('_').ok_or(invalid.clone())?;
        let (a, b) = (
            a.parse::<UserId>().map_err(|_| invalid.clone())?,
            b.parse::<UserId>().map_err(|_| invalid.clone())?,
        );
        if a == b {
            return Err(invalid);
        }
        Ok(Self::of(a, b))
    }
}

impl fmt::Display for RoomId {
    /// Ids are written in lower-case hex, so the byte order of ids is also the order of
    /// their text: the sorted pair reads the same as the text of the ids sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.low, self.high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_is_the_sorted_pair_whoever_names_it() {
        let (a, b) = (UserId::generate(), UserId::generate());
        let mut texts = [a.to_string(), b.to_string()];
        texts.sort();
        let expected = texts.join("_");
        assert_eq!(RoomId::of(a, b).to_string(), expected);
        assert_eq!(RoomId::of(b, a).to_string(), expected);
        let reversed = format!("{}_{}", texts[1], texts[0]);
        assert_eq!(reversed.parse::<RoomId>().unwrap(), RoomId::of(a, b));
        assert_eq!(RoomId::of(a, b).other_than(a), Some(b));
        assert_eq!(RoomId::of(a, b).other_than(UserId::generate()), None);
    }

    #[test]
    fn malformed_rooms_are_refused() {
        let a = UserId::generate();
        for bad in [
            String::new(),
            a.to_string(),
            format!("{a}_"),
            format!("{a}_{a}"),
            format!("{a}-{}", UserId::generate()),
            format!("{a}_{}_x", UserId::generate()),
        ] {
            assert!(bad.parse::<RoomId>().is_err(), "{bad:?}");
        }
    }
}
