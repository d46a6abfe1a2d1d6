#!/usr/bin/env bash
# The long crash-safety and graceful-shutdown run (tests/chaos.rs) against a release
# build: real WebSocket clients at load, the server SIGKILLed CHAOS_KILLS times and
# restarted on the same data dir, then every conversation checked (lost and duplicated
# must be 0); then SIGTERM under load. The CI-sized run is part of `cargo test`.
#
#   scripts/chaos.sh                      # 10 kills over 120 s, 20 clients
#   CHAOS_KILLS=30 CHAOS_SECONDS=600 CHAOS_CLIENTS=40 scripts/chaos.sh
#   CHAOS_SEED=1234 scripts/chaos.sh sigkill   # replay kill times; only the SIGKILL test
#
# Extra arguments are test-name filters. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHAOS_KILLS="${CHAOS_KILLS:-10}"
export CHAOS_SECONDS="${CHAOS_SECONDS:-120}"
export CHAOS_CLIENTS="${CHAOS_CLIENTS:-20}"
echo "chaos: CHAOS_CLIENTS=$CHAOS_CLIENTS CHAOS_KILLS=$CHAOS_KILLS CHAOS_SECONDS=$CHAOS_SECONDS${CHAOS_SEED:+ CHAOS_SEED=$CHAOS_SEED}" >&2
exec cargo test --release --test chaos -- --nocapture --test-threads=1 "$@"
