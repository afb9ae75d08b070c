// --console: the host end of the virtio-console, on the command line and in
// the TOML config; every mistake is one line naming it.
#include <gtest/gtest.h>

#include "tests/unit/cli/cli_test_support.hpp"
#include "vmm/cli/device_options.hpp"
#include "vmm/cli/options.hpp"

namespace {

using vmm::ConsoleConfig;
using vmm::cli::ParsedCommand;
using vmm::cli::testing::expect_error;
using vmm::cli::testing::expect_refused;
using vmm::cli::testing::parse;
using vmm::cli::testing::Refusals;

TEST(ConsoleOption, ThreeHostEnds) {
    const auto socket = vmm::cli::parse_console("socket=/run/vm.sock");
    EXPECT_EQ(socket.mode, ConsoleConfig::Mode::Socket);
    EXPECT_EQ(socket.path, "/run/vm.sock");
    const auto file = vmm::cli::parse_console("file=guest.log");
    EXPECT_EQ(file.mode, ConsoleConfig::Mode::File);
    EXPECT_EQ(file.path, "guest.log");
    const auto pty = vmm::cli::parse_console("pty");
    EXPECT_EQ(pty.mode, ConsoleConfig::Mode::Pty);
    EXPECT_TRUE(pty.path.empty());
}

TEST(ConsoleOption, MistakesNameTheFlagAndThePart) {
    const Refusals cases = {
        {"serial=/x", "unknown key 'serial'"},
        {"socket=", "socket needs a path"},
        {"file=", "file needs a path"},
        {"socket=/a,file=/b", "give one of"},
        {"socket=/a,socket=/b", "given twice"},
        {"pty=yes", "pty takes no value"},
        {"", "is not KEY=VALUE"},
        {"tcp", "is not KEY=VALUE"},
    };
    expect_refused("--console", vmm::cli::parse_console, cases);
}

TEST(ConsoleOption, OnTheCommandLine) {
    const auto none = parse({"run", "--kernel", "/k"});
    EXPECT_EQ(none.action, ParsedCommand::Action::Run) << none.message;
    EXPECT_FALSE(none.config.console.has_value());

    const auto result = parse({"run", "--kernel", "/k", "--console", "socket=/tmp/con.sock"});
    ASSERT_EQ(result.action, ParsedCommand::Action::Run) << result.message;
    ASSERT_TRUE(result.config.console.has_value());
    EXPECT_EQ(result.config.console->mode, ConsoleConfig::Mode::Socket);
    EXPECT_EQ(result.config.console->path, "/tmp/con.sock");

    expect_error(parse({"run", "--kernel", "/k", "--console", "usb=1"}), "--console usb=1");
}

using ConsoleConfigFile = vmm::cli::testing::ConfigFileTest;

TEST_F(ConsoleConfigFile, SuppliesTheConsoleAndTheFlagWins) {
    const auto path = write("vm.toml", "kernel = \"/k\"\nconsole = \"socket=/run/vm.sock\"\n");

    const auto from_file = parse({"run", "--config", path});
    ASSERT_EQ(from_file.action, ParsedCommand::Action::Run) << from_file.message;
    ASSERT_TRUE(from_file.config.console.has_value());
    EXPECT_EQ(from_file.config.console->mode, ConsoleConfig::Mode::Socket);
    EXPECT_EQ(from_file.config.console->path, "/run/vm.sock");

    const auto flag_wins = parse({"run", "--config", path, "--console", "pty"});
    ASSERT_EQ(flag_wins.action, ParsedCommand::Action::Run) << flag_wins.message;
    EXPECT_EQ(flag_wins.config.console->mode, ConsoleConfig::Mode::Pty);

    write("vm.toml", "kernel = \"/k\"\nconsole = \"file=\"\n");
    expect_error(parse({"run", "--config", path}), "--console file=");
}

}  // namespace
