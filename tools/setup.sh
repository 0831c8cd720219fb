#!/usr/bin/env bash
# Installs moesim's build dependencies from Debian packages (Debian 12, as root). Idempotent.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git libsimgrid-dev libboost-graph-dev libeigen3-dev nlohmann-json3-dev
      libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev clang-format
      clang-14 libclang-rt-14-dev   # clang-14 and its compiler-rt (libFuzzer, sanitizers): asan, fuzz presets
      slurm-wlm munge openmpi-bin   # the sweep's Slurm and MPI test (tests/sweep_cluster_test.sh)
      chromium fonts-liberation)    # the HTML reports in a browser (tests/report_browser_test.sh)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present" >&2
