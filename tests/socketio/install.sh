#!/bin/sh
# Installs socket.io-client exactly as locked (package-lock.json), for the Socket.IO
# tests (`cargo test --test socketio` runs them). Idempotent: does nothing when the
# installed tree already matches the lockfile. Needs Node.js >= 18 and npm.
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.parley-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
