#!/usr/bin/env bash
# The main job: a local network of four cpchain appliances with the default embedded
# configuration. On first run `cpchain testnet` writes keys, one genesis and a config per
# node; then the accelerators self-test, the four nodes start, a transfer sent to node 1
# is shown committed on node 4, sensor readings sent to the side chain through two
# gateways are shown final on a third, and the network runs until Ctrl-C (a later run
# resumes the same chain).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
cargo build --release -p cpc-cli
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cpchain="$target_dir/release/cpchain"
net="${CPCHAIN_TESTNET:-$PWD/.cpchain/testnet}"
nodes=4

if [ ! -f "$net/testnet.json" ]; then
  "$cpchain" testnet --nodes "$nodes" --out "$net"
fi
"$cpchain" accel selftest

pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'stop; exit 0' INT TERM
trap stop EXIT
for i in $(seq 1 "$nodes"); do
  "$cpchain" start --home "$net/node$i" >"$net/node$i.log" 2>&1 &
  pids+=($!)
done
api() { python3 -c "import json,sys; print(json.load(open('$net/testnet.json'))['nodes'][$1-1]['api'])"; }
echo
echo "== four nodes started (logs in $net/nodeN.log)"
for i in $(seq 1 "$nodes"); do
  echo "  node$i  API http://$(api "$i")"
done
for i in $(seq 1 "$nodes"); do
  for _ in $(seq 1 300); do
    "$cpchain" status --home "$net/node$i" >/dev/null 2>&1 && break
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "node$i stopped:" >&2; tail -20 "$net/node$i.log" >&2; exit 1; }
    sleep 0.1
  done
done

to=$("$cpchain" keys show "$net/keys/foundation.key" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
echo
echo "== sending 1.5 CPC from user 1 to the foundation through node 1"
echo "\$ cpchain tx transfer --home $net/node1 --key $net/keys/user-1.key --to $to --amount 1.5 --wait"
"$cpchain" tx transfer --home "$net/node1" --key "$net/keys/user-1.key" --to "$to" --amount 1.5 --wait
height() { curl -s "http://$(api "$1")/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])'; }
h1=$(height 1)
for _ in $(seq 1 100); do [ "$(height 4)" -ge "$h1" ] && break; sleep 0.1; done
echo
echo "== the same account on node 4 (at height $(height 4))"
curl -s "http://$(api 4)/v1/accounts/$to"
echo
echo
echo "== the DAG side chain: every node is a gateway of the group in genesis"
machine="$net/keys/machine-1.key"
[ -f "$machine" ] || "$cpchain" keys new --out "$machine" >/dev/null
for i in 1 2 3; do
  echo "\$ cpchain sidechain send --home $net/node2 --key $machine --wait confirmed event --event-type 1 --data \"temperature 21.$i C\" --x 12 --y 7"
  "$cpchain" sidechain send --home "$net/node2" --key "$machine" --wait confirmed \
    event --event-type 1 --data "temperature 21.$i C" --x 12 --y 7
done
echo "\$ cpchain sidechain send --home $net/node3 --key $machine --wait final event --event-type 2 --data congestion --x 40 --y 3"
hash=$("$cpchain" sidechain send --home "$net/node3" --key "$machine" --wait final \
  event --event-type 2 --data congestion --x 40 --y 3)
echo
echo "== that reading on node 4"
curl -s "http://$(api 4)/v1/sidechain/txs/$hash" | python3 -c '
import json, sys
t = json.load(sys.stdin)
print("status {} (anchor {}), confirmed {} ms after the gateway took it, in vertex {}".format(
    t["status"], t.get("anchor"), t["latency_ms"], t["vertices"][0][:16]))
'
echo
echo "== side-chain status on node 1"
curl -s "http://$(api 1)/v1/sidechain/status" | python3 -c '
import json, sys
s = json.load(sys.stdin)
a = s["last_anchor"] or {}
print("group {}…, {} gateways, quorum {}, {} vertices ({} confirmed), {} transactions confirmed".format(
    s["group_id"][:16], len(s["gateways"]), s["quorum"], s["vertices"], s["confirmed_vertices"], s["confirmed_txs"]))
print("last anchor: sequence {}, {} vertices, final {}".format(a.get("sequence"), a.get("confirmed_vertices"), a.get("is_final")))
print("cooperation scores: {}".format(s["scores"]))
'
echo
echo "== consensus on node 2"
curl -s "http://$(api 2)/v1/consensus" | python3 -c '
import json, sys
c = json.load(sys.stdin)
print("height {height}, view {view}, term {term} (next election at height {election_height}), "
      "epoch {epoch} since height {epoch_from_height} ({reason}), member {member}".format(**c))
for m in c["committee"]:
    lucky = "-" if m["lucky"] is None else "{:016x}".format(m["lucky"])
    print("  seat {}  {}  credit {:4}  lucky {}".format(m["index"], m["address"], m["credit"], lucky))
print("  tickets for the next term on chain: {}".format(c["tickets"]))
'
for i in $(seq 1 "$nodes"); do
  echo
  echo "== node$i"
  "$cpchain" status --home "$net/node$i"
done
cat <<TXT

The network is running. Try, in another terminal:
  $cpchain tx transfer --home $net/node3 --key $net/keys/user-2.key --to $to --amount 2 --wait
  curl -s http://$(api 1)/v1/consensus
  curl -s http://$(api 1)/v1/committee/history
  curl -s http://$(api 1)/v1/peers
  curl -s http://$(api 4)/v1/blocks/latest
  $cpchain sidechain send --home $net/node1 --key $machine --wait final event --data "reading"
  curl -s http://$(api 3)/v1/sidechain/status
  kill -9 one node's process: the other three go on; start it again and it catches up.
Press Ctrl-C to stop all four; \`make run\` again resumes the same chain.
TXT
wait
