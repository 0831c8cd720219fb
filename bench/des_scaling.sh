#!/usr/bin/env bash
# Wall time and peak memory of one discrete-event DeepSeek-V3 training step as the cluster grows.
#
#   bash bench/des_scaling.sh [MOESIM] [GPU counts...]
#
# MOESIM defaults to build/release/cli/moesim; GPU counts default to 256 512 1024 2048 4096 8192 16384.
# Each size is the DeepSeek-V3 example (scenarios/examples/deepseek-v3-2048xH800.json) on the same
# 8-plane rail-optimised H800 fabric with as many nodes as needed: EP64, DualPipe, PP = min(16, GPUs/64)
# and 120 microbatches per pipeline (the global batch grows with the data-parallel degree), default
# engine fidelity. Prints one row per size: GPUs, PP, DP, simulated GPUs, step, wall seconds, peak KB.
# Runs pinned to one core (taskset -c 0) when taskset exists. Figures: docs/benchmarks.md.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
moesim="${1:-$here/build/release/cli/moesim}"
shift || true
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(256 512 1024 2048 4096 8192 16384)
[ -x "$moesim" ] || { echo "des_scaling: $moesim is not an executable (build the release preset first)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "des_scaling: needs python3 to write the scenarios" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "des_scaling: needs GNU time (/usr/bin/time, Debian package 'time')" >&2; exit 2; }
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

printf "%8s %4s %6s %10s %10s %9s %10s\n" gpus pp dp simulated step_s wall_s peak_KB
for n in "${sizes[@]}"; do
  python3 - "$here" "$n" "$work/ds$n.json" <<'EOF'
import json, sys
here, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = json.load(open(f"{here}/scenarios/examples/deepseek-v3-2048xH800.json"))
cl = json.load(open(f"{here}/scenarios/catalog/clusters/deepseek-h800-2048.json"))
cl = {k: v for k, v in cl.items() if not k.startswith("_")}
cl["name"] = f"deepseek-h800-{n}"
cl["nodes"] = n // 8
pp = min(16, n // 64)
dp = n // pp
d["name"] = f"deepseek-v3-{n}xH800"
d["cluster"] = cl
d["parallelism"]["pp"] = pp
d["parallelism"]["global_batch"] = dp * 120
d["engine"] = {"kind": "des"}
for k in ("reference", "variants"):
    d.pop(k, None)
json.dump(d, open(out, "w"), indent=1)
EOF
  # Exit 6 (does not fit in memory: DeepSeek-V3 needs PP16 on 80 GB GPUs) still prices the step.
  rc=0
  /usr/bin/time -f "%e %M" -o "$work/time$n" "${pin[@]}" "$moesim" run "$work/ds$n.json" --format json \
    >"$work/out$n.json" || rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 6 ] || { echo "des_scaling: moesim failed on $n GPUs (exit $rc)" >&2; exit 1; }
  read -r wall kb < <(tail -n 1 "$work/time$n")
  pp=$(( n / 64 < 16 ? n / 64 : 16 ))
  python3 - "$work/out$n.json" "$n" "$pp" "$wall" "$kb" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
n, pp = int(sys.argv[2]), int(sys.argv[3])
fits = "" if r["summary"]["feasible"] else "  (does not fit in memory)"
print(f"{n:8d} {pp:4d} {n // pp:6d} {r['des']['simulated_gpus']:10d} {r['summary']['step_time_s']:10.3f} "
      f"{float(sys.argv[4]):9.1f} {int(sys.argv[5]):10d}{fits}")
EOF
done
