#!/bin/sh
# Runs schemathesis (from PyPI, in a virtualenv under target/) against a live Parley built
# from this tree: every operation of /openapi.json, with a registered user's token, and
# every check (no 5xx, responses match the document, valid requests accepted, invalid
# ones refused). Exit status is schemathesis's. Usage: scripts/schemathesis.sh [st args]
set -eu
cd "$(dirname "$0")/.."
VENV=target/schemathesis-venv
VERSION=4.32.5
if ! [ -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version | grep -q "$VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$VERSION"
fi
cargo build --quiet
DATA=$(mktemp -d)
PORT=${PORT:-18080}
ADMIN=schemathesis-admin-token-0123456789
BASE=http://127.0.0.1:$PORT
# Limits high enough that fuzzing is not all 429s.
PARLEY_ADMIN_TOKEN=$ADMIN RUST_LOG=warn ./target/debug/parley serve --listen "127.0.0.1:$PORT" \
    --data-dir "$DATA" --auth-per-address-per-minute 100000 --login-per-email-per-minute 100000 \
    --send-rate 100000 --send-burst 100000 --session-opens-per-minute 100000 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT INT TERM
for _ in $(seq 50); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -sf -X POST "$BASE/api/auth/register" -H 'Content-Type: application/json' \
    -d '{"name":"Fuzz","email":"fuzz@example.com","password":"correct horse battery"}' |
    sed -E 's/.*"token":"([^"]+)".*/\1/')
[ -n "$TOKEN" ] || { echo "could not register the fuzzing user" >&2; exit 1; }
# Logout is left out: it would revoke the token every other operation is tested with;
# /ws too: it answers only WebSocket upgrades (tests/api/asyncapi.rs checks its frames).
# Signing a session out can revoke that token too (the fuzzer reads the caller's own
# session id from the list of sessions), so that operation runs alone, last.
st() {
    "$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$BASE/openapi.json" \
        --header "Authorization: Bearer $TOKEN" --exclude-path /api/auth/logout \
        --exclude-path /ws "$@"
}
SESSION='/api/auth/sessions/{id}'
st --exclude-path "$SESSION" "$@"
st --include-path "$SESSION" "$@"
