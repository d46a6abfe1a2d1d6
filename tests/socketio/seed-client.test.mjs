// A client of the Node backend Parley replaces, written only from its description
// (../shared/seed-reference.md: routes, bodies, events and shapes), knowing nothing of
// Parley. It does that backend's whole flow: register, log in, add a contact, connect
// and register the socket, send over REST, receive on every tab, read the history, and
// start, answer and end a call. It must pass unchanged.

import assert from "node:assert/strict";
import { test } from "node:test";
import { io } from "socket.io-client";

const SERVER = process.env.PARLEY_URL;

async function request(method, path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${SERVER}${path}`, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, ok: res.ok, data: await res.json() };
}

function connectSocket(token) {
  return new Promise((resolve, reject) => {
    const socket = io(SERVER, { auth: { token }, forceNew: true });
    socket.on("connect", () => resolve(socket));
    socket.on("connect_error", reject);
  });
}

function registerSocket(socket, userId) {
  return new Promise((resolve) => socket.emit("register", userId, resolve));
}

function nextEvent(socket, name) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name}`)), 10000);
    socket.once(name, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

test("the old backend's whole flow works unchanged", async () => {
  const stamp = `${process.pid}${Date.now()}`;
  const alice = { name: "Alice", email: `alice${stamp}@example.com`, password: "alicepass123" };
  const bob = { name: "Bob", email: `bob${stamp}@example.com`, password: "bobpass12345" };

  // Register both, then log in as each.
  for (const user of [alice, bob]) {
    const res = await request("POST", "/api/auth/register", user);
    assert.equal(res.status, 201);
    assert.equal(typeof res.data.message, "string");
    assert.equal(typeof res.data.token, "string");
    assert.equal(res.data.user.name, user.name);
    assert.equal(res.data.user.email, user.email);
    assert.equal(typeof res.data.user._id, "string");
  }
  for (const user of [alice, bob]) {
    const res = await request("POST", "/api/auth/login", {
      email: user.email,
      password: user.password,
    });
    assert.equal(res.status, 200);
    assert.equal(typeof res.data.message, "string");
    user.token = res.data.token;
    user._id = res.data.user._id;
  }
  const me = await request("GET", "/api/auth/me", null, alice.token);
  assert.equal(me.status, 200);
  assert.equal(me.data._id, alice._id);
  assert.equal(me.data.password, undefined);

  // Alice adds Bob; each sees the other.
  const added = await request("POST", "/api/contact/add-contact", { email: bob.email }, alice.token);
  assert.equal(added.status, 200);
  assert.equal(added.data.success, true);
  const contacts = await request("GET", "/api/contact/contacts", null, bob.token);
  assert.equal(contacts.data.success, true);
  assert.deepEqual(
    contacts.data.contacts.map((c) => [c._id, c.name, c.email]),
    [[alice._id, alice.name, alice.email]],
  );

  // Bob has two tabs open; Alice one. Each socket registers its user.
  const bobTabs = [await connectSocket(bob.token), await connectSocket(`Bearer ${bob.token}`)];
  for (const tab of bobTabs) assert.deepEqual(await registerSocket(tab, bob._id), { success: true });
  const aliceSocket = await connectSocket(alice.token);
  assert.deepEqual(await registerSocket(aliceSocket, alice._id), { success: true });

  // Alice sends over REST; every tab of Bob receives it.
  const received = bobTabs.map((tab) => nextEvent(tab, "receiveMessage"));
  const sent = await request(
    "POST",
    "/api/messages/send",
    { receiverId: bob._id, content: "Hi Bob!" },
    alice.token,
  );
  assert.equal(sent.status, 201);
  for (const [message] of await Promise.all(received)) {
    assert.equal(message.content, "Hi Bob!");
    assert.equal(message.sender, alice._id);
    assert.equal(message.receiver, bob._id);
    assert.equal(typeof message._id, "string");
    assert.equal(typeof message.createdAt, "string");
  }

  // Bob answers; then both read the history, oldest first.
  const reply = await request(
    "POST",
    "/api/messages/send",
    { receiverId: alice._id, content: "Hello Alice" },
    bob.token,
  );
  assert.equal(reply.status, 201);
  const history = await request("GET", `/api/messages/${bob._id}?page=1&limit=50`, null, alice.token);
  assert.equal(history.status, 200);
  assert.equal(history.data.success, true);
  assert.deepEqual(
    history.data.messages.map((m) => [m.sender, m.receiver, m.content, m.type]),
    [
      [alice._id, bob._id, "Hi Bob!", "text"],
      [bob._id, alice._id, "Hello Alice", "text"],
    ],
  );

  // A call: Alice starts it, Bob's tabs ring, Bob answers, Alice hangs up.
  const roomId = [alice._id, bob._id].sort().join("_");
  const offer = { type: "offer", sdp: "alice-offer" };
  const rings = bobTabs.map((tab) => nextEvent(tab, "call:user"));
  const start = await request(
    "POST",
    "/api/call/start",
    { receiverId: bob._id, signalData: offer, callType: "video" },
    alice.token,
  );
  assert.equal(start.status, 200);
  assert.deepEqual([start.data.success, start.data.message], [true, "Call started"]);
  for (const [ring] of await Promise.all(rings)) {
    assert.deepEqual(ring.signal, offer);
    assert.equal(ring.from, alice._id);
    assert.equal(ring.roomId, roomId);
  }

  const answerSignal = { type: "answer", sdp: "bob-answer" };
  const accepted = nextEvent(aliceSocket, "call:accepted");
  const answered = await request(
    "POST",
    "/api/call/answer",
    { roomId, signalData: answerSignal },
    bob.token,
  );
  assert.equal(answered.status, 200);
  assert.deepEqual([answered.data.success, answered.data.message], [true, "Call answered"]);
  assert.deepEqual((await accepted)[0].signal, answerSignal);

  const ended = bobTabs.map((tab) => nextEvent(tab, "call:ended"));
  const end = await request("POST", "/api/call/end", { roomId }, alice.token);
  assert.equal(end.status, 200);
  assert.deepEqual([end.data.success, end.data.message], [true, "Call ended"]);
  await Promise.all(ended);

  // The call is in the history, with its end and duration.
  const after = await request("GET", `/api/messages/${alice._id}`, null, bob.token);
  const calls = after.data.messages.filter((m) => m.type === "video");
  assert.equal(calls.length, 1);
  const { callInfo } = calls[0];
  assert.equal(calls[0].sender, alice._id);
  assert.equal(calls[0].receiver, bob._id);
  assert.equal(callInfo.callType, "video");
  assert.equal(callInfo.roomId, roomId);
  assert.ok(Date.parse(callInfo.startedAt) <= Date.parse(callInfo.endedAt));
  assert.equal(typeof callInfo.duration, "number");

  // Calling someone who is not connected.
  for (const tab of bobTabs) tab.disconnect();
  await new Promise((r) => setTimeout(r, 300));
  const offline = await request(
    "POST",
    "/api/call/start",
    { receiverId: bob._id, signalData: offer, callType: "audio" },
    alice.token,
  );
  assert.equal(offline.status, 404);
  assert.deepEqual([offline.data.success, offline.data.message], [false, "Receiver offline"]);

  aliceSocket.disconnect();
  const logout = await request("POST", "/api/auth/logout", null, alice.token);
  assert.equal(logout.status, 200);
});
