#!/usr/bin/env bash
# The main job: a local cpchain appliance with the default configuration.
# Creates a node home (keys, single-validator genesis, commented config.toml) on first
# run, self-tests the accelerators, starts the node, sends a demonstration transfer and
# leaves the node running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
cargo build --release -p cpc-cli
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cpchain="$target_dir/release/cpchain"
home="${CPCHAIN_HOME:-$PWD/.cpchain/node}"
export CPCHAIN_HOME="$home"

if [ ! -f "$home/config.toml" ]; then
  "$cpchain" init --home "$home"
fi
"$cpchain" accel selftest

"$cpchain" start --home "$home" &
node=$!
stop() {
  kill -TERM "$node" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
  exit 0
}
trap stop INT TERM
trap 'kill -TERM "$node" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$cpchain" status --home "$home" >/dev/null 2>&1 && break
  kill -0 "$node" 2>/dev/null || { echo "the node stopped; see the messages above" >&2; exit 1; }
  sleep 0.1
done

foundation=$("$cpchain" keys show "$home/keys/foundation.key" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
echo
echo "== sending 1.5 CPC from the validator's account to the foundation"
echo "\$ cpchain tx transfer --home $home --to $foundation --amount 1.5 --wait"
"$cpchain" tx transfer --home "$home" --to "$foundation" --amount 1.5 --wait
echo
echo "== the node's status"
"$cpchain" status --home "$home"
cat <<TXT

The node is running: API on http://127.0.0.1:8645 (see /v1/openapi.json), data in $home/data.
Try, in another terminal:
  export CPCHAIN_HOME=$home
  $cpchain tx transfer --to $foundation --amount 2 --wait
  curl -s http://127.0.0.1:8645/v1/accounts/$foundation
  curl -s http://127.0.0.1:8645/v1/blocks/latest
  curl -s http://127.0.0.1:8645/metrics
Press Ctrl-C to stop it; \`make run\` again resumes the same chain.
TXT
wait "$node"
