#!/usr/bin/env bash
# Builds an iCE40-HX8K bitstream from a board design emitted by `cpchain hdl emit`.
#
#   hdl/flow/build.sh DESIGN.v OUT_DIR [TARGET_MHZ]
#
# yosys (synth_ice40) -> nextpnr-ice40 (hx8k, ct256, hx8k.pcf) -> icepack. Prints the
# logic cells (LUTs) used and the maximum frequency nextpnr reports for every clock, and
# exits non-zero when the design does not fit or a clock misses TARGET_MHZ (default 48).
# Writes OUT_DIR/NAME.{json,asc,bin}, the tool logs and OUT_DIR/NAME.summary.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 DESIGN.v OUT_DIR [TARGET_MHZ]" >&2
    exit 2
fi
src=$1
out=$2
target=${3:-48}
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$src" .v)
seed=${NEXTPNR_SEED:-1}

for tool in yosys nextpnr-ice40 icepack; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: $tool is not installed; run deploy/setup.sh (Debian: yosys nextpnr-ice40 fpga-icestorm)" >&2
        exit 1
    fi
done
[ -f "$src" ] || { echo "error: $src does not exist; run cpchain hdl emit --out DIR first" >&2; exit 1; }
mkdir -p "$out"

echo "flow: synthesising $name (yosys synth_ice40)"
if ! yosys -q -l "$out/$name.yosys.log" -p "synth_ice40 -top $name -json $out/$name.json" "$src"; then
    echo "error: synthesis failed; see $out/$name.yosys.log" >&2
    exit 1
fi

echo "flow: placing and routing $name (nextpnr-ice40 --hx8k --package ct256, target $target MHz)"
# Timing failures are judged below, so the figures are printed either way.
if ! nextpnr-ice40 --hx8k --package ct256 --pcf "$here/hx8k.pcf" \
        --json "$out/$name.json" --asc "$out/$name.asc" \
        --freq "$target" --seed "$seed" --timing-allow-fail \
        --log "$out/$name.nextpnr.log" -q; then
    echo "error: place and route failed (does the design fit an HX8K?); see $out/$name.nextpnr.log" >&2
    grep -E "ERROR|Unable to|not enough" "$out/$name.nextpnr.log" >&2 || true
    exit 1
fi

echo "flow: packing $name (icepack)"
icepack "$out/$name.asc" "$out/$name.bin"

log="$out/$name.nextpnr.log"
# The utilisation report after routing: "ICESTORM_LC:  2345/ 7680    30%".
lc=$( (grep -E "ICESTORM_LC:" "$log" || true) | tail -1 | sed -E 's/.*ICESTORM_LC: *([0-9]+)\/ *([0-9]+).*/\1 \2/')
ram=$( (grep -E "ICESTORM_RAM:" "$log" || true) | tail -1 | sed -E 's/.*ICESTORM_RAM: *([0-9]+)\/ *([0-9]+).*/\1 \2/')
# "Max frequency for clock 'X': 52.34 MHz (PASS at 48.00 MHz)": the final report, one
# line per clock, follows the last "Critical path report" heading.
fmax=$( (grep -E "Max frequency for clock" "$log" || true) | sed -E 's/^Info: +//' |
    awk -F"'" '{ last[$2] = $0 } END { for (c in last) print last[c] }')
if [ -z "$lc" ] || [ -z "$fmax" ]; then
    echo "error: no utilisation or timing report in $log" >&2
    exit 1
fi
read -r luts luts_total <<<"$lc"
read -r brams brams_total <<<"${ram:-0 0}"
{
    echo "design $name"
    echo "device iCE40-HX8K ct256 (iCE40-HX8K breakout board)"
    echo "luts $luts/$luts_total"
    echo "brams $brams/$brams_total"
    echo "$fmax" | sed -E "s/^/fmax /"
    echo "bitstream $out/$name.bin"
} | tee "$out/$name.summary"

if echo "$fmax" | grep -q "FAIL"; then
    echo "error: $name misses its ${target} MHz clock" >&2
    exit 1
fi
echo "flow: $name fits ($luts of $luts_total logic cells) and meets ${target} MHz"
