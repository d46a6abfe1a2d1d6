#!/bin/sh
# Profiles a Parley server under the `chat` load with perf (cpu-clock samples, frame
# pointers): seeds users, starts the server, runs the generator against it, records the
# server for PROFILE_SECS seconds, and prints the hottest symbols (self and children).
#
#   benches/profile-parley.sh [RATE] [USERS]
#
# Build a server with frame pointers and line tables first, e.g.
#   CARGO_TARGET_DIR=/work/target-bench/prof RUSTFLAGS="-C force-frame-pointers=yes" \
#     CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_BENCH_DEBUG=line-tables-only \
#     cargo build --release --bins --benches
# and point PARLEY_BIN and LOAD_BIN at it (LOAD_BIN: target/release/deps/load-<hash>).
# Hardware counters are not available in this VM; cpu-clock sampling is.
set -eu
RATE=${1:-8000}
USERS=${2:-1000}
PARLEY_BIN=${PARLEY_BIN:?set PARLEY_BIN to a parley binary}
LOAD_BIN=${LOAD_BIN:?set LOAD_BIN to the load bench binary}
PROFILE_SECS=${PROFILE_SECS:-15}
PORT=${PORT:-19500}
OUT=${OUT:-$(mktemp -d /tmp/parley-profile-XXXXXX)}
mkdir -p "$OUT" && cd "$OUT"
"$PARLEY_BIN" admin seed-users --data-dir data --count "$USERS" --prefix load --out users.json
RUST_LOG=warn "$PARLEY_BIN" serve --data-dir data --listen 127.0.0.1:$PORT --log-format json \
  --send-rate=1000000 --send-burst=1000000 --session-queue=65536 >server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1
"$LOAD_BIN" chat --systems parley --addr 127.0.0.1:$PORT --pid $SERVER --users-file users.json \
  --users "$USERS" --rate "$RATE" --warmup 3 --duration $((PROFILE_SECS + 6)) --quiet-wait 0 \
  --out chat.json >chat.out 2>&1 &
LOAD=$!
sleep 5
perf record -F 999 -g -p $SERVER -o perf.data -- sleep "$PROFILE_SECS" >/dev/null 2>&1
wait $LOAD || true
grep '^|' chat.out
echo "--- self time (top symbols)"
perf report -i perf.data --no-children --sort symbol --stdio -g none --percent-limit 0.8 2>/dev/null \
  | grep -v '^#' | grep -v '^$' | cut -c1-110
echo "--- with children"
perf report -i perf.data --children --sort symbol --stdio -g none --percent-limit 3 2>/dev/null \
  | grep -v '^#' | grep -v '^$' | cut -c1-140
echo "profile data in $OUT"
