#!/bin/sh
# Installs the Socket.IO peer's dependencies exactly as locked (package-lock.json).
# Needs Node.js >= 18 and npm. Run from anywhere.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node -e 'require("socket.io"); console.log("socket.io", require("./node_modules/socket.io/package.json").version, "ready; node", process.version)'
