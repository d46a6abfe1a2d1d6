// One realtime session over `/ws?token=`, kept alive: reconnects with backoff and
// jitter, syncs from the store's cursors after every `ready` (repeating while `more`),
// then resends every unacked send with its clientId, so a send that did go through
// comes back as a duplicate ack instead of a second message (docs/protocol.md,
// "Recommended client algorithm").

/** Errors after which the same frame, with the same clientId, may be sent again. */
const RETRYABLE = new Set([
  'rate_limited', 'conversation_failed', 'conversation_unavailable', 'timeout',
  'store_unavailable', 'shutting_down',
]);
/** Close codes that mean the token is no good any more: log in again. */
const AUTH_LOST = new Set([4001, 4003]);
const PING_EVERY_MS = 25000;
const PONG_WITHIN_MS = 10000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

export class Connection {
  /**
   * `handlers`: status(state), ready(user), message(m), ack(frame), failed(frame),
   * signal(signal), synced(), authLost(), checkAuth() -> Promise<bool still valid>.
   */
  constructor(token, store, handlers) {
    this.token = token;
    this.store = store;
    this.on = handlers;
    this.ws = null;
    this.live = false;
    this.stopped = false;
    this.attempt = 0;
    this.timers = new Set();
    this.onOnline = () => this.reconnectNow();
    window.addEventListener('online', this.onOnline);
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
  }

  later(ms, f) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  open() {
    if (this.stopped) return;
    this.live = false;
    this.on.status(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    let readied = false;
    ws.onmessage = (e) => {
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      if (frame.type === 'ready') readied = true;
      this.frame(frame);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.live = false;
      clearInterval(this.pinger);
      if (this.stopped) return;
      if (AUTH_LOST.has(e.code)) {
        this.on.authLost();
        return;
      }
      this.on.status('offline');
      // A refused upgrade is invisible to a browser: ask REST whether the token still holds.
      if (!readied) {
        this.on.checkAuth().then((valid) => (valid ? this.retry(e.code) : this.on.authLost()));
      } else {
        this.retry(e.code);
      }
    };
  }

  retry(code) {
    if (this.stopped) return;
    // 1012: the server reset the session on purpose; come straight back.
    const base = code === 1012 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    this.attempt += 1;
    const wait = base / 2 + Math.random() * (base / 2);
    this.on.status('offline', Math.round(wait / 1000));
    this.later(wait, () => this.open());
  }

  /** Reconnects at once if waiting to (the browser came back online, or the user asked). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.open();
  }

  write(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  sync() {
    this.write({ type: 'sync', cursors: this.store.cursors() });
  }

  frame(f) {
    switch (f.type) {
      case 'ready':
        this.on.ready(f.user);
        this.sync();
        break;
      case 'message':
        this.on.message(f.message);
        break;
      case 'synced':
        this.store.synced(f.cursors || {});
        if (f.more) {
          this.sync();
          break;
        }
        this.attempt = 0;
        this.live = true;
        this.startPinging();
        this.on.synced(f.cursors || {});
        this.on.status('online');
        this.flush();
        break;
      case 'ack':
        this.on.ack(f);
        break;
      case 'error':
        this.error(f);
        break;
      case 'signal':
        this.on.signal(f.signal);
        break;
      case 'pong':
        this.pongDue = 0;
        break;
      default:
        // Frames added within v2 are ignored, as the protocol asks.
        break;
    }
  }

  error(f) {
    const entry = f.clientId && this.store.outbox.find((e) => e.clientId === f.clientId);
    if (!entry) return;
    if (!RETRYABLE.has(f.code)) {
      this.on.failed(f);
      return;
    }
    // Sent again, same clientId, when allowed; a reconnect resends it anyway.
    this.later(f.retryAfterMs || 1000, () => this.live && this.write(frameOf(entry)));
  }

  /** Sends `entry` now if live; otherwise it waits in the outbox for the next sync. */
  send(entry) {
    if (this.live) this.write(frameOf(entry));
  }

  /** Every unacked send again, unchanged. */
  flush() {
    for (const entry of this.store.outbox) if (!entry.failed) this.write(frameOf(entry));
  }

  startPinging() {
    clearInterval(this.pinger);
    this.pongDue = 0;
    this.pinger = setInterval(() => {
      if (this.pongDue && Date.now() > this.pongDue) {
        // No pong in time: the connection is dead even if the browser has not noticed.
        if (this.ws) this.ws.close();
        return;
      }
      if (this.write({ type: 'ping' }) && !this.pongDue) this.pongDue = Date.now() + PONG_WITHIN_MS;
    }, PING_EVERY_MS);
  }
}

/** The `send` frame of an outbox entry. */
export function frameOf(entry) {
  const frame = { type: 'send', content: entry.content, clientId: entry.clientId };
  if (entry.receiverId) frame.receiverId = entry.receiverId;
  else frame.conversationId = entry.conversationId;
  return frame;
}
