//! Changing the password and deleting the account: both confirm the current password
//! first (with the login guard's backoff, so a stolen access token is not a way to
//! guess it), and both end sessions: the other devices', or every one.

use std::net::IpAddr;

use actors::domain::{ConversationId, Password, Seq, UserId};
use actors::store::HistoryRange;

use super::{Accounts, AuthUser, login_of};
use crate::service::{ServiceError, TokenProblem};

/// Events read at a time while looking for a deleted account's content.
const ERASE_PAGE: usize = 512;

impl Accounts {
    /// Replaces the caller's password and signs out every other device: their tokens
    /// are refused from now on and their realtime sessions end at once. The device that
    /// asked stays signed in.
    #[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
    pub async fn change_password(
        &self,
        me: &AuthUser,
        current: &str,
        new: Password,
        client: IpAddr,
    ) -> Result<(), ServiceError> {
        self.confirm_password(me, current, client).await?;
        let hash = self.hasher.hash(&new).await?;
        if !self.store.set_password_hash(me.user.id, &hash).await? {
            return Err(ServiceError::Unauthorized(TokenProblem::AccountGone));
        }
        let keep = login_of(&me.claims)?;
        let mut signed_out = 0;
        for login in self.store.user_logins(me.user.id).await? {
            if Some(login.id) != keep {
                self.store.delete_login(me.user.id, login.id).await?;
                signed_out += 1;
            }
        }
        let ended = self
            .messenger
            .revoke_except(me.user.id, me.claims.credential());
        tracing::info!(
            devices_signed_out = signed_out,
            sessions_ended = ended,
            "password changed"
        );
        Ok(())
    }

    /// Deletes the caller's account: every device is signed out, the content of every
    /// message and edit they sent is erased from the store (others' histories keep a
    /// tombstone in its place), and the account, its contacts and its email go, so the
    /// email can register again as a new, unrelated account.
    #[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
    pub async fn delete_account(
        &self,
        me: &AuthUser,
        password: &str,
        client: IpAddr,
    ) -> Result<(), ServiceError> {
        self.confirm_password(me, password, client).await?;
        let user = me.user.id;
        // Sessions first, so nothing more is sent while the content goes.
        for login in self.store.user_logins(user).await? {
            self.store.delete_login(user, login.id).await?;
        }
        self.store
            .revoke_token(&me.claims.jti, me.claims.accepted_until())
            .await?;
        let ended = self.messenger.revoke(user, None);
        let mut erased = 0;
        for conversation in self.store.user_conversations(user).await? {
            erased += self.erase_sent(conversation, user).await?;
        }
        // Last: until here a failure leaves an account its owner can log into and
        // delete again.
        self.store.delete_user(user).await?;
        tracing::info!(
            sessions_ended = ended,
            events_erased = erased,
            "account deleted"
        );
        Ok(())
    }

    /// Erases the content of everything `sender` put into one conversation, a page at a
    /// time; returns how many events.
    async fn erase_sent(
        &self,
        conversation: ConversationId,
        sender: UserId,
    ) -> Result<usize, ServiceError> {
        let mut after: Option<Seq> = None;
        let mut erased = 0;
        loop {
            let page = self
                .store
                .events(
                    conversation,
                    HistoryRange {
                        after,
                        before: None,
                        limit: ERASE_PAGE,
                        from_newest: false,
                    },
                )
                .await?;
            let Some(last) = page.last() else {
                return Ok(erased);
            };
            after = Some(last.seq);
            let seqs: Vec<Seq> = page
                .iter()
                .filter(|e| e.sender == sender && e.kind.has_content())
                .map(|e| e.seq)
                .collect();
            if !seqs.is_empty() {
                self.store.erase_events(conversation, &seqs).await?;
                erased += seqs.len();
            }
            if page.len() < ERASE_PAGE {
                return Ok(erased);
            }
        }
    }
}
