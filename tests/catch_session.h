// Runs the Catch2 session of a test binary with its own main (tests/catch_session.cpp holds
// Catch2's implementation, compiled once; its Session class is declared only there).
#pragma once

namespace osprey_test {
int run_catch_session(int argc, char** argv);
}
