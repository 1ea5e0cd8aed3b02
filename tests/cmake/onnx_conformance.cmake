# ONNX's operator conformance tests (Debian's libonnx-testdata) through Osprey's ops:
# tests/onnx_conformance, whose report is docs/onnx_conformance.md.
add_executable(osprey_onnx_conformance
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx_conformance/main.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx_conformance/conformance_case.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx_conformance/layout.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx_conformance/onnx_conv_pool.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx_conformance/onnx_ops.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx_conformance/report.cpp)
target_link_libraries(osprey_onnx_conformance PRIVATE osprey_interop osprey_engine osprey_warnings)
# Every applicable case passes; the run fails when one does not or when nothing is found.
add_test(NAME onnx_conformance_cpu COMMAND osprey_onnx_conformance --device cpu)
set_tests_properties(onnx_conformance_cpu PROPERTIES TIMEOUT 120)
add_test(NAME onnx_conformance_without_testdata COMMAND ${EXPECT} 1 "install libonnx-testdata"
  $<TARGET_FILE:osprey_onnx_conformance> --data /nonexistent/onnx-testdata)
if(OSPREY_CUDA)
  add_test(NAME onnx_conformance_cuda COMMAND osprey_onnx_conformance --device cuda)
  set_tests_properties(onnx_conformance_cuda PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
