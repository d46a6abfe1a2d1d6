// The web client's screens: log in or register, the list of chats, one chat. State is in
// store.js, the realtime session in connection.js, REST calls in api.js.
//
// Seams for what the protocol grows next: `onSignal` (typing, receipts, presence),
// `renderBody` by message `type` (edits and deletes as they arrive as events), and
// conversations with more than two participants (groups) in `title`.

import * as api from './api.js';
import { Connection } from './connection.js';
import { Store, newClientId } from './store.js';

const $ = (id) => document.getElementById(id);
const SESSION_KEY = 'parley.session';

let session = null; // {token, user}
let store = null;
let connection = null;
let openId = null; // the open conversation's id
let registering = false;

// ---- signed out ----------------------------------------------------------------------

function showAuth() {
  $('app').hidden = true;
  $('auth').hidden = false;
  $('auth-email').focus();
}

function setAuthMode(register) {
  registering = register;
  $('name-field').hidden = !register;
  $('auth-legend').textContent = register ? 'Create an account' : 'Log in';
  $('auth-submit').textContent = register ? 'Create account' : 'Log in';
  $('auth-switch').textContent = register ? 'Have an account? Log in' : 'New here? Create an account';
  $('auth-password').autocomplete = register ? 'new-password' : 'current-password';
  $('auth-error').textContent = '';
  (register ? $('auth-name') : $('auth-email')).focus();
}

/** A sentence for an API error, with the fields it names. */
function explain(e) {
  const fields = Object.entries(e.fields || {}).map(([k, v]) => `${k} ${v}`);
  return fields.length ? fields.join('; ') : e.message;
}

async function submitAuth(event) {
  event.preventDefault();
  const email = $('auth-email').value.trim();
  const password = $('auth-password').value;
  $('auth-error').textContent = '';
  $('auth-submit').disabled = true;
  try {
    const answer = registering
      ? await api.register($('auth-name').value.trim(), email, password)
      : await api.login(email, password);
    localStorage.setItem(SESSION_KEY, JSON.stringify(answer));
    $('auth-password').value = '';
    await signedIn(answer);
  } catch (e) {
    $('auth-error').textContent = explain(e);
  } finally {
    $('auth-submit').disabled = false;
  }
}

// ---- signed in -----------------------------------------------------------------------

async function signedIn(answer) {
  session = answer;
  store = new Store(answer.user);
  $('me-name').textContent = answer.user.name;
  $('auth').hidden = true;
  $('app').hidden = false;
  $('app').classList.remove('chat-open');
  await refreshLists();
  connection = new Connection(session.token, store, {
    status: showStatus,
    ready: () => {},
    message: onMessage,
    ack: onAck,
    failed: onFailed,
    signal: onSignal,
    synced: onSynced,
    authLost: () => signOut('Your session ended; please log in again.'),
    checkAuth: async () => {
      try {
        await api.me(session.token);
        return true;
      } catch (e) {
        return e.status !== 401;
      }
    },
  });
  connection.start();
  $('contact-email').focus();
}

async function signOut(why) {
  if (connection) connection.stop();
  const token = session && session.token;
  connection = null;
  session = null;
  store = null;
  openId = null;
  localStorage.removeItem(SESSION_KEY);
  $('chats').replaceChildren();
  $('messages').replaceChildren();
  if (token && !why) api.logout(token).catch(() => {});
  setAuthMode(false);
  showAuth();
  if (why) $('auth-error').textContent = why;
}

function showStatus(state, seconds) {
  const text = {
    connecting: 'Connecting…',
    reconnecting: 'Reconnecting…',
    online: 'Online',
    offline: seconds ? `Offline: retrying in ${seconds} s` : 'Offline',
  }[state];
  $('status').textContent = text;
  $('status').dataset.state = state;
}

/** Contacts and conversations from REST, merged into one list of chats. */
async function refreshLists() {
  try {
    const [{ contacts }, { conversations }] = await Promise.all([
      api.contacts(session.token),
      api.conversations(session.token),
    ]);
    for (const c of contacts) store.people.set(c.id, { ...c, contact: true });
    for (const s of conversations) store.summary(s);
  } catch (e) {
    if (e.status === 401) return signOut('Your session ended; please log in again.');
    showStatus('offline');
  }
  renderChats();
}

/** One entry per conversation, then contacts with none yet; most recent first. */
function chats() {
  const list = [];
  const covered = new Set();
  for (const c of store.conversations.values()) {
    if (!c.participants.length) continue;
    const peer = store.peer(c);
    if (peer) covered.add(peer.id);
    list.push({ key: c.id, conversation: c, peer, at: c.lastActivity });
  }
  for (const p of store.people.values()) {
    if (p.contact && !covered.has(p.id)) list.push({ key: 'user:' + p.id, peer: p, at: '' });
  }
  return list.sort((a, b) => (b.at > a.at ? 1 : b.at < a.at ? -1 : 0));
}

function title(c, peer) {
  if (peer) return peer.name;
  // Seam: a group conversation names its participants.
  return c ? c.participants.map((id) => (store.people.get(id) || { name: '?' }).name).join(', ') : '';
}

function renderChats() {
  const ul = $('chats');
  const focused = document.activeElement && document.activeElement.dataset.key;
  const items = chats();
  $('chats-empty').hidden = items.length > 0;
  ul.replaceChildren(...items.map((item) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'chat-item';
    b.dataset.key = item.key;
    const c = item.conversation;
    const unread = c && c.id !== openId ? store.unread(c) : 0;
    if (c && c.id === openId) b.setAttribute('aria-current', 'true');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = title(c, item.peer);
    const last = document.createElement('span');
    last.className = 'last';
    const lastMessage = c && c.messages.get(c.lastSeq);
    last.textContent = lastMessage ? preview(lastMessage) : c ? '' : 'Start a chat';
    b.append(name, last);
    if (unread) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = String(unread);
      badge.setAttribute('aria-label', `${unread} unread`);
      b.append(badge);
    }
    b.addEventListener('click', () => openChat(item));
    li.append(b);
    return li;
  }));
  if (focused) {
    const again = ul.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function preview(m) {
  const who = m.sender === store.me.id ? 'You: ' : '';
  return who + m.content.replace(/\s+/g, ' ').slice(0, 80);
}

async function openChat(item) {
  let c = item.conversation;
  if (!c) {
    // A contact with no conversation yet: its history page names the conversation.
    try {
      const page = await api.directHistory(session.token, item.peer.id);
      c = store.conversation(page.conversationId);
      c.participants = [store.me.id, item.peer.id];
      for (const m of page.messages) store.add(m);
      if (page.messages.length === 0) c.oldest = 1;
      c.historyLoaded = true;
    } catch (e) {
      $('contact-error').textContent = explain(e);
      return;
    }
  }
  openId = c.id;
  $('app').classList.add('chat-open');
  $('chat-title').textContent = title(c, store.peer(c));
  $('composer').hidden = false;
  if (!c.historyLoaded) await loadOlder(c);
  renderMessages(true);
  store.markSeen(c);
  renderChats();
  $('composer-input').focus();
}

/** The page of history before the oldest message held. */
async function loadOlder(c) {
  c.historyLoaded = true;
  const before = c.messages.size ? Math.min(...c.messages.keys()) : c.cursor + 1;
  if (before <= 1) {
    c.oldest = 1;
    return;
  }
  try {
    const page = await api.olderMessages(session.token, c.id, before);
    for (const m of page.messages) store.add(m);
    c.oldest = page.nextBefore ? Math.min(...c.messages.keys()) : 1;
  } catch {
    // Offline: what is held is shown; the button stays to try again.
    c.historyLoaded = false;
  }
}

function renderMessages(scroll) {
  const c = openId && store.conversations.get(openId);
  const ol = $('messages');
  if (!c) {
    ol.replaceChildren();
    return;
  }
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
  const rows = store.ordered(c).map((m) => messageRow(m, m.sender === store.me.id ? 'mine' : 'theirs'));
  const pending = store.outbox
    .filter((e) => e.conversationId === c.id)
    .map((e) => messageRow({ content: e.content, clientId: e.clientId }, e.failed ? 'failed' : 'pending', e));
  ol.replaceChildren(...rows, ...pending);
  $('older').hidden = c.oldest <= 1;
  if (scroll || atBottom) ol.scrollTop = ol.scrollHeight;
}

function messageRow(m, kind, entry) {
  const li = document.createElement('li');
  li.className = `message ${kind}`;
  if (m.seq) li.dataset.seq = String(m.seq);
  if (m.clientId) li.dataset.clientId = m.clientId;
  const who = document.createElement('span');
  who.className = 'visually-hidden';
  who.textContent = kind === 'theirs' ? `${(store.people.get(m.sender) || { name: 'Someone' }).name}: ` : 'You: ';
  const body = renderBody(m);
  const meta = document.createElement('span');
  meta.className = 'meta';
  if (kind === 'pending') meta.textContent = 'sending…';
  else if (kind === 'failed') meta.textContent = `not sent: ${entry.error}`;
  else meta.textContent = new Date(m.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  li.append(who, body, meta);
  if (kind === 'failed') {
    const discard = document.createElement('button');
    discard.type = 'button';
    discard.textContent = 'Discard';
    discard.addEventListener('click', () => {
      store.unqueue(entry.clientId);
      renderMessages(false);
      $('composer-input').focus();
    });
    li.append(discard);
  }
  return li;
}

/** A message's body by its `type` (seam: edited and deleted messages render here). */
function renderBody(m) {
  const p = document.createElement('p');
  p.className = 'body';
  p.textContent = m.content;
  return p;
}

function send(event) {
  event.preventDefault();
  const input = $('composer-input');
  const content = input.value;
  const c = openId && store.conversations.get(openId);
  if (!c || !content.trim()) return;
  const peer = store.peer(c);
  const entry = { clientId: newClientId(), conversationId: c.id, content };
  // 1:1 by the other person's id, which also creates the conversation on first use.
  if (peer && c.participants.length === 2) entry.receiverId = peer.id;
  store.queue(entry);
  connection.send(entry);
  input.value = '';
  renderMessages(true);
}

// ---- realtime events -----------------------------------------------------------------

function onMessage(m) {
  // My own send, replayed by a sync before its ack came back: it is stored, so it leaves
  // the outbox and is not sent again.
  if (m.sender === store.me.id && m.clientId) store.unqueue(m.clientId);
  const known = store.conversations.has(m.conversationId) &&
    store.conversations.get(m.conversationId).participants.length > 0;
  if (!store.add(m)) return;
  if (!known) {
    refreshLists();
    return;
  }
  if (m.conversationId === openId && !document.hidden) {
    store.markSeen(store.conversations.get(openId));
    renderMessages(false);
  } else if (m.sender !== store.me.id) {
    const who = (store.people.get(m.sender) || { name: 'someone' }).name;
    $('announcer').textContent = `New message from ${who}`;
  }
  renderChats();
}

function onAck(f) {
  store.unqueue(f.clientId);
  if (f.message) store.add(f.message);
  if (f.message && f.message.conversationId === openId) {
    store.markSeen(store.conversations.get(openId));
    renderMessages(true);
  }
  renderChats();
}

function onFailed(f) {
  const entry = store.outbox.find((e) => e.clientId === f.clientId);
  if (!entry) return;
  entry.failed = true;
  entry.error = f.message;
  store.updated();
  if (entry.conversationId === openId) renderMessages(false);
}

function onSynced(cursors) {
  // A conversation this client has not listed yet (someone wrote first): fetch the list.
  const unknown = Object.keys(cursors).some((id) => {
    const c = store.conversations.get(id);
    return !c || !c.participants.length;
  });
  if (unknown) refreshLists();
  else renderChats();
  if (openId) renderMessages(false);
}

/** Typing, receipts, presence (seam: shown in the chat header when they exist). */
function onSignal(signal) {
  if (signal.kind === 'typing' && signal.conversationId === openId) {
    $('chat-presence').textContent = signal.active ? 'typing…' : '';
  }
}

async function addContact(event) {
  event.preventDefault();
  const input = $('contact-email');
  $('contact-error').textContent = '';
  try {
    const { contact } = await api.addContact(session.token, input.value.trim());
    store.people.set(contact.id, { ...contact, contact: true });
    input.value = '';
    renderChats();
    const button = $('chats').querySelector(`[data-key="user:${CSS.escape(contact.id)}"]`);
    if (button) button.focus();
  } catch (e) {
    $('contact-error').textContent = explain(e);
  }
}

// ---- wiring --------------------------------------------------------------------------

function init() {
  $('auth-form').addEventListener('submit', submitAuth);
  $('auth-switch').addEventListener('click', () => setAuthMode(!registering));
  $('logout').addEventListener('click', () => signOut());
  $('contact-form').addEventListener('submit', addContact);
  $('composer').addEventListener('submit', send);
  $('composer-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) send(e);
  });
  $('back').addEventListener('click', () => {
    $('app').classList.remove('chat-open');
    const key = openId;
    openId = null;
    renderChats();
    const b = key && $('chats').querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (b) b.focus();
  });
  $('older').addEventListener('click', async () => {
    const c = store.conversations.get(openId);
    if (!c) return;
    c.historyLoaded = false;
    await loadOlder(c);
    renderMessages(false);
  });
  document.addEventListener('visibilitychange', () => {
    const c = openId && store && store.conversations.get(openId);
    if (!document.hidden && c && store.markSeen(c)) renderChats();
  });
  const saved = localStorage.getItem(SESSION_KEY);
  if (saved) {
    signedIn(JSON.parse(saved)).catch(() => signOut());
  } else {
    setAuthMode(false);
    showAuth();
  }
}

init();
