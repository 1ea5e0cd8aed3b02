# CTest registration for the study driver (bench/study.py): every study in its quick form, the
# files each writes checked by tests/study_test.py. Its data-parallel runs need MPI.
if(OSPREY_MPI)
  add_test(NAME bench_study_quick COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/study_test.py
    ${PROJECT_SOURCE_DIR} ${OSPREY_BIN} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(bench_study_quick PROPERTIES TIMEOUT 300)
endif()
