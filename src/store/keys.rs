//! Key and small-value encodings for the fjall store (the layout table is in
//! [`super::fjall`]).
//!
//! Ids are their 16 raw bytes and seqs and timestamps are big-endian `u64`s, so that the
//! byte order fjall sorts by is the numeric (and, for UUIDv7, the creation) order. Every
//! composite key is fixed-width except for a trailing variable part (a client id), so
//! no separator or escaping is needed and one prefix can never be mistaken for another.
//!
//! Decoders check lengths and return a [`StoreError`] for anything malformed: stored
//! bytes never cause a panic.

use std::ops::Bound;

use actors::StoreError;
use actors::domain::{ClientId, ConversationId, Seq, UserId};

/// Bytes in an id.
pub(crate) const ID_LEN: usize = 16;

/// Bytes in a seq or a timestamp.
const U64_LEN: usize = 8;

/// The longest key fjall accepts.
const MAX_KEY_LEN: usize = u16::MAX as usize;

/// A `conv_msg` key: conversation id ++ seq.
pub(crate) type MessageKey = [u8; ID_LEN + U64_LEN];

/// Two ids side by side: `user_contact` (user ++ contact) and `user_conv`
/// (user ++ conversation).
pub(crate) fn id_pair(first: &[u8; ID_LEN], second: &[u8; ID_LEN]) -> [u8; 2 * ID_LEN] {
    let mut key = [0; 2 * ID_LEN];
    key[..ID_LEN].copy_from_slice(first);
    key[ID_LEN..].copy_from_slice(second);
    key
}

/// The second id of an [`id_pair`] key.
pub(crate) fn second_id(key: &[u8]) -> Result<[u8; ID_LEN], StoreError> {
    if key.len() != 2 * ID_LEN {
        return Err(corrupt("id pair key", 2 * ID_LEN, key.len()));
    }
    id(&key[ID_LEN..])
}

/// A `conv_msg` key.
pub(crate) fn message(conversation: ConversationId, seq: Seq) -> MessageKey {
    let mut key = [0; ID_LEN + U64_LEN];
    key[..ID_LEN].copy_from_slice(conversation.as_bytes());
    key[ID_LEN..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Splits a `conv_msg` key into its conversation and seq.
pub(crate) fn split_message(key: &[u8]) -> Result<(ConversationId, Seq), StoreError> {
    if key.len() != ID_LEN + U64_LEN {
        return Err(corrupt("message key", ID_LEN + U64_LEN, key.len()));
    }
    let conversation = ConversationId::from_bytes(id(&key[..ID_LEN])?);
    Ok((conversation, u64_value(&key[ID_LEN..])?))
}

/// The `conv_msg` key bounds of the seqs strictly between `after` and `before` in one
/// conversation, or `None` when no seq can lie there. Both bounds carry the
/// conversation's prefix, so a range never reaches into a neighbouring conversation.
pub(crate) fn message_range(
    conversation: ConversationId,
    after: Option<Seq>,
    before: Option<Seq>,
) -> Option<(Bound<MessageKey>, Bound<MessageKey>)> {
    let lowest = match after {
        None => 0,
        Some(after) => after.checked_add(1)?,
    };
    let upper = match before {
        None => Bound::Included(message(conversation, Seq::MAX)),
        Some(before) if before <= lowest => return None,
        Some(before) => Bound::Excluded(message(conversation, before)),
    };
    Some((Bound::Included(message(conversation, lowest)), upper))
}

/// A `conv_client_msg` key: conversation id ++ sender id ++ client id (UTF-8, at most
/// 64 bytes, so the key always fits).
pub(crate) fn client_message(
    conversation: ConversationId,
    from: UserId,
    client_id: &ClientId,
) -> Vec<u8> {
    let client_id = client_id.as_str().as_bytes();
    let mut key = Vec::with_capacity(2 * ID_LEN + client_id.len());
    key.extend_from_slice(conversation.as_bytes());
    key.extend_from_slice(from.as_bytes());
    key.extend_from_slice(client_id);
    key
}

/// A `revoked_token` key: the token id's bytes. fjall refuses (by panicking) empty keys
/// and keys over 64 KiB, so those are an error here instead.
pub(crate) fn token(jti: &str) -> Result<&[u8], StoreError> {
    if jti.is_empty() || jti.len() > MAX_KEY_LEN {
        return Err(StoreError::msg(format!(
            "a token id must be 1 to {MAX_KEY_LEN} bytes, got {}",
            jti.len()
        )));
    }
    Ok(jti.as_bytes())
}

/// An id read back from its 16 bytes.
pub(crate) fn id(bytes: &[u8]) -> Result<[u8; ID_LEN], StoreError> {
    bytes
        .try_into()
        .map_err(|_| corrupt("id", ID_LEN, bytes.len()))
}

/// A seq or a timestamp, as stored.
pub(crate) fn u64_bytes(n: u64) -> [u8; U64_LEN] {
    n.to_be_bytes()
}

/// A seq or a timestamp read back.
pub(crate) fn u64_value(bytes: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; U64_LEN] = bytes
        .try_into()
        .map_err(|_| corrupt("u64", U64_LEN, bytes.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

fn corrupt(what: &str, expected: usize, found: usize) -> StoreError {
    StoreError::msg(format!(
        "corrupt {what}: expected {expected} bytes, found {found}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(last: u8) -> ConversationId {
        let mut bytes = [0x5a; ID_LEN];
        bytes[ID_LEN - 1] = last;
        ConversationId::from_bytes(bytes)
    }

    /// Seqs that sit on byte boundaries, where a little-endian or variable-length
    /// encoding would sort wrongly.
    const EDGES: [Seq; 14] = [
        0,
        1,
        2,
        0xff,
        0x100,
        0x101,
        0xffff,
        0x1_0000,
        0xff_ffff_ffff,
        1 << 40,
        u32::MAX as u64,
        1 << 32,
        Seq::MAX - 1,
        Seq::MAX,
    ];

    /// A small deterministic generator (xorshift64), enough to spread seqs over the
    /// whole range without a dependency.
    fn pseudo_random_seqs(n: usize) -> Vec<Seq> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mix in small numbers too, and vary the magnitude.
                x >> (i % 64)
            })
            .collect()
    }

    #[test]
    fn message_keys_sort_bytewise_in_seq_order() {
        let mut seqs = pseudo_random_seqs(2000);
        seqs.extend(EDGES);
        for pair in seqs.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let (ka, kb) = (message(conv(1), a), message(conv(1), b));
            assert_eq!(
                a.cmp(&b),
                ka.cmp(&kb),
                "seqs {a} and {b} sort differently as keys"
            );
        }
    }

    #[test]
    fn message_keys_of_one_conversation_all_sort_before_the_next_conversation() {
        for seq in EDGES {
            assert!(message(conv(1), seq) < message(conv(2), 0));
            assert!(message(conv(1), seq) > message(conv(0), Seq::MAX));
        }
    }

    #[test]
    fn message_keys_round_trip() {
        for seq in EDGES.into_iter().chain(pseudo_random_seqs(200)) {
            let key = message(conv(7), seq);
            let (c, s) = split_message(&key).unwrap();
            assert_eq!((c, s), (conv(7), seq));
        }
    }

    #[test]
    fn malformed_keys_and_values_are_errors_not_panics() {
        assert!(split_message(&[0; 23]).is_err());
        assert!(split_message(&[0; 25]).is_err());
        assert!(split_message(&[]).is_err());
        assert!(second_id(&[0; 31]).is_err());
        assert!(u64_value(&[0; 7]).is_err());
        assert!(id(&[0; 17]).is_err());
    }

    #[test]
    fn id_pairs_keep_the_second_id() {
        let (a, b) = ([1; ID_LEN], [2; ID_LEN]);
        assert_eq!(second_id(&id_pair(&a, &b)).unwrap(), b);
        assert!(id_pair(&a, &b).starts_with(&a));
    }

    #[test]
    fn a_message_range_is_the_open_interval_or_nothing() {
        use std::ops::RangeBounds;
        let c = conv(3);
        let holds = |range: &(Bound<MessageKey>, Bound<MessageKey>), conversation, seq| {
            range.contains(&message(conversation, seq))
        };

        let all = message_range(c, None, None).unwrap();
        assert!(holds(&all, c, 0) && holds(&all, c, Seq::MAX));
        for seq in EDGES {
            assert!(!holds(&all, conv(2), seq) && !holds(&all, conv(4), seq));
        }

        let r = message_range(c, Some(3), Some(7)).unwrap();
        assert!(!holds(&r, c, 3) && holds(&r, c, 4) && holds(&r, c, 6) && !holds(&r, c, 7));

        assert!(message_range(c, Some(3), Some(4)).is_none());
        assert!(message_range(c, Some(3), Some(3)).is_none());
        assert!(message_range(c, Some(5), Some(2)).is_none());
        assert!(message_range(c, None, Some(0)).is_none());
        assert!(message_range(c, Some(Seq::MAX), None).is_none());
        let top = message_range(c, Some(Seq::MAX - 1), None).unwrap();
        assert!(holds(&top, c, Seq::MAX) && !holds(&top, c, Seq::MAX - 1));
    }

    #[test]
    fn client_message_keys_do_not_collide_across_senders_or_prefixes() {
        let c = conv(1);
        let (a, b) = (
            UserId::from_bytes([1; ID_LEN]),
            UserId::from_bytes([2; ID_LEN]),
        );
        let id1 = ClientId::parse("c-1").unwrap();
        let id10 = ClientId::parse("c-10").unwrap();
        assert_ne!(client_message(c, a, &id1), client_message(c, b, &id1));
        assert_ne!(client_message(c, a, &id1), client_message(c, a, &id10));
        assert_ne!(client_message(c, a, &id1), client_message(conv(2), a, &id1));
    }

    #[test]
    fn token_ids_outside_what_fjall_accepts_are_refused() {
        assert!(token("").is_err());
        assert!(token(&"x".repeat(MAX_KEY_LEN + 1)).is_err());
        assert_eq!(token("abc").unwrap(), b"abc");
    }
}
