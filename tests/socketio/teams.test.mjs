// Groups, edits, deletes, receipts and typing over Socket.IO: the same commands as the
// native protocol, answered through the ack callback.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { api, closeAll, newUser, session } from "./lib.mjs";

describe("teams over Socket.IO", () => {
  test("a group send, an edit, a delete, a read receipt and typing reach the others", async () => {
    const [ada, bob] = [await newUser("Ada"), await newUser("Bob")];
    const created = await api("POST", "/api/conversations", {
      token: ada.token,
      body: { name: "Crew", memberIds: [bob.id] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const group = created.body.conversation.id;
    const a = await session(ada);
    const b = await session(bob);

    const ack = await a.ack("send", { conversationId: group, content: "hi crew", clientId: "g-1" });
    assert.equal(ack.type, "ack");
    assert.equal(ack.message.seq, 2);
    const [got] = await b.take("receiveMessage");
    assert.equal(got.content, "hi crew");

    const edited = await a.ack("edit", { conversationId: group, seq: 2, content: "hi, crew" });
    assert.equal(edited.message.edits, 2);
    const [edit] = await b.take("receiveMessage");
    assert.equal(edit.content, "hi, crew");

    const refused = await b.ack("edit", { conversationId: group, seq: 2, content: "mine now" });
    assert.equal(refused.type, "error");
    assert.equal(refused.code, "not_allowed");

    const receipt = await b.ack("read", { conversationId: group, seq: 3 });
    assert.deepEqual(
      [receipt.type, receipt.delivered, receipt.read],
      ["receipt", 3, 3],
    );
    const [read] = await a.take("signal");
    assert.equal(read.signal.kind, "read");
    assert.equal(read.signal.userId, bob.id);

    assert.deepEqual(await b.ack("typing", { conversationId: group }), { type: "ok" });
    const [typing] = await a.take("signal");
    assert.equal(typing.signal.kind, "typing");
    assert.equal(typing.signal.active, true);
    assert.equal(typing.signal.expiresInMs, 5000);

    const deleted = await a.ack("delete", { conversationId: group, seq: 2 });
    assert.equal(deleted.message.deletes, 2);
    const [gone] = await b.take("receiveMessage");
    assert.equal(gone.deletes, 2);
    closeAll(a, b);
  });
});
