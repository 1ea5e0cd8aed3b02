# CTest registration for `osprey data get` (tests/data_get_test.py, loopback only): a local
# HTTP server serves synthetic CIFAR-10 and MNIST archives, good, truncated, with a wrong
# checksum, dropping the connection halfway (resumed by Range), with a ../../etc/x entry; a
# proxy from http_proxy; then `osprey train` on the CIFAR-10 config starts on what was unpacked.
add_test(NAME data_get COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/data_get_test.py ${OSPREY_BIN}
  ${PROJECT_SOURCE_DIR})
set_tests_properties(data_get PROPERTIES TIMEOUT 600)
