// Every Socket.IO event, both ways, over long-polling and over WebSocket: registering
// (and refusals), receiveMessage on every tab, Parley's send/sync/ping with their
// callbacks, the older sendMessage, calls, a spoofed `from`, and catch-up after a
// reconnect.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  api,
  closeAll,
  connected,
  newUser,
  roomOf,
  session,
  socket,
} from "./lib.mjs";

/** Sends over REST as `from`; the stored message. */
async function sendRest(from, to, content) {
  const { status, body } = await api("POST", "/api/messages/send", {
    token: from.token,
    body: { receiverId: to.id, content },
  });
  assert.equal(status, 201, JSON.stringify(body));
  return body.message;
}

describe("registering", () => {
  test("a missing token is refused with the old answer, then a disconnect", async () => {
    const bob = await newUser("Bob");
    const s = socket(undefined);
    await connected(s);
    assert.deepEqual(await s.ack("register", bob.id), { error: "No token provided" });
    assert.deepEqual(await s.take("disconnect"), ["io server disconnect"]);
  });

  test("an invalid or revoked token is refused as invalid", async () => {
    const bob = await newUser("Bob");
    for (const token of ["garbage", `${bob.token}x`]) {
      const s = socket({ token });
      await connected(s);
      assert.deepEqual(await s.ack("register", bob.id), { error: "Invalid token" });
      assert.deepEqual(await s.take("disconnect"), ["io server disconnect"]);
    }
    const logout = await api("POST", "/api/auth/logout", { token: bob.token });
    assert.equal(logout.status, 200);
    const s = socket({ token: bob.token });
    await connected(s);
    assert.deepEqual(await s.ack("register", bob.id), { error: "Invalid token" });
  });

  test("another user's id is refused", async () => {
    const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
    const s = socket({ token: ada.token });
    await connected(s);
    assert.deepEqual(await s.ack("register", bob.id), {
      error: "Invalid user ID or token",
    });
    assert.deepEqual(await s.take("disconnect"), ["io server disconnect"]);
  });

  test("a Bearer prefix is accepted, and registering twice changes nothing", async () => {
    const bob = await newUser("Bob");
    const s = socket({ token: `Bearer ${bob.token}` });
    await connected(s);
    assert.deepEqual(await s.ack("register", bob.id), { success: true });
    const [ready] = await s.take("ready");
    assert.equal(ready.user.id, bob.id);
    assert.equal(ready.user._id, bob.id);
    assert.deepEqual(await s.ack("register", bob.id), { success: true });
    assert.equal(s.connected, true);
    closeAll(s);
  });

  test("commands before registering are refused and the socket stays", async () => {
    const bob = await newUser("Bob");
    const s = socket({ token: bob.token });
    await connected(s);
    const answer = await s.ack("send", { receiverId: bob.id, content: "hi" });
    assert.equal(answer.type, "error");
    assert.equal(answer.code, "unauthorized");
    const call = await s.ack("callUser", { receiverId: bob.id, signalData: {} });
    assert.equal(call.success, false);
    assert.equal(call.code, "unauthorized");
    assert.deepEqual(await s.ack("register", bob.id), { success: true });
    closeAll(s);
  });
});

for (const transports of [["polling"], ["websocket"]]) {
  describe(`over ${transports[0]}`, () => {
    test("receiveMessage reaches every tab of the receiver, with _id", async () => {
      const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
      const tabs = [await session(bob, transports), await session(bob, transports)];
      const sent = await sendRest(ada, bob, "hello tabs");
      for (const tab of tabs) {
        assert.equal(tab.io.engine.transport.name, transports[0]);
        const [m] = await tab.take("receiveMessage");
        assert.equal(m._id, sent.id);
        assert.equal(m.id, sent.id);
        assert.equal(m.sender, ada.id);
        assert.equal(m.receiver, bob.id);
        assert.equal(m.content, "hello tabs");
        assert.equal(m.type, "text");
        assert.equal(typeof m.createdAt, "string");
      }
      closeAll(...tabs);
    });

    test("send acks through its callback once durable, and a retried clientId is not stored twice", async () => {
      const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
      const adaTabs = [await session(ada, transports), await session(ada, transports)];
      const bobTab = await session(bob, transports);
      const frame = { receiverId: bob.id, content: "once", clientId: "k-1" };
      const ack = await adaTabs[0].ack("send", frame);
      assert.equal(ack.type, "ack");
      assert.equal(ack.clientId, "k-1");
      assert.equal(ack.duplicate, false);
      assert.equal(ack.message._id, ack.message.id);
      assert.equal(ack.message.seq, 1);
      const again = await adaTabs[0].ack("send", frame);
      assert.equal(again.duplicate, true);
      assert.equal(again.message.id, ack.message.id);
      // The receiver and the sender's other tab get it once; the sending tab has its ack.
      const [m] = await bobTab.take("receiveMessage");
      assert.equal(m.id, ack.message.id);
      const [mine] = await adaTabs[1].take("receiveMessage");
      assert.equal(mine.id, ack.message.id);
      await bobTab.quiet("receiveMessage");
      await adaTabs[0].quiet("receiveMessage", 0);
      closeAll(...adaTabs, bobTab);
    });

    test("send without a callback is answered by ack and error events", async () => {
      const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
      const s = await session(ada, transports);
      s.emit("send", { receiverId: bob.id, content: "evented", clientId: "e-1" });
      const [ack] = await s.take("ack");
      assert.equal(ack.clientId, "e-1");
      assert.equal(ack.message.content, "evented");
      s.emit("send", { receiverId: bob.id, content: "   ", clientId: "e-2" });
      const [error] = await s.take("error");
      assert.deepEqual(
        { type: error.type, code: error.code, clientId: error.clientId },
        { type: "error", code: "validation_failed", clientId: "e-2" },
      );
      closeAll(s);
    });

    test("send refuses what the native protocol refuses, naming the problem", async () => {
      const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
      const s = await session(ada, transports);
      const cases = [
        [{ receiverId: bob.id, content: "", clientId: "v-1" }, "validation_failed"],
        [{ receiverId: "nope", content: "x", clientId: "v-2" }, "validation_failed"],
        [{ receiverId: ada.id, content: "me", clientId: "v-3" }, "cannot_message_self"],
        [{ to: bob.id, body: "v1", clientId: "v-4" }, "validation_failed"],
        [{ receiverId: bob.id, content: 5, clientId: "v-5" }, "invalid_frame"],
      ];
      for (const [frame, code] of cases) {
        const answer = await s.ack("send", frame);
        assert.equal(answer.type, "error", JSON.stringify(answer));
        assert.equal(answer.code, code, JSON.stringify(answer));
        assert.equal(answer.clientId, frame.clientId);
      }
      closeAll(s);
    });

    test("sendMessage is stored and delivered; its callback gets the stored message", async () => {
      const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
      const s = await session(ada, transports);
      const bobTabs = [await session(bob, transports), await session(bob, transports)];
      // The old client also sent its own id as senderId: ignored, the sender is Ada.
      const answer = await s.ack("sendMessage", {
        senderId: bob.id,
        receiverId: bob.id,
        content: "old style",
        type: "text",
      });
      assert.equal(answer.success, true);
      assert.equal(answer.message.sender, ada.id);
      assert.equal(answer.message.content, "old style");
      assert.equal(answer.message._id, answer.message.id);
      for (const tab of bobTabs) {
        const [m] = await tab.take("receiveMessage");
        assert.equal(m.id, answer.message.id);
      }
      // Without a callback it is still stored and delivered.
      s.emit("sendMessage", { receiverId: bob.id, content: "no callback" });
      const [m] = await bobTabs[0].take("receiveMessage");
      assert.equal(m.content, "no callback");
      const failed = await s.ack("sendMessage", { receiverId: bob.id, content: "" });
      assert.equal(failed.success, false);
      assert.equal(failed.code, "validation_failed");
      assert.equal(typeof failed.error, "string");
      closeAll(s, ...bobTabs);
    });

    test("ping is answered with pong", async () => {
      const ada = await newUser("Ada");
      const s = await session(ada, transports);
      assert.deepEqual(await s.ack("ping"), { type: "pong" });
      s.emit("ping");
      assert.deepEqual(await s.take("pong"), [{ type: "pong" }]);
      closeAll(s);
    });

    test("after a reconnect, sync replays exactly what was missed", async () => {
      const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
      let s = await session(bob, transports);
      const first = await sendRest(ada, bob, "m1");
      const [m1] = await s.take("receiveMessage");
      assert.equal(m1.id, first.id);
      closeAll(s);
      for (const content of ["m2", "m3", "m4"]) await sendRest(ada, bob, content);
      s = await session(bob, transports);
      const synced = await s.ack("sync", { cursors: { [first.conversationId]: 1 } });
      const replayed = [];
      for (let i = 0; i < 3; i++) replayed.push((await s.take("receiveMessage"))[0]);
      assert.deepEqual(
        replayed.map((m) => [m.seq, m.content]),
        [[2, "m2"], [3, "m3"], [4, "m4"]],
      );
      assert.deepEqual(synced, {
        type: "synced",
        cursors: { [first.conversationId]: 4 },
        more: false,
      });
      await s.quiet("receiveMessage");
      closeAll(s);
    });

    test("calls ring every tab of the callee; answer and end reach the caller; from is never the client's", async () => {
      const [ada, bob, eve] = [await newUser("Ada"), await newUser("Bob"), await newUser("Eve")];
      const ada1 = await session(ada, transports);
      const bobTabs = [await session(bob, transports), await session(bob, transports)];
      const eve1 = await session(eve, transports);
      const room = roomOf(ada, bob);
      const offer = { type: "offer", sdp: "v=0 offer" };
      const started = await ada1.ack("callUser", {
        receiverId: bob.id,
        signalData: offer,
        from: eve.id,
      });
      assert.deepEqual(started, { success: true, message: "Call started", roomId: room });
      for (const tab of bobTabs) {
        const [ring] = await tab.take("call:user");
        assert.deepEqual(
          { signal: ring.signal, from: ring.from, roomId: ring.roomId, callType: ring.callType },
          { signal: offer, from: ada.id, roomId: room, callType: "video" },
        );
        const [record] = await tab.take("receiveMessage");
        assert.equal(record.type, "video");
        assert.equal(record.callInfo.roomId, room);
      }
      await eve1.quiet("call:user", 0);

      // Someone else cannot answer or end it.
      for (const [event, payload] of [
        ["answerCall", { roomId: room, signal: { sdp: "evil" } }],
        ["endCall", { roomId: room }],
      ]) {
        const refused = await eve1.ack(event, payload);
        assert.equal(refused.success, false);
        assert.equal(refused.code, "not_in_room");
      }

      const answer = { type: "answer", sdp: "v=0 answer" };
      assert.deepEqual(await bobTabs[0].ack("answerCall", { roomId: room, signal: answer }), {
        success: true,
        message: "Call answered",
      });
      const [accepted] = await ada1.take("call:accepted");
      assert.deepEqual(accepted.signal, answer);
      assert.equal(accepted.from, bob.id);

      // Ended without a callback, as the old client did.
      ada1.emit("endCall", { roomId: room });
      for (const tab of bobTabs) {
        const args = await tab.take("call:ended");
        assert.deepEqual(args, [{ event: "ended", roomId: room, from: ada.id }]);
      }
      await ada1.quiet("call:accepted");
      const history = await api("GET", `/api/messages/${bob.id}`, { token: ada.token });
      const [call] = history.body.messages;
      assert.equal(history.body.messages.length, 1);
      assert.equal(call.type, "video");
      assert.equal(typeof call.callInfo.endedAt, "string");
      assert.equal(typeof call.callInfo.duration, "number");
      closeAll(ada1, ...bobTabs, eve1);
    });

    test("calling someone with no session is refused as offline", async () => {
      const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
      const s = await session(ada, transports);
      const answer = await s.ack("callUser", { receiverId: bob.id, signalData: { sdp: "x" } });
      assert.deepEqual(answer, {
        success: false,
        message: "Receiver offline",
        code: "receiver_offline",
      });
      const invalid = await s.ack("callUser", { receiverId: "nope", signalData: 1 });
      assert.equal(invalid.code, "validation_failed");
      closeAll(s);
    });
  });
}

test("a client that starts on polling upgrades to WebSocket and keeps its session", async () => {
  const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
  const s = await session(bob);
  if (s.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => s.io.engine.once("upgrade", resolve));
  }
  const sent = await sendRest(ada, bob, "after the upgrade");
  const [m] = await s.take("receiveMessage");
  assert.equal(m.id, sent.id);
  closeAll(s);
});

test("a client whose connection drops reconnects by itself, registers again and catches up", async () => {
  const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
  const s = socket(
    { token: bob.token },
    { transports: ["websocket"], reconnection: true, reconnectionDelay: 100 },
  );
  // As the old client did: register on every connect.
  s.on("connect", () => s.emit("register", bob.id, () => {}));
  await connected(s);
  await s.take("ready");
  const first = await sendRest(ada, bob, "before");
  await s.take("receiveMessage");
  // A network drop: the connection closes under the client.
  s.io.engine.transport.ws.close();
  assert.deepEqual(await s.take("disconnect"), ["transport close"]);
  await sendRest(ada, bob, "while away");
  await s.take("ready");
  const synced = await s.ack("sync", { cursors: { [first.conversationId]: first.seq } });
  const [missed] = await s.take("receiveMessage");
  assert.equal(missed.content, "while away");
  assert.equal(synced.cursors[first.conversationId], 2);
  closeAll(s);
});
