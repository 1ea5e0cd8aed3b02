# CTest registrations for the serve hardening tests (issue: hostile input).
# `osprey serve` under abuse (tests/serve_abuse_test.py, ~30 s, loopback only): a second server
# on its port fails; 6 pipelined requests are answered in order; 50 slowloris sockets are cut
# off by their deadlines while every health probe answers within 1 s and predictions work;
# decompression bombs from 40 clients get 200 or 503 and the RSS stays under the stated bound.
# Sanitizers shadow every byte and quarantine freed memory, so RSS proves nothing there.
set(SERVE_ABUSE_ARGS "")
if(OSPREY_SANITIZE)
  set(SERVE_ABUSE_ARGS --memory-not-judged)
endif()
add_test(NAME serve_abuse COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/serve_abuse_test.py
  ${OSPREY_BIN} ${SERVE_ABUSE_ARGS})
set_tests_properties(serve_abuse PROPERTIES TIMEOUT 120)
