# Dependencies point one way (tools -> models, data, dist, interop -> engine -> kernels), and the include
# paths enforce it (cmake/OspreyLibraries.cmake): a header of a higher layer is not found from a
# lower one. Each case compiles one #include with a library's own include path (the messages are
# GCC's and clang's).
set(LAYERING_DIR ${CMAKE_CURRENT_BINARY_DIR}/layering)
function(layering_case library header expect)
  string(MAKE_C_IDENTIFIER "${header}" h)
  set(name layering_${library}_${expect}_${h})
  file(WRITE ${LAYERING_DIR}/${name}.cpp "#include \"${header}\"\n")
  add_test(NAME ${name}
    COMMAND ${CMAKE_CXX_COMPILER} -std=c++17 -fsyntax-only -DONNX_ML=1 -DONNX_NAMESPACE=onnx
      -I${PROJECT_BINARY_DIR}/layers/${library}
      ${LAYERING_DIR}/${name}.cpp)
  if(expect STREQUAL "refuses")
    set_tests_properties(${name} PROPERTIES
      PASS_REGULAR_EXPRESSION "${header}: No such file or directory|'${header}' file not found")
  endif()
endfunction()
layering_case(osprey_kernels_cpu engine/tensor.h refuses)
layering_case(osprey_engine models/registry.h refuses)
layering_case(osprey_engine data/dataset.h refuses)
layering_case(osprey_engine dist/communicator.h refuses)
layering_case(osprey_engine tools/config.h refuses)
layering_case(osprey_models data/loader.h refuses)
layering_case(osprey_models tools/train.h refuses)
layering_case(osprey_data models/registry.h refuses)
layering_case(osprey_dist models/registry.h refuses)
layering_case(osprey_dist data/loader.h refuses)
layering_case(osprey_interop models/registry.h refuses)
layering_case(osprey_engine interop/onnx_tensor.h refuses)
# The right way compiles with the same flags (so a refusal above is the layering, not the flags).
layering_case(osprey_engine engine/tensor.h compiles)
layering_case(osprey_models models/registry.h compiles)
layering_case(osprey_data data/loader.h compiles)
layering_case(osprey_interop interop/onnx_export.h compiles)
