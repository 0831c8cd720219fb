# End-to-end checks of the discrete-event engine through the command line (label slow).
# Invoked by ctest as: cmake -DMOESIM=... -DSRC=... -DWORK=... -P cli_des_test.cmake
include("${CMAKE_CURRENT_LIST_DIR}/cli_support.cmake")

# Discrete-event engine (docs/des.md): the same run twice gives the same bytes; --out adds the trace and
# the link usage, which are then never overwritten without --force; unknown engines are usage errors.
set(OLMOE16 "${SRC}/scenarios/examples/olmoe-1b-7b-16xA100.json")
execute_process(COMMAND "${MOESIM}" run "${OLMOE16}" --engine des --format json
  RESULT_VARIABLE des_rc1 OUTPUT_VARIABLE des_out1 ERROR_VARIABLE des_err1)
execute_process(COMMAND "${MOESIM}" run "${OLMOE16}" --engine des --format json
  RESULT_VARIABLE des_rc2 OUTPUT_VARIABLE des_out2 ERROR_VARIABLE des_err2)
if(NOT des_rc1 EQUAL 0 OR NOT des_rc2 EQUAL 0)
  message(FATAL_ERROR "moesim run --engine des: exit ${des_rc1} and ${des_rc2}\n${des_err1}\n${des_err2}")
endif()
if(NOT des_out1 MATCHES "\"engine\": \"des\"" OR NOT des_out1 MATCHES "\"analytic_step_time_s\"")
  message(FATAL_ERROR "moesim run --engine des --format json: no discrete-event result:\n${des_out1}")
endif()
if(NOT des_out1 STREQUAL des_out2)
  file(WRITE "${WORK}/des_run1.json" "${des_out1}")
  file(WRITE "${WORK}/des_run2.json" "${des_out2}")
  message(FATAL_ERROR "two identical discrete-event runs printed different bytes (${WORK}/des_run1.json, des_run2.json)")
endif()
expect_run(0 ARGS run "${OLMOE16}" --engine des --out "${WORK}/des" STDERR "trace.json")
foreach(f trace.json links.csv result.json summary.txt)
  if(NOT EXISTS "${WORK}/des/${f}")
    message(FATAL_ERROR "moesim run --engine des --out: missing ${WORK}/des/${f}")
  endif()
endforeach()
file(READ "${WORK}/des/trace.json" des_trace)
string(JSON des_events ERROR_VARIABLE des_json_err LENGTH "${des_trace}" traceEvents)
if(des_json_err OR des_events LESS 10)
  message(FATAL_ERROR "trace.json is not a Chrome trace with events (${des_json_err})")
endif()
file(STRINGS "${WORK}/des/links.csv" des_links_head LIMIT_COUNT 1)
if(NOT des_links_head STREQUAL "link,kind,bandwidth_Bps,bytes,busy_s,busy_fraction,utilisation")
  message(FATAL_ERROR "links.csv header: ${des_links_head}")
endif()
file(SHA256 "${WORK}/des/trace.json" des_trace_hash)
file(SHA256 "${WORK}/des/links.csv" des_links_hash)
file(SHA256 "${WORK}/des/result.json" des_result_hash)
expect_run(5 ARGS run "${OLMOE16}" --engine des --out "${WORK}/des" STDERR "refusing to overwrite")
file(SHA256 "${WORK}/des/trace.json" des_trace_hash2)
file(SHA256 "${WORK}/des/links.csv" des_links_hash2)
file(SHA256 "${WORK}/des/result.json" des_result_hash2)
if(NOT des_trace_hash STREQUAL des_trace_hash2 OR NOT des_links_hash STREQUAL des_links_hash2
   OR NOT des_result_hash STREQUAL des_result_hash2)
  message(FATAL_ERROR "a refused discrete-event run changed the existing output files")
endif()
expect_run(0 ARGS run "${OLMOE16}" --engine des --out "${WORK}/des" --force)
# --force replaces the whole set: an analytic run over it removes the discrete-event trace.json and
# links.csv rather than leaving them beside a result they do not belong to.
expect_run(0 ARGS run "${OLMOE16}" --engine analytic --out "${WORK}/des" --force)
foreach(f trace.json links.csv)
  if(EXISTS "${WORK}/des/${f}")
    message(FATAL_ERROR "moesim run --force: the previous discrete-event run's ${f} is still there")
  endif()
endforeach()
file(READ "${WORK}/des/result.json" analytic_result)
if(NOT analytic_result MATCHES "\"engine\": \"analytic\"")
  message(FATAL_ERROR "moesim run --force: result.json is not the analytic run's")
endif()
# A full disk while the last file is written (the 214 kB trace.json past a 150 kB file size limit: sh's
# ulimit -f counts 512-byte blocks; the 89 kB ops.csv before it fits; with
# SIGXFSZ ignored write(2) fails with EFBIG as it fails with ENOSPC on a full disk): exit 5 naming the
# file and the reason, and the new set appears not at all, into an empty directory or over the previous
# run's set with --force, which stays as it was.
file(SHA256 "${WORK}/des/result.json" kept_hash)
foreach(target des_full des)
  execute_process(COMMAND sh -c "trap '' XFSZ; ulimit -f 300; exec \"$0\" \"$@\"" "${MOESIM}"
    run "${OLMOE16}" --engine des --out "${WORK}/${target}" --force
    RESULT_VARIABLE full_rc OUTPUT_VARIABLE full_out ERROR_VARIABLE full_err)
  if(NOT full_rc EQUAL 5 OR NOT full_err MATCHES "${target}/trace.json: write failed: File too large")
    message(FATAL_ERROR "full disk: exit ${full_rc}, expected 5 naming trace.json:\n${full_err}")
  endif()
  file(GLOB left LIST_DIRECTORIES true "${WORK}/${target}/*" "${WORK}/${target}/.*")
  list(FILTER left EXCLUDE REGEX "/(scenario.resolved.json|result.json|layers.csv|ops.csv|expert_load.csv|summary.txt)$")
  if(left)
    message(FATAL_ERROR "full disk: files left in ${target}: ${left}")
  endif()
endforeach()
file(SHA256 "${WORK}/des/result.json" kept_hash2)
if(NOT kept_hash STREQUAL kept_hash2)
  message(FATAL_ERROR "full disk: the previous run's result.json changed")
endif()
file(GLOB fresh "${WORK}/des_full/*")
if(fresh)
  message(FATAL_ERROR "full disk: part of the new set appeared: ${fresh}")
endif()
expect_run(2 ARGS run "${OLMOE16}" --engine bogus STDERR "--engine")

# moesim plan: the best plan confirmed by the discrete-event engine; the same plan file gives the same
# bytes, on any number of threads.
set(PLAN "${SRC}/tests/data/plans/olmoe-a100.json")
expect_run(0 ARGS plan "${PLAN}" --confirm 1 --format json -o "${WORK}/plan-a.json" -j 1
           STDERR "confirming plan 1 with the discrete-event engine")
expect_run(0 ARGS plan "${PLAN}" --confirm 1 --format json -o "${WORK}/plan-b.json" -j 2)
file(READ "${WORK}/plan-a.json" plan_a)
file(READ "${WORK}/plan-b.json" plan_b)
if(NOT plan_a STREQUAL plan_b)
  message(FATAL_ERROR "moesim plan: two runs of the same plan file differ")
endif()
if(NOT plan_a MATCHES "\"des_step_time_s\"" OR NOT plan_a MATCHES "\"confirmed\": 1")
  message(FATAL_ERROR "moesim plan: the best plan was not confirmed:\n${plan_a}")
endif()
expect_run(5 ARGS plan "${PLAN}" --confirm 0 -o "${WORK}/plan-a.json" STDERR "refusing to overwrite")
expect_run(0 ARGS plan "${PLAN}" --confirm 0 --format csv STDOUT "^rank,cluster,gpus,nodes,tp")

message(STATUS "cli_des_test: all checks passed")
