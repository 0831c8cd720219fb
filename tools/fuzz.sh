#!/usr/bin/env bash
# Builds the fuzz preset and runs every fuzz target (fuzz/, docs/fuzzing.md) for a bounded time:
#   bash tools/fuzz.sh [SECONDS_PER_TARGET] [RUNS]
# SECONDS_PER_TARGET (default 30; 0: no time bound) and RUNS, executions per target (default 0: no
# bound); at least one bound is required. Each target starts from build/fuzz/corpus/TARGET, seeded by
# fuzz/seed.sh (inputs that reach new code are added there). Two targets run at a time
# (MOESIM_FUZZ_JOBS). MOESIM_FUZZ_PRESET (default fuzz) names the preset whose tree builds them: `asan`
# builds the fuzz targets beside the sanitizer suite with the same flags (what CI uses: one build for
# both). Exits non-zero if any target finds a crash, undefined behaviour, a leak, an input
# taking more than 10 s or more than 2048 MB: the input is saved under build/fuzz/findings/TARGET/, the
# report is in build/fuzz/logs/TARGET.log. Prints, per target, the executions done and the seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
runs=${2:-0}
parallel=${MOESIM_FUZZ_JOBS:-2}
if ((seconds <= 0 && runs <= 0)); then
  echo "tools/fuzz.sh: give a time (SECONDS_PER_TARGET > 0) or a number of RUNS > 0" >&2
  exit 2
fi
# Target and whether it reads JSON (then fuzz/json.dict is its dictionary).
targets=(scenario_fuzz:json hf_import_fuzz:json calibration_fuzz:json trace_fuzz:json megatron_fuzz:json
         count_table_fuzz:csv request_trace_fuzz:csv placement_weights_fuzz:json)

preset=${MOESIM_FUZZ_PRESET:-fuzz}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" --target fuzzers
build=build/$preset
bash fuzz/seed.sh "$build/corpus"
mkdir -p "$build/logs"

# run_one TARGET KIND: runs one target; writes its log and, in TARGET.status, "ok" or "FINDING".
run_one() {
  local t=$1 kind=$2
  local args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "-artifact_prefix=$build/findings/$t/")
  ((seconds > 0)) && args+=("-max_total_time=$seconds")
  ((runs > 0)) && args+=("-runs=$runs")
  [[ $kind == json ]] && args+=("-dict=fuzz/json.dict")
  mkdir -p "$build/findings/$t"
  if "$build/fuzz/$t" "${args[@]}" "$build/corpus/$t" >"$build/logs/$t.log" 2>&1; then
    echo ok >"$build/logs/$t.status"
  else
    echo FINDING >"$build/logs/$t.status"
  fi
}

for entry in "${targets[@]}"; do
  rm -f "$build/logs/${entry%%:*}.status"
  run_one "${entry%%:*}" "${entry##*:}" &
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
done
wait

failed=0
printf '%-24s %12s %8s  %s\n' target executions seconds result
for entry in "${targets[@]}"; do
  t=${entry%%:*}
  log="$build/logs/$t.log"
  status=$(cat "$build/logs/$t.status" 2>/dev/null || echo FINDING)
  # libFuzzer ends a bounded run with "Done N runs in S second(s)"; a finding stops it earlier.
  done_line=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
  secs=$(echo "$done_line" | sed -nE 's/.* in ([0-9]+) second/\1/p')
  printf '%-24s %12s %8s  %s\n' "$t" "${execs:-?}" "${secs:-?}" "$status"
  if [[ $status != ok ]]; then
    failed=1
    echo "--- $t: $log" >&2
    grep -E 'ERROR: |runtime error|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20 >&2 || true
  fi
done
exit "$failed"
