//! Every statement the store runs, prepared once at start and kept in one struct.
//!
//! Each binds its table's whole partition key, so the driver routes it to a replica
//! that owns the partition (token-aware, and shard-aware on ScyllaDB). Reads of a
//! partition of unknown size (`contacts`, `user_conversations`, `events_*`) are paged;
//! the rest read one row. Plain inserts are marked idempotent, so the driver may retry
//! them; lightweight transactions are not.

use scylla::client::session::Session;
use scylla::errors::PrepareError;
use scylla::statement::prepared::PreparedStatement;

use super::rows::{EVENT_COLUMNS, LOGIN_COLUMNS};

/// The prepared statements.
pub(super) struct Statements {
    pub(super) insert_user: PreparedStatement,
    pub(super) user: PreparedStatement,
    pub(super) delete_user: PreparedStatement,
    /// LWT: claims an email for an account.
    pub(super) claim_email: PreparedStatement,
    pub(super) email_user: PreparedStatement,
    pub(super) insert_contact: PreparedStatement,
    pub(super) contact_pair: PreparedStatement,
    /// LWT: the one add that makes a pair contacts.
    pub(super) claim_contact_pair: PreparedStatement,
    pub(super) contacts: PreparedStatement,
    pub(super) revoke_token: PreparedStatement,
    pub(super) revoked_token: PreparedStatement,
    pub(super) insert_conversation: PreparedStatement,
    pub(super) index_conversation: PreparedStatement,
    pub(super) unindex_conversation: PreparedStatement,
    pub(super) conversation: PreparedStatement,
    pub(super) insert_group: PreparedStatement,
    pub(super) group: PreparedStatement,
    pub(super) user_conversations: PreparedStatement,
    pub(super) insert_event: PreparedStatement,
    pub(super) insert_client_id: PreparedStatement,
    pub(super) open_bucket: PreparedStatement,
    pub(super) top_bucket: PreparedStatement,
    pub(super) events_ascending: PreparedStatement,
    pub(super) events_descending: PreparedStatement,
    pub(super) event_at: PreparedStatement,
    pub(super) client_id_seq: PreparedStatement,
    pub(super) receipt: PreparedStatement,
    pub(super) receipts: PreparedStatement,
    pub(super) set_delivered: PreparedStatement,
    pub(super) set_read: PreparedStatement,
    pub(super) presence: PreparedStatement,
    pub(super) set_last_seen: PreparedStatement,
    pub(super) set_hide_last_seen: PreparedStatement,
    pub(super) block_user: PreparedStatement,
    pub(super) unblock_user: PreparedStatement,
    pub(super) blocked_users: PreparedStatement,
    /// LWT: a new password hash, only for an account that exists.
    pub(super) set_password_hash: PreparedStatement,
    /// LWT: frees an email, only if this account holds it.
    pub(super) free_email: PreparedStatement,
    pub(super) delete_contact: PreparedStatement,
    /// LWT: forgets a pair's claim (claims are LWTs, so their removal is one too).
    pub(super) free_contact_pair: PreparedStatement,
    pub(super) delete_user_contacts: PreparedStatement,
    pub(super) delete_user_conversations: PreparedStatement,
    pub(super) delete_user_logins: PreparedStatement,
    pub(super) insert_login: PreparedStatement,
    pub(super) login: PreparedStatement,
    pub(super) user_logins: PreparedStatement,
    /// LWT: rotates a refresh token, only from the current one.
    pub(super) rotate_login: PreparedStatement,
    pub(super) touch_login: PreparedStatement,
    /// LWT: signs a login out, saying whether it was there.
    pub(super) delete_login: PreparedStatement,
}

impl Statements {
    /// Prepares everything against keyspace `ks`, paging reads `page_size` rows at a time.
    pub(super) async fn prepare(
        session: &Session,
        ks: &str,
        page_size: u32,
    ) -> Result<Self, PrepareError> {
        let page_size = i32::try_from(page_size.max(1)).unwrap_or(i32::MAX);
        let prepare = |cql: String, idempotent: bool| async move {
            let mut statement = session.prepare(cql).await?;
            statement.set_is_idempotent(idempotent);
            statement.set_page_size(page_size);
            Ok::<_, PrepareError>(statement)
        };
        let write = |cql: String| prepare(cql, true);
        let read = |cql: String| prepare(cql, true);
        let lwt = |cql: String| prepare(cql, false);
        Ok(Self {
            insert_user: write(format!(
                "INSERT INTO {ks}.users (user_id, name, email, password_hash, created_at) \
                 VALUES (?, ?, ?, ?, ?)"
            ))
            .await?,
            user: read(format!(
                "SELECT name, email, password_hash, created_at FROM {ks}.users WHERE user_id = ?"
            ))
            .await?,
            delete_user: write(format!("DELETE FROM {ks}.users WHERE user_id = ?")).await?,
            claim_email: lwt(format!(
                "INSERT INTO {ks}.email_user (email, user_id) VALUES (?, ?) IF NOT EXISTS"
            ))
            .await?,
            email_user: read(format!(
                "SELECT user_id FROM {ks}.email_user WHERE email = ?"
            ))
            .await?,
            insert_contact: write(format!(
                "INSERT INTO {ks}.user_contacts (user_id, contact_id, added_at) VALUES (?, ?, ?)"
            ))
            .await?,
            contact_pair: read(format!(
                "SELECT added_at FROM {ks}.contact_pairs WHERE low_id = ? AND high_id = ?"
            ))
            .await?,
            claim_contact_pair: lwt(format!(
                "INSERT INTO {ks}.contact_pairs (low_id, high_id, added_at) VALUES (?, ?, ?) \
                 IF NOT EXISTS"
            ))
            .await?,
            contacts: read(format!(
                "SELECT contact_id FROM {ks}.user_contacts WHERE user_id = ?"
            ))
            .await?,
            revoke_token: write(format!(
                "INSERT INTO {ks}.revoked_tokens (jti, expires_at) VALUES (?, ?) USING TTL ?"
            ))
            .await?,
            revoked_token: read(format!(
                "SELECT expires_at FROM {ks}.revoked_tokens WHERE jti = ?"
            ))
            .await?,
            insert_conversation: write(format!(
                "INSERT INTO {ks}.conversations (conversation_id, participants, created_at) \
                 VALUES (?, ?, ?)"
            ))
            .await?,
            index_conversation: write(format!(
                "INSERT INTO {ks}.user_conversations (user_id, conversation_id) VALUES (?, ?)"
            ))
            .await?,
            unindex_conversation: write(format!(
                "DELETE FROM {ks}.user_conversations WHERE user_id = ? AND conversation_id = ?"
            ))
            .await?,
            receipt: read(format!(
                "SELECT delivered, read_seq FROM {ks}.receipts \
                 WHERE conversation_id = ? AND user_id = ?"
            ))
            .await?,
            receipts: read(format!(
                "SELECT user_id, delivered, read_seq FROM {ks}.receipts WHERE conversation_id = ?"
            ))
            .await?,
            set_delivered: write(format!(
                "UPDATE {ks}.receipts USING TIMESTAMP ? SET delivered = ? \
                 WHERE conversation_id = ? AND user_id = ?"
            ))
            .await?,
            set_read: write(format!(
                "UPDATE {ks}.receipts USING TIMESTAMP ? SET read_seq = ? \
                 WHERE conversation_id = ? AND user_id = ?"
            ))
            .await?,
            presence: read(format!(
                "SELECT last_seen, hide_last_seen FROM {ks}.user_presence WHERE user_id = ?"
            ))
            .await?,
            set_last_seen: write(format!(
                "UPDATE {ks}.user_presence SET last_seen = ? WHERE user_id = ?"
            ))
            .await?,
            set_hide_last_seen: write(format!(
                "UPDATE {ks}.user_presence SET hide_last_seen = ? WHERE user_id = ?"
            ))
            .await?,
            block_user: write(format!(
                "INSERT INTO {ks}.user_blocks (user_id, blocked_id, blocked_at) VALUES (?, ?, ?)"
            ))
            .await?,
            unblock_user: write(format!(
                "DELETE FROM {ks}.user_blocks WHERE user_id = ? AND blocked_id = ?"
            ))
            .await?,
            blocked_users: read(format!(
                "SELECT blocked_id FROM {ks}.user_blocks WHERE user_id = ?"
            ))
            .await?,
            insert_group: write(format!(
                "INSERT INTO {ks}.conversation_groups (conversation_id, info) VALUES (?, ?)"
            ))
            .await?,
            group: read(format!(
                "SELECT info FROM {ks}.conversation_groups WHERE conversation_id = ?"
            ))
            .await?,
            conversation: read(format!(
                "SELECT participants, created_at FROM {ks}.conversations \
                 WHERE conversation_id = ?"
            ))
            .await?,
            user_conversations: read(format!(
                "SELECT conversation_id FROM {ks}.user_conversations WHERE user_id = ?"
            ))
            .await?,
            insert_event: write(format!(
                "INSERT INTO {ks}.events (conversation_id, bucket, seq, event_id, sender_id, \
                 client_id, at, kind, body, receiver_id, target, membership) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_client_id: write(format!(
                "INSERT INTO {ks}.client_ids (conversation_id, sender_id, client_id, seq) \
                 VALUES (?, ?, ?, ?)"
            ))
            .await?,
            open_bucket: write(format!(
                "INSERT INTO {ks}.event_buckets (conversation_id, bucket) VALUES (?, ?)"
            ))
            .await?,
            top_bucket: read(format!(
                "SELECT bucket FROM {ks}.event_buckets WHERE conversation_id = ? LIMIT 1"
            ))
            .await?,
            events_ascending: read(format!(
                "SELECT {EVENT_COLUMNS} FROM {ks}.events \
                 WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ? \
                 ORDER BY seq ASC LIMIT ?"
            ))
            .await?,
            events_descending: read(format!(
                "SELECT {EVENT_COLUMNS} FROM {ks}.events \
                 WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ? \
                 ORDER BY seq DESC LIMIT ?"
            ))
            .await?,
            event_at: read(format!(
                "SELECT {EVENT_COLUMNS} FROM {ks}.events \
                 WHERE conversation_id = ? AND bucket = ? AND seq = ?"
            ))
            .await?,
            client_id_seq: read(format!(
                "SELECT seq FROM {ks}.client_ids \
                 WHERE conversation_id = ? AND sender_id = ? AND client_id = ?"
            ))
            .await?,
            set_password_hash: lwt(format!(
                "UPDATE {ks}.users SET password_hash = ? WHERE user_id = ? IF EXISTS"
            ))
            .await?,
            free_email: lwt(format!(
                "DELETE FROM {ks}.email_user WHERE email = ? IF user_id = ?"
            ))
            .await?,
            delete_contact: write(format!(
                "DELETE FROM {ks}.user_contacts WHERE user_id = ? AND contact_id = ?"
            ))
            .await?,
            free_contact_pair: lwt(format!(
                "DELETE FROM {ks}.contact_pairs WHERE low_id = ? AND high_id = ? IF EXISTS"
            ))
            .await?,
            delete_user_contacts: write(format!(
                "DELETE FROM {ks}.user_contacts WHERE user_id = ?"
            ))
            .await?,
            delete_user_conversations: write(format!(
                "DELETE FROM {ks}.user_conversations WHERE user_id = ?"
            ))
            .await?,
            delete_user_logins: write(format!("DELETE FROM {ks}.user_logins WHERE user_id = ?"))
                .await?,
            insert_login: write(format!(
                "INSERT INTO {ks}.user_logins (user_id, login_id, device, created_at, \
                 last_seen_at, refresh_hash, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            login: read(format!(
                "SELECT {LOGIN_COLUMNS} FROM {ks}.user_logins WHERE user_id = ? AND login_id = ?"
            ))
            .await?,
            user_logins: read(format!(
                "SELECT {LOGIN_COLUMNS} FROM {ks}.user_logins WHERE user_id = ?"
            ))
            .await?,
            rotate_login: lwt(format!(
                "UPDATE {ks}.user_logins SET refresh_hash = ?, expires_at = ?, last_seen_at = ? \
                 WHERE user_id = ? AND login_id = ? IF refresh_hash = ? AND expires_at > ?"
            ))
            .await?,
            touch_login: write(format!(
                "UPDATE {ks}.user_logins SET last_seen_at = ? WHERE user_id = ? AND login_id = ?"
            ))
            .await?,
            delete_login: lwt(format!(
                "DELETE FROM {ks}.user_logins WHERE user_id = ? AND login_id = ? IF EXISTS"
            ))
            .await?,
        })
    }
}
