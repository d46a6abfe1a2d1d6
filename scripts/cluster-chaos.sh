#!/usr/bin/env bash
# The long cluster chaos run (tests/cluster.rs, killing_random_nodes_under_load_...):
# three Parley nodes on 127.0.0.1-3, one nats-server (scripts/nats-node) and a CQL node;
# pairs of real WebSocket clients chat across random nodes while a random node is
# SIGKILLed and restarted CLUSTER_CHAOS_KILLS times; clients reconnect to another node
# and retry unacked sends with their client ids. Prints
#   cluster chaos: sent N, acked N, lost 0, duplicated 0
# and fails unless lost and duplicated are 0 and every conversation is gapless.
#
#   scripts/cluster-chaos.sh                                   # 10 kills over 120 s, 8 pairs
#   CLUSTER_CHAOS_KILLS=30 CLUSTER_CHAOS_SECONDS=600 scripts/cluster-chaos.sh
#   CLUSTER_CHAOS_SEED=1234 scripts/cluster-chaos.sh           # replay the victims
#
# Uses SCYLLA_URI when set, else starts scripts/cql-node (and leaves it running).
# CARGO_PROFILE=release for a release build (dev by default: no second build).
set -euo pipefail
cd "$(dirname "$0")/.."
export CLUSTER_CHAOS_KILLS="${CLUSTER_CHAOS_KILLS:-10}"
export CLUSTER_CHAOS_SECONDS="${CLUSTER_CHAOS_SECONDS:-120}"
export CLUSTER_CHAOS_PAIRS="${CLUSTER_CHAOS_PAIRS:-8}"
if [ -z "${SCYLLA_URI:-}" ]; then
    SCYLLA_URI="$(scripts/cql-node start)"
    export SCYLLA_URI
fi
profile=()
[ "${CARGO_PROFILE:-dev}" = dev ] || profile=(--profile "$CARGO_PROFILE")
echo "cluster-chaos: pairs=$CLUSTER_CHAOS_PAIRS kills=$CLUSTER_CHAOS_KILLS seconds=$CLUSTER_CHAOS_SECONDS${CLUSTER_CHAOS_SEED:+ seed=$CLUSTER_CHAOS_SEED}" >&2
exec cargo test "${profile[@]}" --test cluster killing_random_nodes_under_load -- --nocapture --test-threads=1
