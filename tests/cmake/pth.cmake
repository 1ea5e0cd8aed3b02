# CTest registrations for PyTorch .pth files in the commands (tests/pth_commands_test.py): eval,
# predict, serve and verify given a .pth answer as given its safetensors conversion; without
# --config, or with a hostile pickle, they refuse.
add_test(NAME pth_commands COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/pth_commands_test.py
  ${OSPREY_BIN} ${PROJECT_SOURCE_DIR})
set_tests_properties(pth_commands PROPERTIES TIMEOUT 180)
