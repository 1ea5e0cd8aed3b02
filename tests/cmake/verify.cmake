# CTest registrations for `osprey verify`'s verdict (docs/verification.md). Every shipped
# MobileNetV2 reference exits 0 with a PASS: plain, or within fp32 chance where gradients are
# over 1e-3 by ReLU6 kink flips (which elements flip depends on the compiler's summation order:
# the clang build flips none on mnv2_w0.5, GCC's does; test_app_verify.cpp tells the verdicts
# apart on constructed rows). bf16 keeps its own
# tolerances and never falls back on the fp32 chance.
foreach(ref mnv2_cifar_w1.0_c10_b4_32 mnv2_w0.5_c10_b2_64 mnv2_cifar_w0.35_c3_b2_40
    mnv2_w0.25_c100_b3_48)
  add_test(NAME cli_verify_golden_${ref} COMMAND ${EXPECT} 0
    "^verdict: PASS( \\(gradients within fp32 chance: ReLU6 kink flips, see docs/verification.md\\))?$"
    ${OSPREY_BIN} verify ${OSPREY_GOLDEN_DIR}/${ref})
endforeach()
add_test(NAME cli_verify_golden_bf16 COMMAND ${EXPECT} 0 "^verdict: PASS$"
  ${OSPREY_BIN} verify ${OSPREY_GOLDEN_DIR}/mnv2_w0.25_c100_b3_48 --dtype bf16)
