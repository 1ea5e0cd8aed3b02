# Writes OUT (a C++ source defining osprey::tools::build_info) from the configure-time build
# options and the source tree's git commit, read at every build so that a commit without a
# re-configure still records itself. configure_file rewrites OUT only when its text changes,
# so an unchanged commit rebuilds nothing.
set(OSPREY_GIT_COMMIT "unknown")
find_program(GIT_EXECUTABLE git)
if(GIT_EXECUTABLE)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} rev-parse HEAD
    OUTPUT_VARIABLE _commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND _commit)
    set(OSPREY_GIT_COMMIT "${_commit}")
    # Tracked files that differ from the commit: the binary is not that commit's code.
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} status --porcelain
      --untracked-files=no OUTPUT_VARIABLE _changes ERROR_QUIET)
    if(_changes)
      string(APPEND OSPREY_GIT_COMMIT "-dirty")
    endif()
  endif()
endif()
configure_file(${TEMPLATE} ${OUT} @ONLY)
