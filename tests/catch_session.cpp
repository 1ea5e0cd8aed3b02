// Catch2's implementation, compiled once for every test binary: a main of its own that defined
// CATCH_CONFIG_RUNNER would compile it again (about 18 s a copy).
#define CATCH_CONFIG_RUNNER
#include "tests/catch_session.h"

#include <catch2/catch.hpp>

int osprey_test::run_catch_session(int argc, char** argv) {
  return Catch::Session().run(argc, argv);
}
