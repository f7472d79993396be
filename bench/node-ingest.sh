#!/usr/bin/env bash
# Single-node ingest benchmark: a fresh node in a temporary home, loaded through the HTTP
# batch endpoint with signed transfers from many accounts (signatures verified through the
# accelerator at admission), reporting committed tx/s, commit latency p50/p99 and the
# node's resident memory at idle and under load.
# Usage: bench/node-ingest.sh   (TXS=100000 ACCOUNTS=500 BATCH=1000 INTERVAL_MS=1000 RATE=0)
# RATE paces the offered load in tx/s; 0 sends as fast as the node admits.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/cpchain.sh
home=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$cpchain" init --home "$home/node" >/dev/null
"$cpchain" start --home "$home/node" --api.listen "127.0.0.1:$port" \
  --consensus.block-interval-ms "${INTERVAL_MS:-1000}" >"$home/node.log" 2>&1 &
node=$!
trap 'kill -TERM $node 2>/dev/null; wait $node 2>/dev/null; rm -rf "$home"' EXIT
for _ in $(seq 1 100); do
  "$cpchain" status --api "http://127.0.0.1:$port" >/dev/null 2>&1 && break
  sleep 0.1
done
sleep 1 # let the idle node settle before measuring its memory
"$cpchain" loadgen --home "$home/node" --api "http://127.0.0.1:$port" \
  --accounts "${ACCOUNTS:-500}" --txs "${TXS:-100000}" --batch "${BATCH:-1000}" --rate "${RATE:-0}" --node-pid "$node"
