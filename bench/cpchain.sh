# Sourced by the benchmark scripts (from the workspace root): sets `cpchain` to the node
# binary. CPCHAIN=path runs that binary, for an A/B run of two builds; otherwise cpc-cli is
# built (PROFILE=release, the default, or debug) in the workspace's target directory.
if [ -n "${CPCHAIN:-}" ]; then
  cpchain=$CPCHAIN
else
  profile=${PROFILE:-release}
  if [ "$profile" = release ]; then
    cargo build --release -q -p cpc-cli
  else
    cargo build -q -p cpc-cli
  fi
  target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  cpchain="$target_dir/$( [ "$profile" = release ] && echo release || echo debug )/cpchain"
fi
