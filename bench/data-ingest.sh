#!/usr/bin/env bash
# Data-layer benchmark on the node path: a fresh 4-node `cpchain testnet` on loopback; the
# CLI encrypts, erasure-codes (k = 4, n = 6) and stores a random file through node 1 into
# the DHT, reads it back through node 2, then grants it to a second account, which reads it
# through node 3 with re-encryption by the proxies. Reports MB/s of put and get against one
# `sha256sum` pass over the same file in the same run, and the time of grant and of the
# grantee's get.
# Usage: bench/data-ingest.sh   (SIZE_MIB=64 PROFILE=release)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/cpchain.sh
net=$(mktemp -d)
base=$(python3 -c 'import random; print(random.randrange(20000, 40000, 10))')
"$cpchain" testnet --nodes 4 --out "$net" --p2p-port "$base" --api-port "$((base + 5))" >/dev/null
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
  for _ in $(seq 1 300); do
    "$cpchain" status --home "$net/node$i" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
sleep 3
size=$(( ${SIZE_MIB:-64} << 20 ))
head -c "$size" /dev/urandom >"$net/file.bin"
now() { date +%s.%N; }
t0=$(now); sha256sum "$net/file.bin" >/dev/null; t1=$(now)
owner="$net/keys/user-1.key"
grantee="$net/keys/user-2.key"
said=$("$cpchain" data put --home "$net/node1" --key "$owner" --stream bench -k 4 -n 6 \
  "$net/file.bin" 2>"$net/put.err")
t2=$(now)
range=$(grep -o 'intervals [0-9]*\.\.[0-9]*' <<<"$said" | head -1 | cut -d' ' -f2)
[ -n "$range" ] || { echo "put said: $said"; cat "$net/put.err"; exit 1; }
"$cpchain" data get --home "$net/node2" --key "$owner" --stream bench --interval "$range" \
  --out "$net/owner.bin" 2>/dev/null
t3=$(now)
cmp -s "$net/file.bin" "$net/owner.bin" || { echo "the owner's copy differs"; exit 1; }
"$cpchain" data announce --home "$net/node3" --key "$grantee" >/dev/null 2>&1
to=$("$cpchain" keys show --json "$grantee" | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
t4=$(now)
"$cpchain" data grant --home "$net/node1" --key "$owner" --stream bench --to "$to" \
  --intervals "$range" >/dev/null 2>&1
t5=$(now)
"$cpchain" data get --home "$net/node3" --key "$grantee" --stream bench --interval "$range" \
  --out "$net/grantee.bin" 2>/dev/null
t6=$(now)
cmp -s "$net/file.bin" "$net/grantee.bin" || { echo "the grantee's copy differs"; exit 1; }
python3 - "$size" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" <<'PY'
import sys
size = int(sys.argv[1])
t = [float(x) for x in sys.argv[2:]]
sha, put, get = t[1] - t[0], t[2] - t[1], t[3] - t[2]
grant, gget = t[5] - t[4], t[6] - t[5]
mb = size / 1e6
print(f"file {size >> 20} MiB, k = 4, n = 6, 4 nodes on loopback")
print(f"sha256sum    {sha:7.2f} s  {mb / sha:8.1f} MB/s (baseline)")
print(f"put          {put:7.2f} s  {mb / put:8.1f} MB/s  ({sha / put:.3f}x the baseline)")
print(f"get (owner)  {get:7.2f} s  {mb / get:8.1f} MB/s  ({sha / get:.3f}x the baseline)")
print(f"grant        {grant:7.2f} s  (transaction committed, kfrags to 3 proxies)")
print(f"get (grantee){gget:7.2f} s  {mb / gget:8.1f} MB/s  (cfrags from the proxies, then as the owner)")
PY
