#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU tests, compute-sanitizer (memcheck, racecheck) over the
# kernels with profiling off, a calibration of this GPU (`moesim calibrate`, every measurement kept in a
# profile file), and PyTorch's kernels at the same shapes where torch is installed. Every figure and log
# goes to one folder.
#   tools/gpu_run.sh OUT_DIR [GPU]       GPU: the catalog GPU the efficiencies refer to (default: from
#                                        nvidia-smi, h200-sxm or h100-sxm)
# Binaries: a pack from tools/gpu_pack.sh at .gpu/moesim-gpu.tar.xz when present (for a machine without
# moesim's build dependencies), else build/dev after `cmake --preset dev` and a build of the two targets.
# Each step has a time limit (seconds, environment): GPU_TESTS_S, CALIBRATE_S, TORCH_S, MEMCHECK_S,
# RACECHECK_S; a step that fails or runs out is reported and the others still run.
set -u
out=${1:?usage: tools/gpu_run.sh OUT_DIR [GPU]}
mkdir -p "$out"
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "gpu_run: $*" | tee -a "$out/summary.txt"; }

if [ -f "$root/.gpu/moesim-gpu.tar.xz" ]; then
  pack=$(mktemp -d)
  tar -C "$pack" -xJf "$root/.gpu/moesim-gpu.tar.xz"
  bin_moesim=$pack/bin/moesim
  bin_tests=$pack/bin/kernels_gpu_test
  cuda_libs=$(for f in libcudart.so.13 libcublasLt.so.13 libcupti.so.13; do
    find /usr/local/cuda* /usr/lib /opt -name "$f" 2>/dev/null | head -1 | xargs -r dirname; done | sort -u | paste -sd:)
  export LD_LIBRARY_PATH="$pack/lib:${cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export MOESIM_CATALOG="$root/scenarios/catalog"  # the pack's binaries were configured elsewhere
else
  (cd "$root" && cmake --preset dev >/dev/null && cmake --build build/dev -j --target moesim kernels_gpu_test) \
    >"$out/build.log" 2>&1 || { log "build failed: $out/build.log"; exit 1; }
  bin_moesim=$root/build/dev/cli/moesim
  bin_tests=$root/build/dev/tests/kernels_gpu_test
fi

nvidia-smi >"$out/nvidia-smi.txt" 2>&1
"$bin_moesim" --version >"$out/version.txt" 2>&1 || { log "moesim does not start:"; cat "$out/version.txt" | tee -a "$out/summary.txt"; ldd "$bin_moesim" | grep "not found" | tee -a "$out/summary.txt"; }
name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
gpu=${2:-}
if [ -z "$gpu" ]; then
  case "$name" in *H200*) gpu=h200-sxm ;; *) gpu=h100-sxm ;; esac
fi
log "device: ${name:-unknown}; catalog GPU $gpu; $(date -u +%FT%TZ)"

step() {  # step NAME SECONDS COMMAND...: runs with a limit, logs to OUT/NAME.log, records rc and seconds
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  log "$name: rc=$rc in $((SECONDS - t0)) s (limit $limit s)$([ $rc = 124 ] && echo ', TIMED OUT')"
  return $rc
}

# 1. The GPU tests (profiler smoke sweep included: it fits the profiler's variants).
step gpu_tests "${GPU_TESTS_S:-90}" "$bin_tests" --gtest_output="xml:$out/gpu_tests.xml"
grep -E '^\[  (PASSED|FAILED|SKIPPED)|^\[  FAILED|tests ran' "$out/gpu_tests.log" | tee -a "$out/summary.txt"

# 2. The calibration: measurements first (kept even if the fit fails), then the fit and its check.
step calibrate "${CALIBRATE_S:-240}" "$bin_moesim" calibrate --plan full --gpu "catalog:$gpu" \
  --measurements "$out/$gpu-profile.json" --out "$out/$gpu.json" --force
grep -E 'held-out|^ +[a-z_]+ +[0-9]+ +[0-9.]+%|SM clock|wrote' "$out/calibrate.log" | head -20 | tee -a "$out/summary.txt"

# 3. PyTorch at the same shapes, and its FP8 GEMMs, casts and attention, where torch is installed.
if python3 -c 'import torch' 2>/dev/null; then
  step torch "${TORCH_S:-60}" python3 "$root/tools/torch_kernels.py" "$out/torch.json"
  tail -25 "$out/torch.log" | tee -a "$out/summary.txt"
  step torch_fp8_attention "${TORCH_S:-60}" python3 "$root/tools/torch_fp8_attention.py" "$out/fp8_attention.json"
  tail -40 "$out/torch_fp8_attention.log" | tee -a "$out/summary.txt"
  # The CPU's cost of issuing eager calls (the host side of a layer without CUDA graphs).
  step torch_host "${TORCH_S:-60}" python3 "$root/tools/torch_host.py" "$out/torch_host.json"
  tail -20 "$out/torch_host.log" | tee -a "$out/summary.txt"
fi

# The figures: copy ceiling, router, memory-bound kernels as a share of it, expert against dense GEMMs,
# whole layers, held-out errors, PyTorch beside them.
python3 "$root/tools/kernel_figures.py" "$out/$gpu-profile.json" "$out/$gpu.json" \
  "$([ -f "$out/torch.json" ] && echo "$out/torch.json")" >"$out/figures.txt" 2>&1 ||
  log "figures: see $out/figures.txt"

# 4. compute-sanitizer with profiling off (CUPTI and the sanitizer cannot share the device).
if command -v compute-sanitizer >/dev/null; then
  step memcheck "${MEMCHECK_S:-90}" compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$bin_tests" --gtest_filter='-*Profiler*:*deepseek*'
  tail -3 "$out/memcheck.log" | tee -a "$out/summary.txt"
  step racecheck "${RACECHECK_S:-60}" compute-sanitizer --tool racecheck --error-exitcode 9 \
    "$bin_tests" --gtest_filter='*Router*:*Permute*:*Combine*:*Swiglu*-*T8192*:*T4096*:*E1000*'
  tail -3 "$out/racecheck.log" | tee -a "$out/summary.txt"
fi
log "done $(date -u +%FT%TZ)"
