#!/usr/bin/env bash
# Records the results of every example and test scenario with both engines (and the commands that
# consume traces, placements and topologies) into one folder, so that two builds can be compared byte
# for byte: bash tools/regress.sh BUILD/cli/moesim OUTDIR; diff -r OLD NEW.
# Fields that name the build (git sha) are removed; everything else must be identical.
set -uo pipefail
moesim=${1:?usage: regress.sh MOESIM OUTDIR}
out=${2:?usage: regress.sh MOESIM OUTDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
strip() { sed -E 's/"git_sha": *"[^"]*"/"git_sha": "-"/g'; }
rec() {  # rec NAME CMD...: stdout (build fields removed), stderr and exit status
  local name=$1; shift
  "$@" >"$out/$name.out" 2>"$out/$name.err"
  echo "exit $?" >>"$out/$name.err"
  strip <"$out/$name.out" >"$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name.out"
}
for f in "$src"/scenarios/examples/*.json "$src"/tests/data/des/*.json; do
  n=$(basename "$(dirname "$f")")-$(basename "$f" .json)
  rec "$n.analytic" "$moesim" run "$f" --format json
  rec "$n.des" "$moesim" run "$f" --engine des --format json
  rec "$n.compare" "$moesim" compare "$f" --format json
  rec "$n.topology" "$moesim" topology "$f" --format json
done
ex=$src/scenarios/examples
rec replay.analytic "$moesim" replay "$src/traces/data/olmoe-1b-7b-arxiv.jsonl" "$ex/olmoe-arxiv-replay-16xH100.json"
rec replay.des "$moesim" replay "$src/traces/data/olmoe-1b-7b-arxiv.jsonl" "$ex/olmoe-arxiv-replay-16xH100.json" --engine des
rec compare-des "$moesim" compare "$ex/olmoe-arxiv-replay-16xH100.json" --engine des --format json
rec trace-stats "$moesim" trace stats "$src/traces/data/olmoe-1b-7b-arxiv.jsonl"
rec list "$moesim" list
exit 0
