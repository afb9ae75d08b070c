// gtest entry point of vmm_integration_tests. Writing to a VMM that already
// exited must fail with EPIPE, not kill the test run, so SIGPIPE is ignored
// here (the runner restores it to the default in every child).
#include <gtest/gtest.h>

#include <csignal>

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
