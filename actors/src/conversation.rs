//! The conversation actor: orders one conversation's messages and routes them.
//!
//! A send is checked (participant? retry of a known client id?), queued, and given its
//! seq only when its batch goes to the persistence actor. At most one batch per
//! conversation is in flight: if a commit fails, its seqs are handed out again and no
//! gap can appear, and while it is in flight new sends accumulate into the next batch.
//!
//! Once the batch is durable, the persistence actor's flush task runs the batch's
//! completion: it acks each sender and hands the message to the live user actors of the
//! participants; then it tells the actor, which starts the next batch. Deliveries of
//! one batch are therefore all sent before the next batch's.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::domain::{
    ClientId, Conversation, ConversationId, Message, MessageBody, MessageId, Seq, SessionId,
    Timestamp, UserId,
};
use crate::inspect::ActorStats;
use crate::messenger::{SendError, Sent};
use crate::persistence::{OnCommit, PersistenceMsg};
use crate::registry::{Key, RegistryMsg, Shared};
use crate::store::{HistoryRange, Store, StoreResult};
use crate::user::UserMsg;

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

type SendReply = RpcReplyPort<Result<Sent, SendError>>;

/// Its messages.
pub(crate) enum ConversationMsg {
    /// A participant sends a message.
    Send {
        from: UserId,
        body: MessageBody,
        client_id: Option<ClientId>,
        /// The session it came from, which gets an ack rather than a copy.
        origin: Option<SessionId>,
        reply: SendReply,
    },
    /// Internal: the batch in flight is done; `Err` carries its first seq.
    BatchDone(Result<Vec<Arc<Message>>, Seq>),
    /// Internal: timer tick to stop when idle.
    IdleCheck,
}

struct PendingSend {
    from: UserId,
    body: MessageBody,
    client_id: Option<ClientId>,
    origin: Option<SessionId>,
    replies: Vec<SendReply>,
    /// Retries of this same send that arrived while it was queued: answered with the
    /// same message, marked as duplicates.
    retries: Vec<SendReply>,
}

enum Recent {
    Committed,
    InFlight,
}

/// Client ids of this conversation seen lately. Bounded: older ids are found through the
/// store's client-id index.
///
/// While `complete`, the map holds every client id the conversation has ever used, so a
/// new id is known to be new without a store read (one per send otherwise). It starts
/// complete when the conversation is small enough to load whole, and stops being
/// complete at the first id it forgets.
struct RecentIds {
    map: HashMap<(UserId, ClientId), Recent>,
    order: VecDeque<(UserId, ClientId)>,
    capacity: usize,
    complete: bool,
}

impl RecentIds {
    fn insert(&mut self, key: (UserId, ClientId), value: Recent) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                    self.complete = false;
                }
            }
        }
    }

    /// Loads every client id of a conversation whose last seq is `last`, when it has at
    /// most `capacity` messages; otherwise starts empty and incomplete.
    async fn load(
        store: &dyn Store,
        conversation: ConversationId,
        last: Seq,
        capacity: usize,
    ) -> StoreResult<Self> {
        let mut recent = Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            complete: false,
        };
        if last > capacity as Seq {
            return Ok(recent);
        }
        let range = HistoryRange {
            after: None,
            before: None,
            limit: capacity,
            from_newest: false,
        };
        let messages = if last == 0 {
            Vec::new()
        } else {
            store.messages(conversation, range).await?
        };
        recent.complete = true;
        for m in messages {
            if let Some(cid) = m.client_id {
                recent.insert((m.from, cid), Recent::Committed);
            }
        }
        Ok(recent)
    }
}

/// Its state.
pub(crate) struct ConversationState {
    conversation: Conversation,
    shared: Arc<Shared>,
    registry: ActorRef<RegistryMsg>,
    next_seq: Seq,
    recent: RecentIds,
    pending: Vec<PendingSend>,
    /// Retries of a message whose batch is in flight: answered when it lands.
    parked: Vec<PendingSend>,
    /// Signalled once the batch in flight is acked and delivered.
    in_flight: Option<oneshot::Receiver<()>>,
    /// Sends in the batch in flight.
    in_flight_sends: usize,
    stats: Arc<ActorStats>,
    last_activity: Instant,
    retiring: bool,
    idle_timer: Option<JoinHandle<()>>,
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
        // the last seq, or two messages could get the same one.
        shared
            .persistence
            .call(
                |reply| PersistenceMsg::Barrier { reply },
                Some(shared.config.call_timeout),
            )
            .await?;
        let id = args.conversation.id;
        let last = shared.store.last_message(id).await?.map_or(0, |m| m.seq);
        let capacity = shared.config.recent_client_ids;
        let recent = RecentIds::load(shared.store.as_ref(), id, last, capacity).await?;
        let idle = shared.config.idle_timeout;
        let idle_timer =
            ractor::time::send_interval(idle_check_period(idle), myself.get_cell(), || {
                ConversationMsg::IdleCheck
            });
        Ok(ConversationState {
            conversation: args.conversation,
            recent,
            shared,
            registry: args.registry,
            next_seq: last + 1,
            pending: Vec::new(),
            parked: Vec::new(),
            in_flight: None,
            in_flight_sends: 0,
            stats: args.stats,
            last_activity: Instant::now(),
            retiring: false,
            idle_timer: Some(idle_timer),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: ConversationMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConversationMsg::Send {
                from,
                body,
                client_id,
                origin,
                reply,
            } => {
                state.last_activity = Instant::now();
                state.stats.touch(state.last_activity);
                state.stats.handled();
                crate::fault::check_conversation(&body);
                let send = PendingSend {
                    from,
                    body,
                    client_id,
                    origin,
                    replies: vec![reply],
                    retries: Vec::new(),
                };
                accept(state, send).await;
            }
            ConversationMsg::BatchDone(outcome) => {
                state.in_flight = None;
                state.in_flight_sends = 0;
                match outcome {
                    Ok(messages) => {
                        for m in messages {
                            if let Some(cid) = &m.client_id {
                                state
                                    .recent
                                    .insert((m.from, cid.clone()), Recent::Committed);
                            }
                        }
                    }
                    Err(first_seq) => {
                        // Nothing of that batch is durable or visible: reuse its seqs.
                        state.next_seq = first_seq;
                        state
                            .recent
                            .map
                            .retain(|_, r| !matches!(r, Recent::InFlight));
                    }
                }
                // Retries that waited for the batch: answer from `recent`, or queue them
                // as fresh sends if their original failed.
                for send in std::mem::take(&mut state.parked) {
                    accept(state, send).await;
                }
            }
            ConversationMsg::IdleCheck => {
                let idle = state.last_activity.elapsed() >= state.shared.config.idle_timeout;
                if idle && !state.retiring && state.pending.is_empty() && state.in_flight.is_none()
                {
                    state.retiring = true;
                    let key = Key::Conversation(state.conversation.id);
                    let _ = state.registry.cast(RegistryMsg::Retire {
                        key,
                        actor: myself.get_id(),
                    });
                }
            }
        }
        if state.in_flight.is_none() && !state.pending.is_empty() {
            start_batch(&myself, state);
        }
        state
            .stats
            .set_queue(state.pending.len() + state.parked.len() + state.in_flight_sends);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.idle_timer.take() {
            timer.abort();
        }
        // Stopping (idle or shutdown) must not drop accepted sends: finish the batch in
        // flight, then commit what is still pending.
        if let Some(finished) = state.in_flight.take() {
            let _ = finished.await;
        }
        while !state.pending.is_empty() {
            let (finished, _) = submit_batch(None, state);
            let _ = finished.await;
        }
        Ok(())
    }
}

pub(crate) fn idle_check_period(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(30))
}

/// Checks a send and queues it, or answers it at once when it is a known retry.
async fn accept(state: &mut ConversationState, send: PendingSend) {
    if !state.conversation.has(send.from) {
        return reply_all(send.replies, Err(SendError::NotParticipant));
    }
    if let Some(cid) = &send.client_id {
        let key = (send.from, cid.clone());
        match state.recent.map.get(&key) {
            // A retry of a committed send: its message is read back below.
            Some(Recent::Committed) => {}
            Some(Recent::InFlight) => return state.parked.push(send),
            None => {
                if let Some(p) = state
                    .pending
                    .iter_mut()
                    .find(|p| p.from == send.from && p.client_id.as_ref() == Some(cid))
                {
                    // A retry of a send that is still queued: one message, answered twice.
                    return p.retries.extend(send.replies);
                }
                if state.recent.complete {
                    // Every id of this conversation is in `recent`: this one is new.
                    return state.pending.push(send);
                }
            }
        }
        match state
            .shared
            .store
            .message_by_client_id(state.conversation.id, send.from, cid)
            .await
        {
            Ok(Some(m)) => {
                state.recent.insert(key, Recent::Committed);
                return reply_all(
                    send.replies,
                    Ok(Sent {
                        message: Arc::new(m),
                        duplicate: true,
                    }),
                );
            }
            Ok(None) => {}
            Err(e) => return reply_all(send.replies, Err(SendError::Store(e))),
        }
    }
    state.pending.push(send);
}

fn reply_all(replies: Vec<SendReply>, result: Result<Sent, SendError>) {
    for reply in replies {
        let _ = reply.send(result.clone());
    }
}

fn start_batch(myself: &ActorRef<ConversationMsg>, state: &mut ConversationState) {
    state.in_flight_sends = state.pending.len();
    let (finished, _first_seq) = submit_batch(Some(myself.clone()), state);
    state.in_flight = Some(finished);
}

/// Sequences the pending sends and hands them to the persistence actor now, inside the
/// handler, so that a successor's barrier is ordered after this commit. Once the commit
/// is over, the persistence actor's flush task acks and delivers (see [`OnCommit`]) and
/// then signals the returned receiver.
fn submit_batch(
    myself: Option<ActorRef<ConversationMsg>>,
    state: &mut ConversationState,
) -> (oneshot::Receiver<()>, Seq) {
    let sends = std::mem::take(&mut state.pending);
    let first_seq = state.next_seq;
    let now = Timestamp::now();
    let mut messages = Vec::with_capacity(sends.len());
    let mut routes = Vec::with_capacity(sends.len());
    for send in sends {
        let message = Message {
            id: MessageId::generate(),
            conversation: state.conversation.id,
            seq: state.next_seq,
            from: send.from,
            body: send.body,
            client_id: send.client_id,
            sent_at: now,
        };
        state.next_seq += 1;
        if let Some(cid) = &message.client_id {
            state
                .recent
                .insert((message.from, cid.clone()), Recent::InFlight);
        }
        messages.push(message);
        routes.push((send.origin, send.replies, send.retries));
    }
    let (finished, finished_rx) = oneshot::channel();
    let shared = state.shared.clone();
    let participants = state.conversation.participants.clone();
    let to_commit = messages.clone();
    let done = OnCommit::new(move |outcome| {
        let committed = match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(SendError::Store(e)),
            None => Err(SendError::Unavailable),
        };
        let outcome = match committed {
            Ok(()) => {
                let mut done = Vec::with_capacity(messages.len());
                for (message, (origin, replies, retries)) in messages.into_iter().zip(routes) {
                    let message = Arc::new(message);
                    let origin_waiting = origin.is_some() && replies.iter().any(|r| !r.is_closed());
                    deliver(&shared, &participants, &message, origin, origin_waiting);
                    let sent = |duplicate| {
                        Ok(Sent {
                            message: message.clone(),
                            duplicate,
                        })
                    };
                    reply_all(replies, sent(false));
                    reply_all(retries, sent(true));
                    done.push(message);
                }
                Ok(done)
            }
            Err(e) => {
                tracing::warn!(error = %e, first_seq, "commit failed; sends rejected");
                for (_, replies, retries) in routes {
                    reply_all(replies, Err(e.clone()));
                    reply_all(retries, Err(e.clone()));
                }
                Err(first_seq)
            }
        };
        if let Some(me) = myself {
            // Fails only when the actor is stopping; post_stop then takes over.
            let _ = me.cast(ConversationMsg::BatchDone(outcome));
        }
        let _ = finished.send(());
    });
    // Should the persistence actor be gone, the returned message drops `done`, which
    // rejects the batch.
    let _ = state.shared.persistence.cast(PersistenceMsg::Commit {
        messages: to_commit,
        done,
    });
    (finished_rx, first_seq)
}

/// Hands a committed message to every participant who has a live user actor with a
/// session to give it to. Offline participants find it in history when they sync.
fn deliver(
    shared: &Shared,
    participants: &[UserId],
    message: &Arc<Message>,
    origin: Option<SessionId>,
    origin_waiting: bool,
) {
    for user in participants {
        if let Some((actor, sessions)) = shared.directory.live_user_sessions(*user) {
            // When the sender's only session is the one still waiting for the ack, it
            // gets the message through that ack: skipping its user actor saves a mailbox
            // hop on most sends. (A session's reply port closes before it detaches, so an
            // open port means the origin is among the counted sessions.) A session that
            // attaches after this read syncs from the store, where the message already is.
            let others = if *user == message.from && origin_waiting {
                sessions.saturating_sub(1)
            } else {
                sessions
            };
            if others == 0 {
                continue;
            }
            let _ = actor.cast(UserMsg::Deliver {
                message: message.clone(),
                except: origin,
            });
        }
    }
}
