// The error-check family's common form (kernels/error.h): every checked library call that fails
// throws osprey::Error reading "<library> error in <call> at <file>:<line>: <status>".
#include <catch2/catch.hpp>
#include <string>

#include "kernels/error.h"

TEST_CASE("a failed library call names the library, the call, the file and line, and the status") {
  try {
    osprey::throw_call_error("MPI", "MPI_Allreduce(buf, 4)", "dist/communicator.cpp", 42,
                             "MPI_ERR_COUNT: invalid count argument");
    FAIL("throw_call_error returned");
  } catch (const osprey::Error& e) {
    REQUIRE(std::string(e.what()) ==
            "MPI error in MPI_Allreduce(buf, 4) at dist/communicator.cpp:42: MPI_ERR_COUNT: "
            "invalid count argument");
  }
}
