# CTest registrations for everyday training use: run folders, signals, resuming.
# 128 steps an epoch: long enough to stop within epoch 1, short enough under sanitizers.
set(SIGNAL_RUN --set limit_train=2048 --set limit_test=256 --set batch_size=16 --set threads=1)
add_test(NAME cli_train_interrupted_and_resumed_is_identical
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/signal_resume_test.sh ${OSPREY_BIN} ${SIGNAL_RUN})
set_tests_properties(cli_train_interrupted_and_resumed_is_identical PROPERTIES TIMEOUT 600)
# A default-named run goes to a new folder and says where; the same --name again is refused.
add_test(NAME cli_train_default_names_never_overwrite COMMAND ${EXPECT} nonzero
  "run 'runs/x' already exists \\(best test accuracy [0-9.]+% after epoch 1\\): choose another --name, add --overwrite"
  sh -c "${OSPREY_BIN} train ${TINY_FASHION} --set epochs=1 && ${OSPREY_BIN} train ${TINY_FASHION} --set epochs=1 | grep 'run directory: runs/simple_cnn_fashion-mnist_2$' && ${OSPREY_BIN} train ${TINY_FASHION} --set epochs=1 --name x && ${OSPREY_BIN} train ${TINY_FASHION} --set epochs=1 --name x")
# Resuming a finished run says so and trains nothing; more epochs continue it.
add_test(NAME cli_train_resume_of_a_finished_run COMMAND ${EXPECT} 0 "^epoch  2/2  train_loss"
  sh -c "${OSPREY_BIN} train ${TINY_FASHION} --set epochs=1 --name f && ${OSPREY_BIN} train --resume f | grep 'already finished its 1 epoch .*nothing to train.*with N > 1' && ${OSPREY_BIN} train --resume f --set epochs=2")
# The SLURM scripts' requeue-and-resume step (jobs/train_or_resume.sh) on SIGUSR1.
add_test(NAME jobs_requeue_on_sigusr1_and_resume
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm_requeue_test.sh ${OSPREY_BIN} ${PROJECT_SOURCE_DIR}
  ${SIGNAL_RUN})
set_tests_properties(jobs_requeue_on_sigusr1_and_resume PROPERTIES TIMEOUT 600)
# bf16 on a CPU without bf16 instructions (oneDNN held to AVX2) trains, and says it is no faster
# than f32 there.
add_test(NAME cli_train_bf16_without_bf16_instructions_says_so COMMAND ${EXPECT} 0
  "note: this CPU has no bf16 instructions .*train no faster than precision=f32 here"
  sh -c "${OSPREY_BIN} train ${TINY_FASHION} --set epochs=1 --set limit_train=64 --set limit_test=32 --set model=mobilenet_v2_cifar --set width_mult=0.25 --set precision=bf16 --set plot=false")
set_tests_properties(cli_train_bf16_without_bf16_instructions_says_so PROPERTIES
  ENVIRONMENT DNNL_MAX_CPU_ISA=AVX2)
