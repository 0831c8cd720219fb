# End-to-end checks of the moesim command line: exit codes, messages, outputs never overwritten. The
# discrete-event runs are in cli_des_test.cmake (label slow).
# Invoked by ctest as: cmake -DMOESIM=... -DSRC=... -DWORK=... -P cli_test.cmake
include("${CMAKE_CURRENT_LIST_DIR}/cli_support.cmake")
set(EX "${SRC}/scenarios/examples/deepseek-v3-2048xH800.json")

# Success paths.
expect_run(0 ARGS run ${EX} STDOUT "step time")
# The header names the degrees as run, the derived ones included: 2048 GPUs / (TP1 CP1 PP16) = DP128, and
# 128 GPUs per stage / (EP64 ETP1) = EDP2; with virtual stages, Qwen3-235B's TP4 PP8 VPP4 on 256 GPUs: DP8,
# EDP 32 / EP8 = 4.
expect_run(0 ARGS run ${EX} STDOUT "\\| TP1 CP1 DP128 PP16 EP64 ETP1 EDP2 \\| dualpipe")
expect_run(0 ARGS run "${SRC}/scenarios/validation/qwen3-235b-256xH100-bf16-mcore-tp4.json"
  STDOUT "\\| TP4 CP1 DP8 PP8 VPP4 EP8 ETP1 EDP4 \\| interleaved")
expect_run(0 ARGS run ${EX} --format json STDOUT "\"schema_version\": 1")
expect_run(0 ARGS validate ${EX} STDOUT ": ok")
expect_run(0 ARGS list STDOUT "catalog:deepseek-v3")
expect_run(0 ARGS list policies STDOUT "dualpipe")
expect_run(0 ARGS compare "${SRC}/scenarios/examples/mixtral-8x7b-64xH100.json" STDOUT "INVALID")
# import hf prints the parameter counts (DeepSeek-V3 report: 671B total, 37B active) on stderr.
expect_run(0 ARGS import hf "${SRC}/tests/data/hf/deepseek_v3.json" --name dsv3 STDOUT "\"kv_lora_rank\": 512"
  STDERR "dsv3: 671\\.[0-9]+B parameters in total, 37\\.[0-9]+B active per token")
expect_run(0 ARGS --help STDOUT "run")

# Output directory: written once, then refused without --force, never clobbered.
expect_run(0 ARGS run ${EX} --out "${WORK}/out")
foreach(f scenario.resolved.json result.json summary.csv layers.csv ops.csv summary.txt)
  if(NOT EXISTS "${WORK}/out/${f}")
    message(FATAL_ERROR "missing ${WORK}/out/${f}")
  endif()
endforeach()
file(WRITE "${WORK}/out/result.json" "user data")
expect_run(5 ARGS run ${EX} --out "${WORK}/out" STDERR "refusing to overwrite")
file(READ "${WORK}/out/result.json" kept)
if(NOT kept STREQUAL "user data")
  message(FATAL_ERROR "an existing result was overwritten")
endif()
expect_run(0 ARGS run ${EX} --out "${WORK}/out" --force)

# Bad input: one message naming the file and the place, documented exit codes.
file(WRITE "${WORK}/bad.json" "{ \"name\": \"x\", ")
expect_run(3 ARGS run "${WORK}/bad.json" STDERR "bad.json:1:")
file(READ ${EX} good)
string(REPLACE "\"ep\": 64" "\"ep\": 48" bad_ep "${good}")
file(WRITE "${WORK}/bad_ep.json" "${bad_ep}")
expect_run(4 ARGS validate "${WORK}/bad_ep.json" STDERR "/parallelism/experts/ep: expected a divisor of the expert count 256, found 48")
string(REPLACE "\"comm_sms\": 20" "\"comm_sms\": 20, \"colour\": 1" bad_key "${good}")
file(WRITE "${WORK}/bad_key.json" "${bad_key}")
expect_run(4 ARGS run "${WORK}/bad_key.json" STDERR "/workload/colour: expected one of the keys")
string(REPLACE "\"step_time\": \"19.926s\"" "\"step_time\": \"19.926 parsecs\"" bad_unit "${good}")
file(WRITE "${WORK}/bad_unit.json" "${bad_unit}")
expect_run(3 ARGS run "${WORK}/bad_unit.json" STDERR "/reference/step_time: expected a time")
expect_run(5 ARGS run "${WORK}/does-not-exist.json" STDERR "expected a readable JSON file, found none")
expect_run(2 ARGS run STDERR "scenario")
expect_run(2 ARGS frobnicate)
expect_run(2 ARGS run ${EX} --format yaml)
# An unknown command is named, with the commands expected where it stands (the CLI's own list).
expect_run(2 ARGS frob STDERR "^moesim: error: unknown command \"frob\": expected one of run, compare, validate, list, place, replay, trace, topology, calibrate, import, accuracy, plan, sweep, report\n$")
expect_run(2 ARGS trace frob STDERR "unknown command \"trace frob\": expected one of import, stats, requests, generate-requests, upgrade")
# Each command accepts the formats it writes, by their registered names.
expect_run(2 ARGS compare ${EX} --format csv STDERR "--format")
expect_run(2 ARGS run ${EX} --engine fast STDERR "--engine")
expect_run(2 ARGS replay "${SRC}/traces/data/olmoe-1b-7b-arxiv.jsonl" ${EX} --trace-format csv STDERR "--trace-format")
expect_run(2 ARGS trace import moesim in.csv -o out.jsonl --experts 8 STDERR "format")
# A layout that does not fit in memory still reports, and exits 6.
string(REPLACE "\"recompute\": \"selective\"" "\"recompute\": \"none\"" no_rc "${good}")
string(REPLACE "\"pp\": 16" "\"pp\": 2" no_rc "${no_rc}")
string(REPLACE "\"schedule\": \"dualpipe\"" "\"schedule\": \"1f1b\"" no_rc "${no_rc}")
file(WRITE "${WORK}/oom.json" "${no_rc}")
expect_run(6 ARGS run "${WORK}/oom.json" STDOUT "INFEASIBLE")
# Placement: DeepSeek's EPLB README example, exactly.
file(WRITE "${WORK}/w.json" "[[90,132,40,61,104,165,39,4,73,56,183,86],[20,107,104,64,19,197,187,157,172,86,16,27]]")
expect_run(0 ARGS place --policy eplb --weights "${WORK}/w.json" --replicas 16 --groups 4 --nodes 2 --gpus 8 --format json
  STDOUT "\"phy2log\":\\[\\[5,6,5,7,8,4,3,4,10,9,10,2,0,1,11,1\\],\\[7,10,6,8,6,11,8,9,2,4,5,1,5,0,3,1\\]\\]")
expect_run(4 ARGS place --policy eplb --weights "${WORK}/w.json" --replicas 20 --groups 4 --nodes 2 --gpus 8
  STDERR "num_replicas: expected")
expect_run(4 ARGS place --policy nope --weights "${WORK}/w.json" --gpus 2 STDERR "eplb")
file(WRITE "${WORK}/w_bad.json" "[[1,2],[3,\"x\"]]")
expect_run(4 ARGS place --weights "${WORK}/w_bad.json" STDERR "/1/1: expected a number")

# Traces: statistics of the shipped OLMoE counts, replay, import never overwriting.
set(OLMOE "${SRC}/traces/data/olmoe-1b-7b-arxiv.jsonl")
expect_run(0 ARGS trace stats "${OLMOE}" STDOUT "7.813")
expect_run(0 ARGS replay "${OLMOE}" "${SRC}/scenarios/examples/olmoe-arxiv-replay-16xH100.json" STDOUT "7.813")
expect_run(0 ARGS replay "${OLMOE}" "${SRC}/scenarios/examples/olmoe-arxiv-replay-16xH100.json" --format json
  STDOUT "\"mean_step_time_s\"")
file(WRITE "${WORK}/keep.jsonl" "mine")
expect_run(5 ARGS trace import count_table "${SRC}/tests/data/hf/olmoe.json" -o "${WORK}/keep.jsonl" --experts 64
  STDERR "keep.jsonl")
file(READ "${WORK}/keep.jsonl" kept2)
if(NOT kept2 STREQUAL "mine")
  message(FATAL_ERROR "trace import overwrote an existing file")
endif()
# Megatron router traces number layers from 1 and trace MoE layers only; the import writes MoE layers
# 0..L-1 (tests/data/traces/megatron-moe-layers/README.md: Megatron layer n routes [2n-2, 2n-1],
# [2n-2, 15] on rank 0 and [2n-2, 2n-1] on rank 1, so MoE layer 0 holds layer 1's tokens).
expect_run(0 ARGS trace import megatron "${SRC}/tests/data/traces/megatron-moe-layers" -o "${WORK}/megatron.jsonl"
  --experts 16 STDERR "wrote 4 records")
file(READ "${WORK}/megatron.jsonl" megatron_trace)
foreach(want "\"layers\":4,"
             "{\"step\":0,\"layer\":0,\"tokens\":[[0,1],[0,15],[0,1]],"
             "{\"step\":0,\"layer\":3,\"tokens\":[[6,7],[6,15],[6,7]],")
  string(FIND "${megatron_trace}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "trace import megatron: ${WORK}/megatron.jsonl lacks ${want}:\n${megatron_trace}")
  endif()
endforeach()
file(WRITE "${WORK}/truncated.jsonl" "{\"format\":\"moesim-routing-trace\",\"version\":2,\"experts\":4,\"top_k\":1,\"sources\":1,\"layers\":1}\n{\"step\":0,\"layer\":0,\"counts\":[[1,2")
expect_run(3 ARGS trace stats "${WORK}/truncated.jsonl" STDERR "truncated.jsonl:2")
# Trace format version 2 ends with {"end": true, "records": N}: a version 1 file is refused with the
# command that converts it, and `trace upgrade` writes it with the end record (2 records here; stats:
# layer 0 max/mean = 3 / (4 / 4) = 3.000).
file(WRITE "${WORK}/v1.jsonl" "{\"format\":\"moesim-routing-trace\",\"version\":1,\"experts\":4,\"top_k\":1,\"sources\":1,\"layers\":2}\n{\"step\":0,\"layer\":0,\"counts\":[[3,1,0,0]]}\n{\"step\":0,\"layer\":1,\"tokens\":[[2],[3]]}\n")
expect_run(4 ARGS trace stats "${WORK}/v1.jsonl" STDERR "moesim trace upgrade")
file(REMOVE "${WORK}/v2.jsonl")
expect_run(0 ARGS trace upgrade "${WORK}/v1.jsonl" -o "${WORK}/v2.jsonl" STDERR "wrote 2 records")
expect_run(0 ARGS trace stats "${WORK}/v2.jsonl" STDOUT "3.000")
file(READ "${WORK}/v2.jsonl" upgraded)
string(FIND "${upgraded}" "{\"end\":true,\"records\":2}\n" at)
if(at EQUAL -1)
  message(FATAL_ERROR "trace upgrade: ${WORK}/v2.jsonl lacks the end record:\n${upgraded}")
endif()
# A scenario naming a calibration that cannot be read: exit 7, naming the file.
string(REPLACE "\"name\": \"deepseek-v3-2048xH800\"," "\"name\": \"x\", \"calibration\": \"no-such-calibration.json\"," with_cal "${good}")
file(WRITE "${WORK}/with_cal.json" "${with_cal}")
expect_run(7 ARGS run "${WORK}/with_cal.json" STDERR "no-such-calibration.json")

# Every check an engine relies on runs before anything is evaluated, in validate, run and compare alike:
# here the fabric's buildability (a fat tree of radix 3 cannot wire 16 leaves; 3 rail planes do not
# divide 8 GPUs per node).
set(OLMOE16 "${SRC}/scenarios/examples/olmoe-1b-7b-16xA100.json")
file(READ "${OLMOE16}" olmoe16)
string(REPLACE "\"radix\": 40" "\"radix\": 3" radix3 "${olmoe16}")
file(WRITE "${WORK}/radix3.json" "${radix3}")
string(REPLACE "\"fat_tree\"" "\"rail_optimized\"" rail3 "${olmoe16}")
string(REPLACE "\"radix\": 40" "\"radix\": 40, \"planes\": 3" rail3 "${rail3}")
file(WRITE "${WORK}/rail3.json" "${rail3}")
expect_run(4 ARGS validate "${WORK}/radix3.json" ERRORS 1
  STDERR "radix3.json: /cluster: cluster topology: 16 leaves per plane exceed a two-level fat tree of radix 3")
expect_run(4 ARGS validate "${WORK}/rail3.json" ERRORS 1
  STDERR "rail3.json: /cluster: cluster topology: scale_out.planes: expected a divisor of gpus_per_node \\(8\\), found 3")
expect_run(4 ARGS run "${WORK}/radix3.json" STDERR "radix3.json: /cluster: cluster topology")
expect_run(4 ARGS run "${WORK}/rail3.json" --engine analytic STDERR "rail3.json: /cluster: cluster topology")
expect_run(4 ARGS compare "${WORK}/radix3.json" STDERR "radix3.json: /cluster: cluster topology")
# validate reports every problem of every file, one line each, and exits with the first one's code.
expect_run(4 ARGS validate "${WORK}/radix3.json" ${EX} "${WORK}/rail3.json" ERRORS 2
  STDOUT "deepseek-v3-2048xH800.json: ok" STDERR "radix3.json: /cluster: .*\nmoesim: error: .*rail3.json: /cluster: ")
expect_run(3 ARGS validate "${WORK}/bad.json" "${WORK}/bad_ep.json" "${WORK}/radix3.json" ERRORS 3
  STDERR "bad.json:1:.*bad_ep.json: /parallelism/experts/ep: .*radix3.json: /cluster: ")
expect_run(4 ARGS validate "${SRC}/scenarios/examples/mixtral-8x7b-64xH100.json" ERRORS 1
  STDERR "\\(variant ep3-invalid\\): /parallelism/experts/ep: expected a divisor of the expert count 8, found 3")

# Per-op output (ops.csv under --out, and --ops on stdout): DeepSeek-V3 on H800, whose GEMMs its GPU's
# default calibration prices; the expert GEMMs name their calibration entry.
file(READ "${WORK}/out/ops.csv" ops_csv)
if(NOT ops_csv MATCHES "^pp_rank,stage,layer,block,op,pass,kind,recompute,count,flops,bytes,seconds,total_seconds,priced_by\n")
  message(FATAL_ERROR "ops.csv: unexpected header:\n${ops_csv}")
endif()
expect_run(0 ARGS run ${EX} --ops STDOUT "ops of pipeline rank [0-9]+, one GPU, one step")
expect_run(0 ARGS run ${EX} --ops --format csv STDOUT ",moe\\.expert_up,F,grouped_gemm,0,")
expect_run(0 ARGS run ${EX} --ops --format json
  STDOUT "\"priced_by\": \"h800-sxm\\.json /models/grouped_gemm/precisions/fp8\"")

# outputs.formats chooses the result files of an output directory: result.json, layers.csv, ops.csv and
# scenario.resolved.json always, summary.txt for table (the default), summary.csv for csv.
string(REPLACE "\"engine\": {" "\"outputs\": { \"formats\": [\"csv\"] }, \"engine\": {" csv_only "${olmoe16}")
file(WRITE "${WORK}/csv_only.json" "${csv_only}")
expect_run(0 ARGS run "${WORK}/csv_only.json" --out "${WORK}/csv_only" --format json STDOUT "\"schema_version\": 1")
expect_run(0 ARGS run "${OLMOE16}" --out "${WORK}/table_only")
foreach(f csv_only/summary.csv csv_only/result.json csv_only/layers.csv csv_only/ops.csv
          csv_only/scenario.resolved.json table_only/summary.txt table_only/result.json table_only/layers.csv
          table_only/ops.csv table_only/scenario.resolved.json)
  if(NOT EXISTS "${WORK}/${f}")
    message(FATAL_ERROR "missing ${WORK}/${f}")
  endif()
endforeach()
foreach(f csv_only/summary.txt table_only/summary.csv)
  if(EXISTS "${WORK}/${f}")
    message(FATAL_ERROR "${WORK}/${f}: written, but outputs.formats does not list its format")
  endif()
endforeach()

# outputs.dir is relative to the scenario's folder, as every other path a scenario names: run from
# another working directory, the results land beside the scenario.
file(MAKE_DIRECTORY "${WORK}/reldir" "${WORK}/elsewhere")
string(REPLACE "\"engine\": {" "\"outputs\": { \"dir\": \"rel_out\" }, \"engine\": {" rel_dir "${olmoe16}")
file(WRITE "${WORK}/reldir/s.json" "${rel_dir}")
execute_process(COMMAND "${MOESIM}" run "${WORK}/reldir/s.json" WORKING_DIRECTORY "${WORK}/elsewhere"
  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0 OR NOT EXISTS "${WORK}/reldir/rel_out/result.json" OR EXISTS "${WORK}/elsewhere/rel_out")
  message(FATAL_ERROR "outputs.dir \"rel_out\" not resolved beside the scenario (rc ${rc})")
endif()

# How outputs are written (docs/exit-codes.md): every output location is checked before anything is
# evaluated (stdout stays empty: the result is printed only after evaluation, and an infeasible
# scenario would exit 6), exit 5 naming it; --force replaces the previous run's whole set and nothing
# else; a single file is replaced whole, a directory never; no temporary is left behind.
file(WRITE "${WORK}/not_a_dir" "x")
expect_run(5 ARGS run "${OLMOE16}" --engine des --out "${WORK}/not_a_dir/out" STDOUT "^$"
  STDERR "not_a_dir/out: --out: expected an output directory, found a file at .*not_a_dir\n$")
expect_run(5 ARGS run "${WORK}/oom.json" --out "${WORK}/not_a_dir" STDOUT "^$"
  STDERR "not_a_dir: --out: expected an output directory, found a file")
if(EXISTS "/sys/kernel")
  expect_run(5 ARGS run "${OLMOE16}" --out "/sys/moesim-out" STDOUT "^$"
    STDERR "/sys/moesim-out: --out: expected an output directory that exists or can be created, found")
endif()
file(WRITE "${WORK}/table_only/notes.txt" "mine")
expect_run(5 ARGS run "${WORK}/csv_only.json" --out "${WORK}/table_only" STDERR "refusing to overwrite")
if(EXISTS "${WORK}/table_only/summary.csv")
  message(FATAL_ERROR "a refused run wrote summary.csv")
endif()
expect_run(0 ARGS run "${WORK}/csv_only.json" --out "${WORK}/table_only" --force)
foreach(f summary.csv result.json layers.csv scenario.resolved.json notes.txt)
  if(NOT EXISTS "${WORK}/table_only/${f}")
    message(FATAL_ERROR "--force: missing ${WORK}/table_only/${f}")
  endif()
endforeach()
if(EXISTS "${WORK}/table_only/summary.txt")
  message(FATAL_ERROR "--force kept the previous run's summary.txt beside the new result")
endif()
file(READ "${WORK}/table_only/notes.txt" notes)
file(GLOB hidden "${WORK}/table_only/.*")
if(NOT notes STREQUAL "mine" OR hidden)
  message(FATAL_ERROR "--force touched a file moesim does not write, or left a temporary: ${hidden}")
endif()
expect_run(0 ARGS trace import megatron "${SRC}/tests/data/traces/megatron-moe-layers" -o "${WORK}/keep.jsonl"
  --experts 16 --force STDERR "wrote 4 records")
file(READ "${WORK}/keep.jsonl" replaced)
if(NOT replaced MATCHES "^{[^\n]*\"format\":\"moesim-routing-trace\"" OR NOT replaced MATCHES "\"layer\":3,")
  message(FATAL_ERROR "trace import --force did not replace keep.jsonl whole:\n${replaced}")
endif()
file(MAKE_DIRECTORY "${WORK}/trace_dir")
file(WRITE "${WORK}/trace_dir/mine.jsonl" "mine")
expect_run(5 ARGS trace import megatron "${SRC}/tests/data/traces/megatron-moe-layers" -o "${WORK}/trace_dir"
  --experts 16 --force STDERR "trace_dir: -o: expected a file to write, found a directory")
if(NOT EXISTS "${WORK}/trace_dir/mine.jsonl")
  message(FATAL_ERROR "trace import --force removed a directory's contents")
endif()
expect_run(0 ARGS place --policy eplb --weights "${WORK}/w.json" --replicas 16 --groups 4 --nodes 2 --gpus 8
  -o "${WORK}/place.json" STDOUT "^$")
file(READ "${WORK}/place.json" placed)
if(NOT placed MATCHES "\"phy2log\":\\[\\[5,6,5,7,8,4,3,4,10,9,10,2,0,1,11,1\\]")
  message(FATAL_ERROR "place -o: ${placed}")
endif()
expect_run(5 ARGS place --weights "${WORK}/w.json" --gpus 2 -o "${WORK}/place.json" STDERR "refusing to overwrite")
expect_run(0 ARGS import hf "${SRC}/tests/data/hf/deepseek_v3.json" --name dsv3 -o "${WORK}/dsv3.json")
file(READ "${WORK}/dsv3.json" dsv3)
file(GLOB hidden "${WORK}/.*")
if(NOT dsv3 MATCHES "\"kv_lora_rank\": 512" OR hidden)
  message(FATAL_ERROR "import hf -o: ${dsv3}; temporaries left: ${hidden}")
endif()

# compare runs the discrete-event engine in a child process, which hands back the error with its type:
# a missing calibration exits 7 as with the analytic engine, naming the file.
string(REPLACE "\"name\": \"olmoe-1b-7b-16xA100\"," "\"name\": \"x\", \"calibration\": \"no-such-calibration.json\"," olmoe_cal "${olmoe16}")
file(WRITE "${WORK}/olmoe_cal.json" "${olmoe_cal}")
expect_run(7 ARGS compare "${WORK}/olmoe_cal.json" STDERR "no-such-calibration.json")
expect_run(7 ARGS compare "${WORK}/olmoe_cal.json" --engine des STDERR "^moesim: error: .*no-such-calibration.json")

# Topology: summary, SimGrid check of one EP group, GraphViz never overwriting.
set(MIX "${SRC}/scenarios/examples/mixtral-8x7b-64xH100.json")
expect_run(0 ARGS topology "${EX}" STDOUT "bisection: 51200 GB/s")
expect_run(0 ARGS topology "${MIX}" --simulate STDOUT "SimGrid \\(CM02")
expect_run(0 ARGS topology "${MIX}" --format json STDOUT "\"bisection_bandwidth_Bps\"")
expect_run(0 ARGS topology "${MIX}" --dot "${WORK}/g.dot" STDERR "wrote")
file(WRITE "${WORK}/g.dot" "mine")
expect_run(5 ARGS topology "${MIX}" --dot "${WORK}/g.dot" STDERR "refusing to overwrite")

# report: the page of a run folder, written with the run or afterwards; folders and flags it refuses.
expect_run(0 ARGS run "${MIX}" --out "${WORK}/rep" --report STDERR "report: .*rep/report.html")
if(NOT EXISTS "${WORK}/rep/report.html" OR NOT EXISTS "${WORK}/rep/report-specs/breakdown.vl.json")
  message(FATAL_ERROR "run --report: no report.html or report-specs/breakdown.vl.json in ${WORK}/rep")
endif()
expect_run(0 ARGS report "${WORK}/rep" STDERR "report: 7 charts into")
expect_run(2 ARGS report STDERR "expected an output folder")
expect_run(5 ARGS report "${WORK}/no-such-folder" STDERR "no-such-folder: expected an output folder of moesim, found nothing")
file(MAKE_DIRECTORY "${WORK}/rep-empty")
expect_run(5 ARGS report "${WORK}/rep-empty" STDERR "expected result.json, merged.json, plan.json, compare.json, replay.json or accuracy.json, found none")
expect_run(4 ARGS run "${MIX}" --report STDERR "--report: expected an output directory")
expect_run(0 ARGS compare "${MIX}" --report "${WORK}/rep-cmp" STDERR "wrote .*rep-cmp/compare.json and .*rep-cmp/report.html")
expect_run(5 ARGS compare "${MIX}" --report "${WORK}/rep-cmp" STDERR "rep-cmp/compare.json: --report: refusing to overwrite")
expect_run(0 ARGS compare "${MIX}" --report "${WORK}/rep-cmp" --force STDERR "rep-cmp/report.html")

message(STATUS "cli_test: all checks passed")

# A measured kernel profile refits without a GPU; the check prints the held-out errors per unseen model,
# and the refit of the committed H200 profile, completed from the scaled file, is the catalog's file.
set(CAL "${SRC}/scenarios/catalog/calibrations")
expect_run(0 ARGS calibrate --refit "${CAL}/measured/h200-sxm-profile.json" --fill-from "${CAL}/h200-sxm-scaled.json"
           --gpu catalog:h200-sxm --out "${WORK}/h200.json"
           STDOUT "held-out error per point[^\n]*\n[^\n]*\n +gpt-oss-120b +17 " STDERR "wrote .*h200.json")
expect_run(0 ARGS calibrate --check "${WORK}/h200.json" STDOUT "grouped_gemm +cublas_per_expert +64 groups")
expect_run(5 ARGS calibrate --refit "${CAL}/measured/h200-sxm-profile.json" --gpu catalog:h200-sxm --out "${WORK}/h200.json"
           STDERR "h200.json: --out: refusing to overwrite")
# --measurements belongs to a measuring run: with --refit it would be ignored, so it is refused.
expect_run(2 ARGS calibrate --refit "${CAL}/measured/h200-sxm-profile.json" --measurements "${WORK}/p.json"
           --out "${WORK}/h200-2.json" STDERR "--measurements excludes --refit")
# A synthetic request trace with shared prefixes: the prefix_id column is written and reads back.
file(REMOVE "${WORK}/prefixes.csv")
expect_run(0 ARGS trace generate-requests -o "${WORK}/prefixes.csv" --requests 50 --cached-fraction 0.5 --prefix-groups 4
           STDERR "wrote 50 requests")
file(STRINGS "${WORK}/prefixes.csv" prefix_header LIMIT_COUNT 1)
if(NOT prefix_header STREQUAL "arrival_s,input_tokens,output_tokens,cached_tokens,prefix_id")
  message(FATAL_ERROR "generate-requests --prefix-groups wrote the header \"${prefix_header}\"")
endif()
expect_run(0 ARGS trace requests "${WORK}/prefixes.csv" STDOUT "named by 50 requests")
expect_run(2 ARGS trace generate-requests -o "${WORK}/prefixes2.csv" --prefix-groups -1 STDERR "--prefix-groups")

# compare on serving scenarios: the variants side by side (analytic here; cli_des_test.cmake runs the
# discrete-event engine), one workload kind per comparison, no --report for serving comparisons.
set(COLO "${SRC}/scenarios/examples/serving/qwen3-30b-a3b-h100-colocated.json")
expect_run(0 ARGS compare "${COLO}" --engine analytic --format json
  STDOUT "\"kind\": \"serving\".*\"name\": \"qwen3-30b-a3b-h100-colocated/prefix-routing\"")
expect_run(0 ARGS compare "${COLO}" --engine analytic STDOUT "per-rank-prefix-caches +analytic")
expect_run(4 ARGS compare ${EX} "${COLO}" --engine analytic
  STDERR "compare: expected scenarios of one workload kind, found .*deepseek-v3-2048xH800.json \\(training\\) and .*qwen3-30b-a3b-h100-colocated.json \\(serving\\)")
expect_run(4 ARGS compare "${COLO}" --report "${WORK}/rep-serving"
  STDERR "compare --report: expected training scenarios")
if(EXISTS "${WORK}/rep-serving")
  message(FATAL_ERROR "compare --report on a serving scenario wrote ${WORK}/rep-serving")
endif()
