#!/bin/sh
# Installs what the browser test needs, and only what is missing: Debian's Chromium (from
# apt, never a browser download) and playwright-core from the lock file. Idempotent.
set -eu
cd "$(dirname "$0")"
if ! [ -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "chromium is missing: run 'sudo apt-get install -y chromium', then this again" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
command -v node >/dev/null || { echo "node is missing: install Node.js 20 or newer (apt-get install -y nodejs npm)" >&2; exit 1; }
# playwright-core never downloads a browser; this says so to any of its install hooks too.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# A copy of the lock file installed from marks node_modules as current.
if ! [ -d node_modules/playwright-core ] || ! cmp -s package-lock.json node_modules/.installed-lock.json; then
    npm ci --no-audit --no-fund
    cp package-lock.json node_modules/.installed-lock.json
fi
echo "browser test ready: cargo test --test browser"
