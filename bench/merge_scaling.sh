#!/usr/bin/env bash
# `moesim report merge` on large sweep folders: wall time and peak memory (GNU time's maximum resident
# set) for N point files, N in the list given (default 1000 10000 100000). The point files are real: a
# sweep of the 108-point DeepSeek-V3 layout sweep is run once (-j 2), then its files are copied with new
# indices and ids until the folder holds N (each point file is 5-25 kB: a full result, or an error).
#   bash bench/merge_scaling.sh MOESIM WORK_DIR [N...]
set -euo pipefail
moesim=$1 work=$2
shift 2
sizes=("$@")
((${#sizes[@]})) || sizes=(1000 10000 100000)
src=$(cd "$(dirname "$0")/.." && pwd)
[[ -x /usr/bin/time ]] || { echo "merge_scaling: needs GNU time (/usr/bin/time; Debian: time)" >&2; exit 2; }
mkdir -p "$work"
seed=$work/seed
if [[ ! -f $seed/sweep.json ]]; then
  rm -rf "$seed"
  "$moesim" sweep "$src/scenarios/sweeps/deepseek-v3-layouts.json" --out "$seed" -j 2 2>/dev/null
fi
printf '%8s %10s %12s %14s\n' points data_MB wall_s max_rss_MB
for n in "${sizes[@]}"; do
  dir=$work/merge-$n
  rm -rf "$dir"
  mkdir -p "$dir/points"
  # The seed's manifest, with the point count made n (merge reads the axes from it).
  python3 - "$seed" "$dir" "$n" <<'PY'
import json, os, sys
seed, dest, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = json.load(open(os.path.join(seed, "sweep.json")))
m["points"] = n
json.dump(m, open(os.path.join(dest, "sweep.json"), "w"))
files = sorted(f for f in os.listdir(os.path.join(seed, "points")) if f.endswith(".json"))
docs = [json.load(open(os.path.join(seed, "points", f))) for f in files]
for i in range(n):
    d = docs[i % len(docs)]
    d["index"] = i
    d["id"] = "%016x" % (0x9e3779b97f4a7c15 * (i + 1) % (1 << 64))
    with open(os.path.join(dest, "points", d["id"] + ".json"), "w") as f:
        f.write(json.dumps(d) + "\n")
PY
  mb=$(du -sm "$dir/points" | cut -f1)
  /usr/bin/time -f '%e %M' -o "$dir/time.txt" "$moesim" report merge "$dir" 2>/dev/null
  read -r wall rss <"$dir/time.txt"
  rows=$(($(wc -l <"$dir/merged.csv") - 1))
  ((rows == n)) || { echo "merge_scaling: $rows rows for $n points" >&2; exit 1; }
  printf '%8d %10d %12s %14d\n' "$n" "$mb" "$wall" "$((rss / 1024))"
done
