#!/usr/bin/env bash
# Prints the accelerator layer's CPU figures as ratios against `openssl speed`, both run
# side by side on this machine, so the ratios hold on a noisy shared host:
#   - SHA-256 over 16 KiB messages on one core vs `openssl speed -evp sha256 -bytes 16384`
#     (target: at least 90 %),
#   - SHA-256 over 64-byte messages: hashes per second per core, and vs openssl,
#   - Ed25519 batches of 64 on all cores vs single-thread one-at-a-time verification
#     (target: at least 3x).
# Usage: bench/openssl-compare.sh   (builds cpchain in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v openssl >/dev/null || { echo "openssl is missing: run deploy/setup.sh" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is missing: run deploy/setup.sh" >&2; exit 1; }

. bench/cpchain.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
seconds=${SECONDS_PER_RUN:-3}

# openssl and cpchain alternate, twice each, so a burst of load elsewhere hits both.
for round in 1 2; do
  openssl speed -evp sha256 -bytes 16384 -seconds "$seconds" 2>/dev/null | tail -1 > "$out/openssl-16k-$round"
  openssl speed -evp sha256 -bytes 64 -seconds "$seconds" 2>/dev/null | tail -1 > "$out/openssl-64-$round"
  "$cpchain" bench --threads 1 --ops sha256-16kib,sha256-64b --sizes 1024 \
    --budget-ms $((seconds * 1000)) --json --out "$out/cpchain-1t-$round" 2>/dev/null > "$out/cpchain-1t-$round.json"
done
"$cpchain" bench --ops ed25519 --sizes 64 --budget-ms $((seconds * 1000)) --json --out "$out/ed" 2>/dev/null > "$out/ed.json"

python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
def openssl(name):
    # "sha256   1789890.25k": thousands of bytes per second.
    vals = []
    for r in (1, 2):
        line = open(os.path.join(d, f"{name}-{r}")).read().split()
        vals.append(float(line[-1].rstrip("k")) * 1000)
    return max(vals)
def cpchain(op, field):
    best = 0.0
    for r in (1, 2):
        rep = json.load(open(os.path.join(d, f"cpchain-1t-{r}.json")))
        best = max(best, max(row[field] for row in rep["rows"] if row["op"] == op))
    return best
o16, o64 = openssl("openssl-16k"), openssl("openssl-64")
c16 = cpchain("sha256-16kib", "bytes_per_sec")
c64 = cpchain("sha256-64b", "items_per_sec")
ed = json.load(open(os.path.join(d, "ed.json")))
row = next(r for r in ed["rows"] if r["op"] == "ed25519" and r["batch"] == 64)
base = next(b for b in ed["baselines"] if b["op"] == "ed25519")
print(f"sha256 16 KiB, one core: cpchain {c16/1e6:8.1f} MB/s, openssl {o16/1e6:8.1f} MB/s -> {100*c16/o16:5.1f} % (target >= 90 %)")
print(f"sha256 64 B, one core:   cpchain {c64/1e6:8.2f} M hashes/s per core, openssl {o64/64/1e6:6.2f} M hashes/s -> {100*c64/(o64/64):5.1f} %")
print(f"ed25519 batch 64 on {ed['cpu_threads']} threads: {row['items_per_sec']:,.0f}/s vs one-at-a-time {base['items_per_sec']:,.0f}/s -> {row['speedup']:.2f}x (target >= 3x)")
ok = c16 >= 0.9 * o16 and row["speedup"] >= 3.0
print("targets met" if ok else "TARGETS MISSED")
sys.exit(0 if ok else 1)
PY
