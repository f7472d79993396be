#!/usr/bin/env bash
# Installs what building, running and testing cpchain need on Debian or Ubuntu.
# Idempotent: when everything is present it changes nothing and touches no network.
set -euo pipefail

# Debian packages: the C and C++ toolchain (build-essential: RocksDB, and the tests that
# compile the CUDA kernels as host C++), clang/libclang (RocksDB's bindings), pkg-config,
# openssl (bench/openssl-compare.sh), python3 (bench scripts), git; the FPGA flow and its
# tests: yosys, nextpnr-ice40 and fpga-icestorm (icepack, icetime) build iCE40 bitstreams
# (hdl/flow/build.sh), iverilog simulates the emitted Verilog.
packages=(build-essential pkg-config clang libclang-dev openssl python3 git ca-certificates
  yosys nextpnr-ice40 fpga-icestorm iverilog)
# GPU backend: the Vulkan loader and Mesa's drivers, whose lavapipe is a software Vulkan
# device, so the wgpu backend and its tests run on machines without a GPU.
packages+=(libvulkan1 mesa-vulkan-drivers)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust: edition 2024, wgpu 30 (Rust 1.87) and tfhe 1.8 (Rust 1.91) need Rust 1.91 or newer.
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust 1.91 or newer with rustup (https://rustup.rs)" >&2
  exit 1
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "$rust_minor" -lt 91 ]; then
  echo "setup: $(rustc --version) is too old; cpchain needs Rust 1.91 or newer (rustup update)" >&2
  exit 1
fi
