#!/usr/bin/env bash
# moesim sweep end to end: worker processes, a sweep killed with SIGKILL midway and resumed (every point
# present exactly once, none computed twice), shards that split the points, report merge, and a sweep
# folder that belongs to another sweep refused.
#   bash tests/sweep_resume_test.sh MOESIM SOURCE_DIR WORK_DIR
set -euo pipefail
moesim=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "sweep_resume_test: $*" >&2; exit 1; }

# 48 points: EP x microbatch x sequence length on the OLMoE example (EP 32 and 64 are invalid there and
# must be recorded as errors, not stop the sweep).
cat >"$work/sweep.json" <<JSON
{"schema_version": 1, "name": "resume", "scenario": "$src/scenarios/examples/olmoe-1b-7b-16xA100.json",
 "axes": [{"pointer": "/parallelism/experts/ep", "values": [1, 2, 4, 8, 16, 32, 64, 128]},
          {"pointer": "/parallelism/microbatch_size", "values": [1, 2]},
          {"pointer": "/workload/seq_len", "values": [1024, 2048, 4096]}]}
JSON
points=48

# Kill the sweep (SIGKILL) once a few points are written, let its orphaned workers finish, resume.
"$moesim" sweep "$work/sweep.json" --out "$work/a" -j 1 2>"$work/a1.err" &
pid=$!
for _ in $(seq 1 600); do
  n=$( (find "$work/a/points" -name '*.json' 2>/dev/null || true) | wc -l)
  ((n >= 5)) && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
before=$(find "$work/a/points" -name '*.json' | wc -l)
((before < points)) || fail "the sweep finished before it could be killed ($before points)"
sleep 1  # an orphaned worker finishes its point
"$moesim" sweep "$work/sweep.json" --out "$work/a" -j 2 2>"$work/a2.err" || fail "resume failed: $(cat "$work/a2.err")"
after=$(find "$work/a/points" -name '*.json' | wc -l)
((after == points)) || fail "$after point files after resuming, expected $points"
[[ -z $(find "$work/a/points" -name '*.claim') ]] || fail "claim files left behind"
computed=$(wc -l <"$work/a/computed.log")
unique=$(sort -u "$work/a/computed.log" | wc -l)
((computed == points && unique == points)) || fail "$computed computations of $unique points, expected $points once each"
grep -q "already done" "$work/a2.err" || fail "resume did not report the points already done"

# A resumed, finished sweep computes nothing.
"$moesim" sweep "$work/sweep.json" --out "$work/a" 2>"$work/a3.err"
(($(wc -l <"$work/a/computed.log") == points)) || fail "a finished sweep computed points again"

# Merge: one row per point, in order, errors recorded with their exit code.
"$moesim" report merge "$work/a" 2>/dev/null
(($(wc -l <"$work/a/merged.csv") == points + 1)) || fail "merged.csv has $(wc -l <"$work/a/merged.csv") lines"
head -1 "$work/a/merged.csv" | grep -q '^index,id,status,exit_code,/parallelism/experts/ep,' || fail "merged.csv header"
grep -q '^5,[0-9a-f]*,ok,0,1,2,4096,' "$work/a/merged.csv" || fail "point 5 (ep 1, mbs 2, seq 4096) missing or wrong"
(($(grep -c ',error,4,' "$work/a/merged.csv") == 18)) || fail "expected the 18 points with EP 32, 64, 128 as errors"

# Shards 0/2 and 1/2 (the MPI variables, then --shard) split the points; together they are the whole.
OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 "$moesim" sweep "$work/sweep.json" --out "$work/b" 2>/dev/null
(($(find "$work/b/points" -name '*.json' | wc -l) == points / 2)) || fail "shard 0/2 wrote the wrong number of points"
"$moesim" sweep "$work/sweep.json" --out "$work/b" --shard 1/2 2>/dev/null
diff <(ls "$work/a/points") <(ls "$work/b/points") >/dev/null || fail "the two shards' points differ from the whole sweep's"

# A folder holding another sweep is refused (exit 5).
sed 's/"resume"/"other"/' "$work/sweep.json" >"$work/other.json"
set +e
"$moesim" sweep "$work/other.json" --out "$work/a" 2>"$work/other.err"
rc=$?
set -e
((rc == 5)) || fail "another sweep's folder: exit $rc, expected 5"
grep -q "another sweep's folder" "$work/other.err" || fail "another sweep's folder: $(cat "$work/other.err")"
echo "sweep_resume_test: all checks passed"
