#!/usr/bin/env python3
"""A minimal CQL native protocol v4 client, standard library only.

scripts/cql-node uses it to tell when a node is ready, so readiness means "answers a
query", not "has opened a port". It is also handy for poking at the test node:

  scripts/cql-ping.py 127.0.0.1:9042                  # prints release_version
  scripts/cql-ping.py 127.0.0.1:9042 "SELECT ..." ... # runs each statement, prints rows
  scripts/cql-ping.py --wait 180 --pid 1234 127.0.0.1:9042

With --wait it retries until the node answers, the time is up (exit 1) or the process
--pid names is gone (exit 2). Statements run at consistency ONE, one page, no bind
values: enough for schema setup and checks, not a driver.
"""

import argparse
import os
import socket
import struct
import sys
import time
import uuid

VERSION = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE, OP_QUERY, OP_RESULT = 0x00, 0x01, 0x02, 0x03, 0x07, 0x08
RESULT_VOID, RESULT_ROWS, RESULT_SET_KEYSPACE, RESULT_SCHEMA_CHANGE = 1, 2, 3, 5
CONSISTENCY_ONE = 0x0001


class CqlError(Exception):
    pass


class Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise CqlError("truncated frame")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        return self.take(self.short()).decode("utf-8")

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def option(self):
        # Collections and tuples nest further options; they must be read in full or the
        # rest of the metadata is misaligned.
        kind = self.short()
        if kind == 0x0000:
            return ("custom", self.string())
        if kind in (0x0020, 0x0022):
            return (kind, self.option())
        if kind == 0x0021:
            return (kind, self.option(), self.option())
        if kind == 0x0030:
            ks, name = self.string(), self.string()
            fields = [(self.string(), self.option()) for _ in range(self.short())]
            return (kind, ks, name, fields)
        if kind == 0x0031:
            return (kind, [self.option() for _ in range(self.short())])
        return (kind,)


def decode(value, opt):
    if value is None:
        return "null"
    kind = opt[0]
    if kind in (0x0001, 0x000D):
        return value.decode("utf-8", "replace")
    if kind == 0x0004:
        return "true" if value != b"\x00" else "false"
    if kind in (0x0002, 0x0009, 0x0013, 0x0014, 0x000B, 0x0005):
        return str(int.from_bytes(value, "big", signed=True))
    if kind in (0x000C, 0x000F):
        return str(uuid.UUID(bytes=value))
    return "0x" + value.hex()


class Connection:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.stream = 0

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise CqlError("connection closed by the server")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def request(self, opcode, body):
        self.stream = (self.stream + 1) % 32768
        self.sock.sendall(struct.pack(">BBhBi", VERSION, 0, self.stream, opcode, len(body)) + body)
        while True:
            version, flags, stream, op, length = struct.unpack(">BBhBi", self._recv_exact(9))
            body = self._recv_exact(length)
            if stream != self.stream:
                continue  # an event or a stale reply
            if version & 0x7F != VERSION:
                raise CqlError("server answered with protocol version %d" % (version & 0x7F))
            r = Reader(body)
            if flags & 0x02:  # tracing id
                r.take(16)
            if flags & 0x08:  # warnings
                for _ in range(r.short()):
                    print("warning: " + r.string(), file=sys.stderr)
            if flags & 0x04:  # custom payload
                for _ in range(r.short()):
                    r.string()
                    r.bytes()
            if op == OP_ERROR:
                code = r.int()
                raise CqlError("error 0x%04x: %s" % (code, r.string()))
            return op, r

    def startup(self):
        body = struct.pack(">H", 1)
        for s in ("CQL_VERSION", "3.0.0"):
            b = s.encode()
            body += struct.pack(">H", len(b)) + b
        op, _ = self.request(OP_STARTUP, body)
        if op == OP_AUTHENTICATE:
            raise CqlError("server wants authentication; this client has none")
        if op != OP_READY:
            raise CqlError("unexpected reply 0x%02x to STARTUP" % op)

    def query(self, cql):
        q = cql.encode("utf-8")
        op, r = self.request(OP_QUERY, struct.pack(">i", len(q)) + q + struct.pack(">HB", CONSISTENCY_ONE, 0))
        if op != OP_RESULT:
            raise CqlError("unexpected reply 0x%02x to QUERY" % op)
        kind = r.int()
        if kind != RESULT_ROWS:
            if kind == RESULT_SCHEMA_CHANGE:
                change, target = r.string(), r.string()
                name = r.string()
                if target != "KEYSPACE":
                    name += "." + r.string()
                return "schema change: %s %s %s" % (change, target, name)
            if kind == RESULT_SET_KEYSPACE:
                return "keyspace: " + r.string()
            return "ok"
        flags, ncols = r.int(), r.int()
        if flags & 0x0002:
            r.bytes()  # paging state: only the first page is read
        global_spec = flags & 0x0001
        if global_spec:
            r.string()
            r.string()
        cols = []
        if not flags & 0x0004:  # no metadata
            for _ in range(ncols):
                if not global_spec:
                    r.string()
                    r.string()
                cols.append((r.string(), r.option()))
        rows = []
        for _ in range(r.int()):
            rows.append([(name, decode(r.bytes(), opt)) for name, opt in cols])
        return rows


def parse_contact(s):
    host, _, port = s.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit("contact point must be HOST:PORT, got %r" % s)
    return host, int(port)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent has not reaped it yet.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def release_version(host, port, timeout):
    conn = Connection(host, port, timeout)
    try:
        conn.startup()
        rows = conn.query("SELECT release_version FROM system.local")
        if not isinstance(rows, list) or not rows:
            raise CqlError("system.local returned no row")
        return rows[0][0][1]
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("contact", help="HOST:PORT")
    p.add_argument("statements", nargs="*", help="CQL statements to run in order")
    p.add_argument("--wait", type=float, default=0, help="retry for this many seconds")
    p.add_argument("--pid", type=int, help="give up early when this process exits")
    p.add_argument("--timeout", type=float, default=10, help="per-request socket timeout")
    a = p.parse_args()
    host, port = parse_contact(a.contact)

    if not a.statements:
        deadline = time.monotonic() + a.wait
        while True:
            try:
                print(release_version(host, port, min(a.timeout, max(a.wait, 1))))
                return 0
            except (OSError, CqlError) as e:
                last = e
            if a.pid is not None and not alive(a.pid):
                print("cql-ping: process %d exited (last error: %s)" % (a.pid, last), file=sys.stderr)
                return 2
            if time.monotonic() >= deadline:
                if a.wait:
                    print("cql-ping: no answer from %s after %gs (last error: %s)" % (a.contact, a.wait, last), file=sys.stderr)
                else:
                    print("cql-ping: %s: %s" % (a.contact, last), file=sys.stderr)
                return 1
            time.sleep(0.5)

    conn = Connection(host, port, a.timeout)
    try:
        conn.startup()
        for stmt in a.statements:
            try:
                out = conn.query(stmt)
            except CqlError as e:
                print("cql-ping: %s\n  in: %s" % (e, stmt), file=sys.stderr)
                return 1
            if isinstance(out, list):
                for row in out:
                    print(" | ".join("%s=%s" % kv for kv in row))
                print("(%d row%s)" % (len(out), "" if len(out) == 1 else "s"))
            else:
                print(out)
    except (OSError, CqlError) as e:
        print("cql-ping: %s: %s" % (a.contact, e), file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
