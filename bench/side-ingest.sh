#!/usr/bin/env bash
# Side-chain benchmark on the node path: a fresh `cpchain testnet` of four validators on
# loopback, every one a gateway of the side group, loaded with signed machine events spread
# over the four gateways' HTTP APIs. Vertices gossip between the processes; a transaction
# confirms once a quorum (3 of 4) of gateways endorses it. Reports confirmed tx/s (on
# gateway 1) and confirmation latency p50/p99 as the gateway that took each sampled
# transaction measured it (first sight to confirmation).
# PRUNE=0 keeps the whole side-chain history in memory (the baseline for memory).
# SIDE_SET adds [sidechain] settings to every gateway's config, one per line (for example
# SIDE_SET="vertex_interval_ms = 10"). Also reported: the CPU time the gateways used.
# SAMPLES=file.csv writes every latency sample with the time its transaction was first seen.
# RESTART=1 then restarts gateway 1 and reports how long restoring its side-chain snapshot
# and replaying the logs after it took (until its API answers again) and the restarted
# process's peak RSS.
# DOWN=1 stops gateway 4 before the load (the other three confirm without it, but pruning
# waits for it) and reports what gateway 1 then holds; with RETIRE=1 the group's owner
# then retires gateway 4 (`cpchain sidechain retire`) and the script reports how long
# gateway 1 took to let go of the history it held for it.
# CPCHAIN=path runs that binary instead of building one (an A/B run of two builds), as in
# every benchmark script (bench/cpchain.sh).
# Usage: bench/side-ingest.sh   (TXS=50000 MACHINES=1000 BATCH=500 RATE=10000 PROFILE=release PRUNE=1 RESTART=0 DOWN=0 RETIRE=0 SIDE_SET= CPCHAIN=)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/cpchain.sh
net=$(mktemp -d)
base=$(python3 -c 'import random; print(random.randrange(20000, 40000, 10))')
"$cpchain" testnet --nodes 4 --out "$net" --p2p-port "$base" --api-port "$((base + 5))" >/dev/null
side_set=${SIDE_SET:-}
if [ "${PRUNE:-1}" = 0 ]; then
  side_set=$(printf 'prune_history = false\n%s' "$side_set")
fi
if [ -n "$side_set" ]; then
  for i in 1 2 3 4; do
    python3 - "$net/node$i/config.toml" "$side_set" <<'PY'
import re, sys
p, extra = sys.argv[1], sys.argv[2]
s = open(p).read()
head, sep, rest = s.partition("[sidechain]\n")
assert sep
end = re.search(r"^\[", rest, re.M)
section, tail = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
for line in filter(None, map(str.strip, extra.splitlines())):
    key = line.split("=")[0].strip()
    section, n = re.subn(rf"^{re.escape(key)}\s*=.*$", line, section, flags=re.M)
    if n == 0:
        section = line + "\n" + section
open(p, "w").write(head + sep + section + tail)
PY
  done
fi
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
    "$cpchain" sidechain status --home "$net/node$i" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
sleep 2
live=(1 2 3 4)
if [ "${DOWN:-0}" = 1 ]; then
  gone=$("$cpchain" sidechain status --home "$net/node4" | python3 -c 'import json, sys; print(json.load(sys.stdin)["gateway"])')
  kill -TERM "${pids[3]}"
  wait "${pids[3]}" 2>/dev/null || true
  live=(1 2 3)
fi
args=()
for i in "${live[@]}"; do args+=(--gateway-home "$net/node$i" --node-pid "${pids[$((i - 1))]}"); done
# CPU seconds (user + system) the gateways used, from /proc: the load's cost, which a
# shared machine's noise moves far less than its latency.
cpu_secs() {
  local t=0 p
  for i in "${live[@]}"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/${pids[$((i - 1))]}/stat")))
  done
  echo "$t"
}
cpu0=$(cpu_secs)
rc=0
"$cpchain" sidechain loadgen "${args[@]}" --machines "${MACHINES:-1000}" \
  --txs "${TXS:-50000}" --batch "${BATCH:-500}" --rate "${RATE:-10000}" ${JSON:+--json} \
  ${SAMPLES:+--samples "$SAMPLES"} || rc=$?
ticks=$(($(cpu_secs) - cpu0))
python3 -c 'import sys; t, hz, n = map(int, sys.argv[1:]); print(f"gateways used {t / hz:.1f} CPU-seconds, {1e4 * t / hz / n:.2f} per 10,000 transactions")' \
  "$ticks" "$(getconf CLK_TCK)" "${TXS:-50000}"
for i in "${live[@]}"; do
  "$cpchain" sidechain status --home "$net/node$i" | python3 -c '
import json, sys
s = json.load(sys.stdin)
m = s["metrics"]
a = s.get("last_anchor") or {}
print("node'"$i"' vertices held {} pruned {} confirmed txs {} pruned {} last anchor {} (final {}) rejected vertices {}; log synced {} times, {:.2f} ms each; archive {:.1f} MiB from anchor {}".format(
    s["vertices"], s["pruned_vertices"], s["confirmed_txs"], s["pruned_txs"], a.get("sequence"), a.get("is_final"), m["rejected_vertices_total"],
    m["log_syncs_total"], m["log_sync_us_total"] / 1e3 / max(1, m["log_syncs_total"]),
    m.get("archive_bytes", 0) / 2**20, m.get("archive_kept_from", 0)))
'
done
# Snapshots the gateways wrote meanwhile (snapshot_log_mib), and how long encoding one held
# up a gateway's side-chain thread.
python3 - "$net"/node*.log <<'PY'
import re, sys
ms = sorted(
    int(m.group(1))
    for p in sys.argv[1:]
    for line in open(p, errors="replace")
    if "side-chain snapshot written" in line
    for m in [re.search(r"encode_ms\S*?=\S*?(\d+)", re.sub(r"\x1b\[[0-9;]*m", "", line))]
    if m
)
if ms:
    print(f"snapshots: {len(ms)} written; encoding held the side-chain thread {ms[len(ms) // 2]} ms (median), {ms[-1]} ms (max)")
PY
# What gateway 1 holds, and its resident memory.
held() {
  "$cpchain" sidechain status --home "$net/node1" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["awaiting_settling"], s["vertices"], s["pruned_vertices"])
'
}
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/${pids[0]}/status"; }
if [ "${DOWN:-0}" = 1 ]; then
  read -r awaiting vertices pruned < <(held)
  down_held=$vertices
  echo "down: with gateway 4 stopped, node1 holds $vertices vertices ($awaiting final ones awaiting settling, $pruned pruned); RSS $(rss) MB"
  if [ "${RETIRE:-0}" = 1 ]; then
    group=$("$cpchain" sidechain status --home "$net/node1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["group_id"])')
    t0=$(date +%s%N)
    "$cpchain" sidechain retire --home "$net/node1" --key "$net/keys/foundation.key" \
      --group "$group" --gateway "$gone" --wait >/dev/null
    before=$awaiting
    # Polls gateway 1 until the arithmetic test $1 holds, for at most 30 s.
    until_held() {
      for _ in $(seq 1 300); do
        read -r awaiting vertices pruned < <(held)
        (($1)) && break
        sleep 0.1
      done
    }
    until_held 'awaiting * 4 <= before'
    t1=$(date +%s%N)
    echo "retire: $(((t1 - t0) / 1000000)) ms from sending side_retire until node1 held a quarter or less; it holds $vertices vertices ($awaiting awaiting settling, $pruned pruned); RSS $(rss) MB"
    # The rest was not final yet: it goes with the next anchors.
    until_held 'vertices * 20 <= down_held'
    t2=$(date +%s%N)
    echo "retire: after $(((t2 - t0) / 1000000)) ms (a twentieth or less, or 30 s) node1 holds $vertices vertices ($awaiting awaiting settling, $pruned pruned); RSS $(rss) MB"
  fi
fi
if [ "${RESTART:-0}" = 1 ]; then
  kill -TERM "${pids[0]}"
  wait "${pids[0]}" 2>/dev/null || true
  log_bytes=$(cat "$net"/node1/sidechain/*.log | wc -c)
  snap_bytes=$( (cat "$net"/node1/sidechain/*.snapshot 2>/dev/null || true) | wc -c)
  t0=$(date +%s%N)
  "$cpchain" start --home "$net/node1" >>"$net/node1.log" 2>&1 &
  pids[0]=$!
  until "$cpchain" sidechain status --home "$net/node1" >/dev/null 2>&1; do
    kill -0 "${pids[0]}" 2>/dev/null || { echo "restart: gateway 1 exited" >&2; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s%N)
  hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/${pids[0]}/status")
  echo "restart: gateway 1 restored its side-chain snapshot ($((snap_bytes / 1048576)) MiB), replayed its logs ($((log_bytes / 1048576)) MiB) and answered in $(((t1 - t0) / 1000000)) ms; peak RSS ${hwm} MB"
  "$cpchain" sidechain status --home "$net/node1" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("restart: node1 after the replay holds {} vertices, {} transactions pruned of {} confirmed".format(
    s["vertices"], s["pruned_txs"], s["confirmed_txs"]))
'
fi
exit "$rc"
