//! The conversation actor: orders one conversation's events and routes them.
//!
//! A send is checked (member? retry of a known client id?), queued, and given its seq
//! only when its batch goes to the group commit. At most one batch per conversation is
//! in flight, and while it is in flight new sends accumulate into the next batch. If a
//! commit fails, the store may still hold part of it (ScyllaDB writes a batch as many
//! writes), so before handing out seqs again the actor reads back where its stream
//! ends and which client ids it holds: no gap appears, nothing stored is overwritten,
//! and a retry of an event that did land is answered with it.
//!
//! Once the batch is durable, the committer wakes this actor, which hands the events to
//! the fan-out, acks each sender, and cuts the next batch. Deliveries of one batch are
//! therefore all handed out before the next batch's, and one conversation's fan-out never
//! waits behind another's.

pub(crate) mod msg;
mod recent;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::api::{SendError, Sent};
use crate::commit::Outcome;
use crate::context::Shared;
use crate::domain::{
    ClientId, Conversation, Event, EventId, EventKind, Refusal, Seq, SessionId, Timestamp, UserId,
};
use crate::fanout::Delivery;
use crate::inspect::ActorStats;
use crate::key::Key;
use crate::lifecycle::Idle;
use crate::placement::LeaseToken;
use crate::registry::msg::RegistryMsg;
use crate::store::StoreResult;
use msg::{ConversationMsg, SendReply};
use recent::{Recent, RecentIds};

/// The conversation actor.
pub(crate) struct ConversationActor;

/// Its arguments: the conversation, already loaded (or created) by the registry.
pub(crate) struct ConversationArgs {
    pub(crate) conversation: Conversation,
    pub(crate) shared: Arc<Shared>,
    pub(crate) registry: ActorRef<RegistryMsg>,
    /// Where it publishes its pending work for inspection.
    pub(crate) stats: Arc<ActorStats>,
}

struct PendingSend {
    from: UserId,
    kind: EventKind,
    client_id: Option<ClientId>,
    origin: Option<SessionId>,
    replies: Vec<SendReply>,
    /// Retries of this same send that arrived while it was queued: answered with the
    /// same event, marked as duplicates.
    retries: Vec<SendReply>,
}

/// The batch whose commit is under way.
struct InFlight {
    outcome: Outcome,
    first_seq: Seq,
    events: Vec<Arc<Event>>,
    routes: Vec<Route>,
    /// Who receives each event: the members when it was sequenced (for a membership
    /// change, those before it and after it, so the removed learn of their removal and
    /// the added of their addition). Consecutive events share one list.
    audiences: Vec<Arc<[UserId]>>,
}

/// Who waits for one event of a batch.
struct Route {
    origin: Option<SessionId>,
    replies: Vec<SendReply>,
    retries: Vec<SendReply>,
}

/// Its state.
pub(crate) struct ConversationState {
    conversation: Conversation,
    shared: Arc<Shared>,
    next_seq: Seq,
    recent: RecentIds,
    pending: Vec<PendingSend>,
    /// Retries of an event whose batch is in flight: answered when it lands.
    parked: Vec<PendingSend>,
    in_flight: Option<InFlight>,
    /// A commit failed: `next_seq` and `recent` must be read back from the store before
    /// the next batch is cut.
    stale: bool,
    /// Messages this actor has sequenced a delete of: an edit or a second delete
    /// accepted before that delete was sequenced is refused when its turn comes.
    erased: std::collections::HashSet<Seq>,
    /// The lease this node held on the conversation when the actor started: it
    /// sequences and acks only while that same lease is held (always, on one node).
    lease: Option<LeaseToken>,
    idle: Idle,
}

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ConversationArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let shared = args.shared;
        // A previous incarnation may have a commit queued; wait for it before reading
        // the last seq, or two events could get the same one.
        shared.committer.barrier().await;
        let id = args.conversation.id;
        // Read before the last seq: events a previous owner committed are in the store
        // once its lease has lapsed.
        let lease = shared.placement.token(id);
        let last = shared.store.last_event(id).await?.map_or(0, |e| e.seq);
        let capacity = shared.config.recent_client_ids;
        let recent = RecentIds::load(shared.store.as_ref(), id, last, capacity).await?;
        let idle = Idle::start(
            &myself,
            Key::Conversation(id),
            &shared,
            args.registry,
            args.stats,
            || ConversationMsg::IdleCheck,
        );
        Ok(ConversationState {
            conversation: args.conversation,
            recent,
            shared,
            next_seq: last + 1,
            pending: Vec::new(),
            parked: Vec::new(),
            in_flight: None,
            stale: false,
            erased: Default::default(),
            lease,
            idle,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %state.conversation.id))]
    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: ConversationMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConversationMsg::Send { request, reply } => {
                let request = *request;
                state.idle.touch();
                state.idle.stats().handled();
                crate::fault::check_conversation(&request.kind);
                let send = PendingSend {
                    from: request.from,
                    kind: request.kind,
                    client_id: request.client_id,
                    origin: request.origin,
                    replies: vec![reply],
                    retries: Vec::new(),
                };
                accept(state, send).await;
            }
            ConversationMsg::Committed => {
                if let Some(mut flight) = state.in_flight.take() {
                    match flight.outcome.try_recv() {
                        Ok(result) => finish(state, flight, Some(result)).await,
                        Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                            finish(state, flight, None).await
                        }
                        // Not this batch's wake-up (cannot happen: the outcome is sent
                        // before the wake); keep waiting.
                        Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                            state.in_flight = Some(flight)
                        }
                    }
                }
            }
            ConversationMsg::IdleCheck => {
                let quiet = state.pending.is_empty() && state.in_flight.is_none();
                state.idle.check(&myself.get_cell(), &state.shared, quiet);
            }
        }
        if state.in_flight.is_none() && !state.pending.is_empty() && !leased(state) {
            // Another node may sequence this conversation now: refuse (the senders
            // retry, and reach the owner), and stop, so a later lease starts afresh.
            refuse_pending(state);
            myself.stop(Some("lease lost".into()));
        }
        if state.in_flight.is_none() && !state.pending.is_empty() {
            if state.stale {
                resync(state).await;
            }
            if !state.pending.is_empty() {
                state.in_flight = Some(submit(state, Some(myself.clone())));
            }
        }
        let in_flight = state.in_flight.as_ref().map_or(0, |f| f.routes.len());
        state
            .idle
            .stats()
            .set_queue(state.pending.len() + state.parked.len() + in_flight);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Stopping (idle or shutdown) must not drop accepted sends: finish the batch in
        // flight, then commit what is still pending.
        if let Some(flight) = state.in_flight.take() {
            drain(state, flight).await;
        }
        while !state.pending.is_empty() {
            if !leased(state) {
                refuse_pending(state);
                break;
            }
            if state.stale {
                resync(state).await;
                if state.pending.is_empty() {
                    break;
                }
            }
            let flight = submit(state, None);
            drain(state, flight).await;
        }
        Ok(())
    }
}

/// Whether this node still holds the lease the actor started under.
fn leased(state: &ConversationState) -> bool {
    state
        .lease
        .is_some_and(|token| state.shared.placement.holds(state.conversation.id, token))
}

/// Answers every queued send `Unavailable`: this node may not sequence them.
fn refuse_pending(state: &mut ConversationState) {
    for send in std::mem::take(&mut state.pending) {
        reply_all(send.replies, Err(SendError::Unavailable));
        reply_all(send.retries, Err(SendError::Unavailable));
    }
}

/// Waits for a batch's outcome outside the mailbox (the actor is stopping), then
/// finishes it.
async fn drain(state: &mut ConversationState, mut flight: InFlight) {
    let outcome = (&mut flight.outcome).await.ok();
    finish(state, flight, outcome).await;
}

/// Checks a send and queues it, or answers it at once when it is a known retry.
async fn accept(state: &mut ConversationState, send: PendingSend) {
    // A retry of a committed send is answered with its event first, whatever happened
    // since: the sender may have been removed, or the message an edit changed deleted,
    // and the retry's answer is still the original's. `recent` is what this
    // conversation remembers of the id; the checks below change none of it.
    let recent = send
        .client_id
        .as_ref()
        .and_then(|cid| state.recent.get(&(send.from, cid.clone())).copied());
    if let Some(cid) = &send.client_id {
        let maybe_committed = match recent {
            Some(Recent::Committed) => true,
            Some(Recent::InFlight) => false,
            // Not among the recent ids: only the store knows, unless `recent` holds
            // every id of this conversation.
            None => !state.recent.complete(),
        };
        if maybe_committed {
            match state
                .shared
                .store
                .event_by_client_id(state.conversation.id, send.from, cid)
                .await
            {
                Ok(Some(e)) => {
                    state
                        .recent
                        .insert((send.from, cid.clone()), Recent::Committed);
                    return reply_all(
                        send.replies,
                        Ok(Sent {
                            event: Arc::new(e),
                            duplicate: true,
                        }),
                    );
                }
                Ok(None) => {}
                Err(e) => return reply_all(send.replies, Err(SendError::Store(e))),
            }
        }
    }
    // A first look, so most refusals need no queueing; `submit` decides for good,
    // against the state every earlier event of the stream left.
    let cap = state.shared.config.max_group_members;
    if let Err(refusal) = state.conversation.check(send.from, &send.kind, cap) {
        return reply_all(send.replies, Err(refusal.into()));
    }
    // An edit or a delete is checked against its target as stored; one deleted since
    // (by an event not yet committed) is caught in `submit`. Amendments come only from
    // the services (a call's end), which check their target.
    if let EventKind::Edit { target, .. } | EventKind::Delete { target } = &send.kind {
        let range = crate::store::HistoryRange {
            after: Some(target.saturating_sub(1)),
            before: Some(target.saturating_add(1)),
            limit: 1,
            from_newest: false,
        };
        let found = match state
            .shared
            .store
            .events(state.conversation.id, range)
            .await
        {
            Ok(mut events) => events.pop(),
            Err(e) => return reply_all(send.replies, Err(SendError::Store(e))),
        };
        if let Err(refusal) = state
            .conversation
            .check_target(send.from, &send.kind, found.as_ref())
        {
            return reply_all(send.replies, Err(refusal.into()));
        }
    }
    if matches!(recent, Some(Recent::InFlight)) {
        return state.parked.push(send);
    }
    if let Some(cid) = &send.client_id
        && let Some(p) = state
            .pending
            .iter_mut()
            .find(|p| p.from == send.from && p.client_id.as_ref() == Some(cid))
    {
        // A retry of a send that is still queued: one event, answered twice.
        return p.retries.extend(send.replies);
    }
    state.pending.push(send);
}

/// Reads the end of the stream and its recent client ids back from the store after a
/// failed commit, then checks the queued sends again against them: a send whose event
/// did land after all is answered with it instead of being stored twice. If the store
/// cannot be read either, the queued sends fail as the commit did.
async fn resync(state: &mut ConversationState) {
    let id = state.conversation.id;
    let store = state.shared.store.clone();
    let capacity = state.shared.config.recent_client_ids;
    let loaded = async {
        let last = store.last_event(id).await?.map_or(0, |e| e.seq);
        let recent = RecentIds::load(store.as_ref(), id, last, capacity).await?;
        // Membership changes of the failed batch were folded into the state in memory;
        // the store's record holds those that landed.
        let conversation = store.conversation(id).await?;
        Ok::<_, crate::StoreError>((last, recent, conversation))
    }
    .await;
    let queued = std::mem::take(&mut state.pending);
    match loaded {
        Ok((last, recent, conversation)) => {
            state.next_seq = last + 1;
            state.recent = recent;
            // Deletes of the failed batch may not have landed; what did is in the store,
            // which `accept` reads.
            state.erased.clear();
            if let Some(c) = conversation {
                state.conversation = c;
            }
            state.stale = false;
            for mut send in queued {
                let retries = std::mem::take(&mut send.retries);
                send.replies.extend(retries);
                accept(state, send).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the conversation back after a failed commit");
            for send in queued {
                reply_all(send.replies, Err(SendError::Store(e.clone())));
                reply_all(send.retries, Err(SendError::Store(e.clone())));
            }
        }
    }
}

fn reply_all(replies: Vec<SendReply>, result: Result<Sent, SendError>) {
    for reply in replies {
        let _ = reply.send(result.clone());
    }
}

/// Sequences the pending sends and hands them to the group commit now, inside the
/// handler, so that a successor's barrier is ordered after this commit. `wake` is told
/// when the outcome is ready (`None` while stopping: the caller awaits it).
fn submit(state: &mut ConversationState, wake: Option<ActorRef<ConversationMsg>>) -> InFlight {
    let sends = std::mem::take(&mut state.pending);
    let first_seq = state.next_seq;
    let at = Timestamp::now();
    let mut events = Vec::with_capacity(sends.len());
    let mut routes = Vec::with_capacity(sends.len());
    let mut audiences = Vec::with_capacity(sends.len());
    let mut audience: Arc<[UserId]> = state.conversation.participants.as_slice().into();
    let cap = state.shared.config.max_group_members;
    for send in sends {
        // Decided here, in seq order: an earlier event of this batch may have removed
        // the sender or filled the group.
        let mut verdict = state.conversation.check(send.from, &send.kind, cap);
        if let (Ok(()), EventKind::Edit { target, .. } | EventKind::Delete { target }) =
            (&verdict, &send.kind)
            && state.erased.contains(target)
        {
            verdict = Err(Refusal::Deleted);
        }
        if let Err(refusal) = verdict {
            reply_all(send.replies, Err(refusal.into()));
            reply_all(send.retries, Err(refusal.into()));
            continue;
        }
        if let EventKind::Delete { target } = &send.kind {
            state.erased.insert(*target);
        }
        let mut kind = send.kind;
        if let EventKind::Message(m) | EventKind::Amend { content: m, .. } = &mut kind {
            m.receiver = state.conversation.other_than(send.from);
        }
        let event = Event {
            id: EventId::generate(),
            conversation: state.conversation.id,
            seq: state.next_seq,
            sender: send.from,
            client_id: send.client_id,
            at,
            kind,
        };
        state.next_seq += 1;
        if let Some(cid) = &event.client_id {
            state
                .recent
                .insert((event.sender, cid.clone()), Recent::InFlight);
        }
        if matches!(event.kind, EventKind::Membership(_)) {
            let before = audience.clone();
            state.conversation.apply(&event);
            let mut both: Vec<UserId> = before.iter().copied().collect();
            both.extend(&state.conversation.participants);
            both.sort();
            both.dedup();
            audiences.push(both.into());
            audience = state.conversation.participants.as_slice().into();
        } else {
            audiences.push(audience.clone());
        }
        events.push(Arc::new(event));
        routes.push(Route {
            origin: send.origin,
            replies: send.replies,
            retries: send.retries,
        });
    }
    let outcome = state.shared.committer.commit(events.clone(), wake);
    InFlight {
        outcome,
        first_seq,
        events,
        routes,
        audiences,
    }
}

/// Acts on a batch's outcome: on success, fan-out then acks; on failure, every sender
/// hears so and the seqs are handed out again. `None`: the batch was dropped uncommitted.
async fn finish(state: &mut ConversationState, flight: InFlight, outcome: Option<StoreResult<()>>) {
    let InFlight {
        first_seq,
        events,
        routes,
        audiences,
        ..
    } = flight;
    let committed = match outcome {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(SendError::Store(e)),
        None => Err(SendError::Unavailable),
    };
    // Durable, but the lease lapsed meanwhile: another node may have written these
    // seqs too, so neither deliver nor ack (a retry finds what the store kept).
    let committed = committed.and_then(|()| {
        if leased(state) {
            Ok(())
        } else {
            Err(SendError::Unavailable)
        }
    });
    match committed {
        Ok(()) => {
            let batch: Vec<Delivery> = events
                .into_iter()
                .zip(&routes)
                .map(|(event, route)| (event, route.origin))
                .collect();
            // One hand-over per run of events with the same audience (a batch without
            // membership changes is one run).
            let mut start = 0;
            while start < batch.len() {
                let end = (start + 1..batch.len())
                    .find(|&i| !Arc::ptr_eq(&audiences[i], &audiences[start]))
                    .unwrap_or(batch.len());
                state
                    .shared
                    .fanout
                    .events(&audiences[start], &batch[start..end]);
                start = end;
            }
            for ((event, _), route) in batch.into_iter().zip(routes) {
                if let Some(cid) = &event.client_id {
                    state
                        .recent
                        .insert((event.sender, cid.clone()), Recent::Committed);
                }
                let sent = |duplicate| {
                    Ok(Sent {
                        event: event.clone(),
                        duplicate,
                    })
                };
                reply_all(route.replies, sent(false));
                reply_all(route.retries, sent(true));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, first_seq, "commit failed; sends rejected");
            for route in routes {
                reply_all(route.replies, Err(e.clone()));
                reply_all(route.retries, Err(e.clone()));
            }
            // Part of the batch may be stored: `resync` finds out before the next one.
            state.next_seq = first_seq;
            state.recent.forget_in_flight();
            state.stale = true;
        }
    }
    // Retries that waited for the batch: answer from `recent`, or queue them as fresh
    // sends if their original failed.
    for send in std::mem::take(&mut state.parked) {
        accept(state, send).await;
    }
}
