# Shared by the command-line tests (cli_test.cmake, cli_des_test.cmake), run as
#   cmake -DMOESIM=<moesim binary> -DSRC=<source tree> -DWORK=<scratch folder> -P <script>
# Starts from an empty WORK folder and defines expect_run.
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# expect_run(CODE ARGS arg... [STDOUT regex] [STDERR regex] [ERRORS n]): runs moesim with the arguments
# and fails the test unless it exits with CODE, its output matches the regular expressions and (ERRORS)
# stderr holds exactly n lines starting "moesim: error:".
function(expect_run code)
  cmake_parse_arguments(E "" "STDOUT;STDERR;ERRORS" "ARGS" ${ARGN})
  execute_process(COMMAND "${MOESIM}" ${E_ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL code)
    message(FATAL_ERROR "moesim ${E_ARGS}: exit ${rc}, expected ${code}\nstdout: ${out}\nstderr: ${err}")
  endif()
  if(E_STDOUT AND NOT out MATCHES "${E_STDOUT}")
    message(FATAL_ERROR "moesim ${E_ARGS}: stdout lacks '${E_STDOUT}':\n${out}")
  endif()
  if(E_STDERR AND NOT err MATCHES "${E_STDERR}")
    message(FATAL_ERROR "moesim ${E_ARGS}: stderr lacks '${E_STDERR}':\n${err}")
  endif()
  if(DEFINED E_ERRORS)
    string(REGEX MATCHALL "(^|\n)moesim: error:" error_lines "${err}")
    list(LENGTH error_lines n)
    if(NOT n EQUAL E_ERRORS)
      message(FATAL_ERROR "moesim ${E_ARGS}: ${n} error lines on stderr, expected ${E_ERRORS}:\n${err}")
    endif()
  endif()
endfunction()
