#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration, CLI, doc tests and the benches in
# test mode) and ends with one summary line over all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
{ cargo test --workspace --all-targets && cargo test --workspace --doc; } 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # a build error or a crashed test binary counts as a failure
fi
echo "summary: $passed passed, $failed failed"
exit "$status"
