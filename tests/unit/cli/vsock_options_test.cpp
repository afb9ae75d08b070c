// --vsock cid=N: the guest's context ID on the command line and in the TOML
// config; reserved or malformed CIDs, unknown keys and a second device are
// one-line errors naming the flag.
#include <gtest/gtest.h>

#include "tests/unit/cli/cli_test_support.hpp"
#include "vmm/cli/device_options.hpp"
#include "vmm/cli/options.hpp"

namespace {

using vmm::cli::ParsedCommand;
using vmm::cli::testing::expect_error;
using vmm::cli::testing::expect_refused;
using vmm::cli::testing::parse;
using vmm::cli::testing::Refusals;
using vmm::cli::testing::TempDirectory;

TEST(VsockOption, GuestCidsFromThreeToTheLastUnreserved) {
    EXPECT_EQ(vmm::cli::parse_vsock("cid=3").guest_cid, 3u);
    EXPECT_EQ(vmm::cli::parse_vsock("cid=1024").guest_cid, 1024u);
    EXPECT_EQ(vmm::cli::parse_vsock("cid=4294967294").guest_cid, 4294967294u);
}

TEST(VsockOption, MistakesNameTheFlagAndThePart) {
    const Refusals cases = {
        {"cid=0", "cid=0 is not a guest context ID"},
        {"cid=1", "cid=1 is not"},
        {"cid=2", "cid=2 is not"},
        {"cid=4294967295", "cid=4294967295 is not"},
        {"cid=4294967296", "cid=4294967296 is not"},
        {"cid=99999999999999999999999", "is not a guest context ID"},
        {"cid=-3", "cid=-3 is not"},
        {"cid=3x", "cid=3x is not"},
        {"cid=", "cid= is not"},
        {"cid=3,cid=4", "given twice"},
        {"cid=3,port=5", "unknown key 'port'"},
        {"port=5", "unknown key 'port'"},
        {"3", "is not KEY=VALUE"},
        {"", "is not KEY=VALUE"},
    };
    expect_refused("--vsock", vmm::cli::parse_vsock, cases);
}

TEST(VsockOption, OnTheCommandLine) {
    const auto none = parse({"run", "--kernel", "/k"});
    ASSERT_EQ(none.action, ParsedCommand::Action::Run) << none.message;
    EXPECT_FALSE(none.config.vsock.has_value());

    const auto result = parse({"run", "--kernel", "/k", "--vsock", "cid=42"});
    ASSERT_EQ(result.action, ParsedCommand::Action::Run) << result.message;
    ASSERT_TRUE(result.config.vsock.has_value());
    EXPECT_EQ(result.config.vsock->guest_cid, 42u);

    expect_error(parse({"run", "--kernel", "/k", "--vsock", "cid=2"}), "--vsock cid=2");
    // One device: a second --vsock is refused, not silently dropped.
    expect_error(parse({"run", "--kernel", "/k", "--vsock", "cid=3", "--vsock", "cid=4"}),
                 "--vsock");
}

TEST(VsockOption, InTheConfigFileAndOverriddenByTheFlag) {
    const TempDirectory directory;
    const auto path = directory.write("vm.toml", "kernel = \"/k\"\nvsock = \"cid=3\"\n");

    const auto from_file = parse({"run", "--config", path});
    ASSERT_EQ(from_file.action, ParsedCommand::Action::Run) << from_file.message;
    ASSERT_TRUE(from_file.config.vsock.has_value());
    EXPECT_EQ(from_file.config.vsock->guest_cid, 3u);

    const auto flag_wins = parse({"run", "--config", path, "--vsock", "cid=9"});
    ASSERT_EQ(flag_wins.action, ParsedCommand::Action::Run) << flag_wins.message;
    EXPECT_EQ(flag_wins.config.vsock->guest_cid, 9u);

    directory.write("vm.toml", "kernel = \"/k\"\nvsock = \"cid=1\"\n");
    expect_error(parse({"run", "--config", path}), "--vsock cid=1");
}

}  // namespace
