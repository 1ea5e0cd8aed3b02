# The installed package: examples build against an install prefix alone (not under sanitizers,
# whose flags an installed library does not carry to its users).
if(NOT OSPREY_SANITIZE AND NOT OSPREY_FUZZ)
  add_test(NAME install_and_build_examples COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install_test.sh
    ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(install_and_build_examples PROPERTIES TIMEOUT 900)
endif()
