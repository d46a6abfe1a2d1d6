// What the client knows: conversations with the messages it holds, the cursors it syncs
// from, the last seq the user has seen in each (kept in localStorage, for unread counts
// across reloads), and the outbox of sends not yet acked (kept too, so a reload resends
// them with the same clientId and nothing is stored twice).

/** A fresh client id: a random UUID (also where crypto.randomUUID is missing). */
export function newClientId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class Store {
  constructor(user) {
    this.me = user;
    this.prefix = `parley.${user.id}.`;
    /** conversationId -> conversation (see `conversation`). */
    this.conversations = new Map();
    /** userId -> {id, name, email}: contacts and everyone met in a conversation. */
    this.people = new Map();
    this.outbox = this.load('outbox', []);
    this.seen = this.load('seen', {});
  }

  load(key, fallback) {
    try {
      const raw = localStorage.getItem(this.prefix + key);
      return raw ? JSON.parse(raw) : fallback;
    } catch {
      return fallback;
    }
  }

  save(key, value) {
    try {
      localStorage.setItem(this.prefix + key, JSON.stringify(value));
    } catch {
      // Storage full or disabled: the session still works, it just forgets on reload.
    }
  }

  /** The conversation `id`, created empty when new. */
  conversation(id) {
    let c = this.conversations.get(id);
    if (!c) {
      const seen = this.seen[id] || 0;
      c = {
        id,
        participants: [],
        /** seq -> message object (protocol v2). */
        messages: new Map(),
        /** Every message from 1 (or from `seen` at start) up to here is held. */
        cursor: seen,
        /** The lowest seq held or known to be fetched; older ones come by REST. */
        oldest: seen + 1,
        lastSeq: 0,
        lastActivity: '',
      };
      this.conversations.set(id, c);
    }
    return c;
  }

  /** The other participant of a 1:1 conversation (seam: groups have several). */
  peer(c) {
    const other = c.participants.find((p) => p !== this.me.id);
    return other ? this.people.get(other) : undefined;
  }

  /** The 1:1 conversation with `userId`, if known. */
  conversationWith(userId) {
    for (const c of this.conversations.values()) {
      if (c.participants.length === 2 && c.participants.includes(userId)) return c;
    }
    return undefined;
  }

  /** Takes a summary from `GET /api/conversations`. */
  summary(s) {
    const c = this.conversation(s.id);
    for (const p of s.participants) this.people.set(p.id, p);
    c.participants = s.participants.map((p) => p.id);
    c.lastSeq = Math.max(c.lastSeq, s.lastSeq);
    c.lastActivity = s.lastActivity;
    if (s.lastMessage) this.add(s.lastMessage);
    return c;
  }

  /**
   * Holds `m` unless it is already held; advances the cursor over a contiguous run.
   * Returns true when it was new.
   */
  add(m) {
    const c = this.conversation(m.conversationId);
    if (c.messages.has(m.seq)) return false;
    c.messages.set(m.seq, m);
    c.lastSeq = Math.max(c.lastSeq, m.seq);
    if (m.seq < c.oldest) c.oldest = m.seq;
    if (!c.lastActivity || m.createdAt > c.lastActivity) c.lastActivity = m.createdAt;
    while (c.messages.has(c.cursor + 1)) c.cursor += 1;
    return true;
  }

  /** A `synced` frame's cursors: the server has delivered everything up to each. */
  synced(cursors) {
    for (const [id, seq] of Object.entries(cursors)) {
      const c = this.conversation(id);
      if (seq > c.cursor) c.cursor = seq;
      if (seq > c.lastSeq) c.lastSeq = seq;
    }
  }

  /** Cursors for a `sync` frame. */
  cursors() {
    const out = {};
    for (const c of this.conversations.values()) if (c.cursor > 0) out[c.id] = c.cursor;
    return out;
  }

  /** Messages of `c` in seq order. */
  ordered(c) {
    return [...c.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Messages from others the user has not seen yet. */
  unread(c) {
    const seen = this.seen[c.id] || 0;
    let n = 0;
    for (const m of c.messages.values()) if (m.seq > seen && m.sender !== this.me.id) n += 1;
    return n;
  }

  /** The user has seen `c` up to its last message (seam: a `read` receipt goes here). */
  markSeen(c) {
    const top = Math.max(c.lastSeq, c.cursor);
    if ((this.seen[c.id] || 0) >= top) return false;
    this.seen[c.id] = top;
    this.save('seen', this.seen);
    return true;
  }

  queue(entry) {
    this.outbox.push(entry);
    this.save('outbox', this.outbox);
  }

  /** Removes the outbox entry `clientId`; returns it. */
  unqueue(clientId) {
    const i = this.outbox.findIndex((e) => e.clientId === clientId);
    if (i < 0) return undefined;
    const [entry] = this.outbox.splice(i, 1);
    this.save('outbox', this.outbox);
    return entry;
  }

  updated() {
    this.save('outbox', this.outbox);
  }
}
