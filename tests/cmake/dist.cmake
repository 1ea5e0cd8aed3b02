# CTest registrations for the dist hardening tests (issue: hostile input).
if(OSPREY_MPI)
  # Ranks started with different settings (mpirun's MPMD form: one command per rank) fail at
  # once, naming the setting and the ranks, instead of hanging in a collective.
  set(AGREE_RUN "${OSPREY_BIN} train ${TINY_FASHION} --set epochs=1")
  add_test(NAME test_dist_ranks_disagree_on_batch_size COMMAND ${EXPECT} nonzero
    "'batch_size' is 64 on rank 1 but 32 on rank 0"
    sh -c "${MPIEXEC_EXECUTABLE} ${MPIEXEC_OVERSUBSCRIBE} -np 1 ${AGREE_RUN} --set batch_size=32 : -np 1 ${AGREE_RUN} --set batch_size=64")
  add_test(NAME test_dist_ranks_disagree_on_limit_train COMMAND ${EXPECT} nonzero
    "'limit_train' is 256 on rank 1 but 512 on rank 0"
    sh -c "${MPIEXEC_EXECUTABLE} ${MPIEXEC_OVERSUBSCRIBE} -np 1 ${AGREE_RUN} : -np 1 ${AGREE_RUN} --set limit_train=256")
  set_tests_properties(test_dist_ranks_disagree_on_batch_size test_dist_ranks_disagree_on_limit_train
    PROPERTIES ENVIRONMENT "${MPI_TEST_ENV}" TIMEOUT 60)
  # A rank that never joins a collective: the others give up after OSPREY_COLLECTIVE_TIMEOUT_S,
  # name themselves and the operation, and abort the job (the stalled rank sleeps 60 s).
  add_test(NAME test_dist_collective_timeout_stops_the_job COMMAND ${EXPECT} nonzero
    "rank 0: an all-reduce \\(sum\\) of 1 doubles has waited more than 2 s"
    ${MPIEXEC_EXECUTABLE} ${MPIEXEC_OVERSUBSCRIBE} -np 2 $<TARGET_FILE:test_dist> --stall-on-rank 1)
  set_tests_properties(test_dist_collective_timeout_stops_the_job PROPERTIES ENVIRONMENT
    "${MPI_TEST_ENV};OSPREY_COLLECTIVE_TIMEOUT_S=2" TIMEOUT 15)
  add_test(NAME test_dist_bad_collective_timeout COMMAND ${EXPECT} nonzero
    "OSPREY_COLLECTIVE_TIMEOUT_S: 'soon' is not a number"
    ${MPIEXEC_EXECUTABLE} ${MPIEXEC_OVERSUBSCRIBE} -np 2 $<TARGET_FILE:osprey> train ${TINY_FASHION})
  set_tests_properties(test_dist_bad_collective_timeout PROPERTIES ENVIRONMENT
    "${MPI_TEST_ENV};OSPREY_COLLECTIVE_TIMEOUT_S=soon" TIMEOUT 60)
endif()
