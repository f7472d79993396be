#!/usr/bin/env bash
# Four-node ingest benchmark: a fresh `cpchain testnet` of four validators on loopback (all
# on this machine), loaded through node 1's HTTP batch endpoint with signed transfers from
# many accounts. Transactions gossip to the other nodes; blocks are proposed, voted and
# finalized by the committee. Reports finalized tx/s and commit latency p50/p99 (from the
# post of a batch to the first sight of its block on node 1).
# Usage: bench/network-ingest.sh   (TXS=100000 ACCOUNTS=1000 BATCH=1000 RATE=10000 INTERVAL_MS=250)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/cpchain.sh
net=$(mktemp -d)
base=$(python3 -c 'import random; print(random.randrange(20000, 40000, 10))')
"$cpchain" testnet --nodes 4 --out "$net" --p2p-port "$base" --api-port "$((base + 5))" \
  --block-interval-ms "${INTERVAL_MS:-250}" >/dev/null
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$net"
}
trap cleanup EXIT
for i in 1 2 3 4; do
  "$cpchain" start --home "$net/node$i" >"$net/node$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2 3 4; do
  for _ in $(seq 1 200); do
    "$cpchain" status --home "$net/node$i" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
sleep 2
"$cpchain" loadgen --home "$net/node1" --key "$net/keys/user-1.key" \
  --accounts "${ACCOUNTS:-1000}" --txs "${TXS:-100000}" --batch "${BATCH:-1000}" \
  --rate "${RATE:-10000}" --node-pid "${pids[0]}"
for i in 1 2 3 4; do
  curl -s "http://127.0.0.1:$((base + 4 + i))/v1/consensus" | python3 -c '
import json, sys
c = json.load(sys.stdin)
m = c["metrics"]
print("node'"$i"' height {} view {} view changes {} rejected {}".format(c["height"], c["view"], m["view_changes"], m["rejected"]))
'
done
