# CTest registrations for osprey export --onnx (docs/onnx.md).
# The writer: three models checked by ONNX's C++ checker and run by a naive interpreter.
osprey_test(test_interop_onnx_export SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_interop_onnx_export.cpp
  LIBS osprey_models osprey_interop)
# The exported files in ONNX Runtime (npm onnxruntime-node, CPU; tools/install_deps.sh installs
# it): tiny Fashion-MNIST runs of simple_cnn and both MobileNetV2 stems, Python's full
# onnx.checker, ONNX Runtime's logits against Osprey's within 1e-4 relative L2, the same top-1.
add_test(NAME onnx_export_runs_in_onnx_runtime COMMAND python3
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx_runtime_test.py ${OSPREY_BIN})
set_tests_properties(onnx_export_runs_in_onnx_runtime PROPERTIES TIMEOUT 180)
# Bad input: one message, exit 1, no file.
add_test(NAME cli_export_needs_a_checkpoint COMMAND ${EXPECT} nonzero "^refused, nothing written$"
  sh -c "${OSPREY_BIN} export --onnx m.onnx nowhere 2>&1 | grep \"no checkpoint at 'nowhere'\" && test -z \"$(ls -A)\" && echo 'refused, nothing written'; exit 1")
add_test(NAME cli_export_to_a_missing_folder COMMAND ${EXPECT} 1
  "cannot write '/nonexistent/m.onnx': folder '/nonexistent' does not exist"
  ${OSPREY_BIN} export --onnx /nonexistent/m.onnx nowhere)
