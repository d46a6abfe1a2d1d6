// The stack Parley replaces, reduced to its real-time message path, as
// ../../../../shared/seed-reference.md describes it (Express + Socket.IO 4 backend):
//
// - a client connects with `auth: {token}` and emits `register(userId, callback)`; the
//   server checks the token matches the id, maps user id -> socket id in this process's
//   memory, and answers `{success: true}` (or `{error}` and disconnects);
// - `sendMessage({receiverId, content, clientId}, callback)` builds the message object
//   the original stores, pushes it as `receiveMessage` to the receiver's socket if it is
//   online, and acknowledges the sender through the Socket.IO callback.
//
// No database: the original writes every message to MongoDB before pushing it; this is
// the best case for Socket.IO. No JWT verification either (the token is the user id),
// again a best case. One process (the user map lives in its memory, so the original
// cannot use the cluster module without a Redis adapter).
//
// Usage: node server.js [--port 9003] [--host 127.0.0.1]

"use strict";

const http = require("http");
const crypto = require("crypto");
const { Server } = require("socket.io");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg("port", "9003"));
const host = arg("host", "127.0.0.1");

const httpServer = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
  } else {
    res.writeHead(404);
    res.end();
  }
});
// Many idle connections: do not let the HTTP layer time out upgraded sockets.
httpServer.keepAliveTimeout = 0;
httpServer.maxConnections = 0;

const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 64 * 1024,
});

// user id -> socket id.
const users = new Map();

io.on("connection", (socket) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;

  socket.on("register", (userId, callback) => {
    const reply = typeof callback === "function" ? callback : () => {};
    if (typeof userId !== "string" || userId !== token) {
      reply({ error: "invalid token" });
      socket.disconnect(true);
      return;
    }
    users.set(userId, socket.id);
    socket.data.userId = userId;
    reply({ success: true });
  });

  socket.on("sendMessage", (body, callback) => {
    const reply = typeof callback === "function" ? callback : () => {};
    const sender = socket.data.userId;
    if (!sender) {
      reply({ error: "not registered" });
      return;
    }
    if (!body || typeof body.receiverId !== "string" || typeof body.content !== "string") {
      reply({ error: "receiverId and content are required" });
      return;
    }
    const message = {
      _id: crypto.randomUUID(),
      sender,
      receiver: body.receiverId,
      content: body.content,
      clientId: body.clientId,
      createdAt: new Date().toISOString(),
    };
    const to = users.get(body.receiverId);
    if (to !== undefined) {
      io.to(to).emit("receiveMessage", message);
    }
    reply({ success: true, message });
  });

  socket.on("disconnect", () => {
    const userId = socket.data.userId;
    if (userId !== undefined && users.get(userId) === socket.id) {
      users.delete(userId);
    }
  });
});

httpServer.listen(port, host, () => {
  console.log(JSON.stringify({ msg: "listening", host, port, pid: process.pid }));
});

function stop() {
  io.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
