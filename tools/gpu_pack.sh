#!/usr/bin/env bash
# Packs what tools/gpu_run.sh needs on a GPU machine that has the NVIDIA driver and the CUDA runtime but
# not moesim's other dependencies: the moesim CLI and the GPU test binary of a CUDA build (stripped of
# debug info), and every shared library they load that is neither the C/C++ runtime nor CUDA's.
#   tools/gpu_pack.sh [BUILD_DIR] [PACK_DIR]     (defaults build/dev and .gpu)
# BUILD_DIR must have been configured with nvcc found (MOESIM_HAVE_CUDA=ON). The pack is one .tar.xz.
set -euo pipefail
build=${1:-build/dev}
pack=${2:-.gpu}
cmake --build "$build" -j2 --target moesim kernels_gpu_test
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
for b in "$build/cli/moesim" "$build/tests/kernels_gpu_test"; do
  cp "$b" "$stage/bin/"
  strip --strip-debug "$stage/bin/$(basename "$b")"
done
# Libraries: everything ldd resolves, except the C runtime, libstdc++ and CUDA (the GPU machine's own).
for b in "$stage"/bin/*; do
  ldd "$b" | awk '$3 ~ /^\// {print $3}'
done | sort -u | grep -v -E '/(libc|libm|libdl|libpthread|librt|libutil|libgcc_s|libstdc\+\+)\.so|/libcu(dart|blas|blasLt)\.so' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
mkdir -p "$pack"
tar -C "$stage" -cJf "$pack/moesim-gpu.tar.xz" bin lib
ls -la "$pack"
