# The bf16 kernels once more with oneDNN held to AVX2 (no bf16 instructions): the float path a
# CPU without AVX512-BF16 takes, whatever this machine has.
add_test(NAME test_kernels_bf16_without_bf16_instructions COMMAND test_kernels "[bf16]")
set_tests_properties(test_kernels_bf16_without_bf16_instructions PROPERTIES
  ENVIRONMENT "DNNL_MAX_CPU_ISA=AVX2")
