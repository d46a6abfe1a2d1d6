// Helpers for the Socket.IO tests: REST calls, users, and sockets whose events are
// recorded from the moment they exist, so a test can await an event that has already
// arrived. The server is the one `tests/socketio.rs` started (PARLEY_URL).

import assert from "node:assert/strict";
import { after } from "node:test";
import { io } from "socket.io-client";

export const BASE = process.env.PARLEY_URL;
if (!BASE) {
  throw new Error("PARLEY_URL is not set: run these through `cargo test --test socketio`");
}

/** Waits this long for anything the server should send. */
export const WAIT_MS = 10_000;

/** A JSON request; resolves to {status, body}. */
export async function api(method, path, { token, body } = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(BASE + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

let counter = 0;

/** Every socket a test made, closed after the file's tests, passed or failed. */
const opened = [];
after(() => {
  for (const s of opened) s.disconnect();
});

/** Registers a fresh user: {id, name, email, password, token}. */
export async function newUser(name) {
  counter += 1;
  const email = `${name.toLowerCase()}-${process.pid}-${Date.now()}-${counter}@example.com`;
  const password = "correct horse battery";
  const { status, body } = await api("POST", "/api/auth/register", {
    body: { name, email, password },
  });
  assert.equal(status, 201, JSON.stringify(body));
  return { id: body.user.id, name, email, password, token: body.token };
}

/**
 * A socket that records every event it receives. `take(event)` resolves to the
 * arguments of the oldest event of that name not taken yet (waiting for one if needed);
 * `quiet(event, ms)` checks that none arrives within `ms`.
 */
export function socket(auth, options = {}) {
  const s = io(BASE, {
    auth,
    forceNew: true,
    reconnection: false,
    timeout: WAIT_MS,
    ...options,
  });
  opened.push(s);
  const queues = new Map();
  const waiters = new Map();
  const queue = (event) => {
    if (!queues.has(event)) queues.set(event, []);
    return queues.get(event);
  };
  const deliver = (event, args) => {
    const waiting = waiters.get(event);
    if (waiting && waiting.length > 0) {
      waiting.shift()(args);
    } else {
      queue(event).push(args);
    }
  };
  s.onAny((event, ...args) => deliver(event, args));
  s.on("disconnect", (reason) => deliver("disconnect", [reason]));
  s.take = (event, ms = WAIT_MS) => {
    const q = queue(event);
    if (q.length > 0) return Promise.resolve(q.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${event} event within ${ms} ms`)),
        ms,
      );
      if (!waiters.has(event)) waiters.set(event, []);
      waiters.get(event).push((args) => {
        clearTimeout(timer);
        resolve(args);
      });
    });
  };
  s.quiet = async (event, ms = 500) => {
    await new Promise((r) => setTimeout(r, ms));
    assert.deepEqual(queue(event), [], `no ${event} event expected`);
  };
  s.ack = (event, ...args) => s.timeout(WAIT_MS).emitWithAck(event, ...args);
  return s;
}

/** Resolves once the socket is connected (to the namespace). */
export function connected(s) {
  if (s.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("connect_error", reject);
  });
}

/** A socket of `user`, connected and registered (optionally over given transports). */
export async function session(user, transports) {
  const s = socket({ token: user.token }, transports ? { transports } : {});
  await connected(s);
  const answer = await s.ack("register", user.id);
  assert.deepEqual(answer, { success: true });
  return s;
}

/** The room id of two users: their ids sorted, joined with `_`. */
export function roomOf(a, b) {
  return [a.id, b.id].sort().join("_");
}

/** Closes sockets, ignoring ones already closed. */
export function closeAll(...sockets) {
  for (const s of sockets) s.disconnect();
}
