//! Identifiers. Users and messages get time-ordered UUIDv7s; a direct conversation's id
//! is derived from its two participants, so one pair always maps to one conversation
//! without a lookup or a race.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// A string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id")]
pub struct IdError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// The 16 bytes of the id; byte order equals creation order for v7 ids.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Rebuilds an id from [`Self::as_bytes`].
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }

            /// The UUID behind the id.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                // Only the hyphenated form (either case); ids are always written lower-case.
                if s.len() != 36 {
                    return Err(IdError);
                }
                Uuid::parse_str(s).map(Self).map_err(|_| IdError)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// A conversation between users.
    ConversationId
);
uuid_id!(
    /// One event of a conversation's stream (a message, an edit, ...).
    EventId
);
uuid_id!(
    /// One sign-in of a user on a device: the family of every access and refresh token
    /// descended from one login or registration.
    LoginId
);

impl UserId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl EventId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl ConversationId {
    /// A fresh, time-ordered id, for a group (a direct conversation's is derived).
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Whether this id has the form of a direct conversation's (a name-based UUID);
    /// a group's never does, so a group needs no lookup to be told apart.
    pub fn is_direct_form(&self) -> bool {
        self.0.get_version_num() == 5
    }
}

impl LoginId {
    /// A fresh, random id: it is part of a refresh token, so it must not be guessable
    /// from when the login happened.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

/// Namespace for direct-conversation ids (a fixed, random UUID).
const DIRECT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_4d2e_9a7b_4c1d_8e3f_2a5b_7c9d_0e1f);

impl ConversationId {
    /// The one conversation between `a` and `b`, whichever of them asks.
    pub fn direct(a: UserId, b: UserId) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut name = [0u8; 32];
        name[..16].copy_from_slice(lo.as_bytes());
        name[16..].copy_from_slice(hi.as_bytes());
        Self(Uuid::new_v5(&DIRECT_NAMESPACE, &name))
    }
}

/// One WebSocket session (a device or a tab) within this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    /// A session id unique to this process, and (with overwhelming odds) among the nodes
    /// of a cluster: its high half is drawn at random once per process, so another
    /// node's fan-out can skip the sending session by its id alone.
    pub fn next() -> Self {
        static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let base = *BASE.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            // Randomly keyed per process: no dependency on a random number crate.
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            (random & 0x7fff_ffff) << 32
        });
        Self(base | (NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff))
    }

    /// The id as a number, to pass it to another node.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// An id another node passed as [`Self::as_u64`].
    pub fn from_u64(raw: u64) -> Self {
        Self(raw)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_conversation_id_does_not_depend_on_who_asks() {
        let (a, b) = (UserId::generate(), UserId::generate());
        assert_eq!(ConversationId::direct(a, b), ConversationId::direct(b, a));
        assert_ne!(ConversationId::direct(a, b), ConversationId::direct(a, a));
    }

    #[test]
    fn ids_round_trip_through_their_string_form_only_when_canonical() {
        let id = UserId::generate();
        assert_eq!(id.to_string().parse::<UserId>(), Ok(id));
        assert!(id.to_string().to_uppercase().parse::<UserId>().is_ok());
        assert!(id.as_uuid().simple().to_string().parse::<UserId>().is_err());
        assert!("".parse::<UserId>().is_err());
        assert!("not-an-id".parse::<UserId>().is_err());
    }
}
