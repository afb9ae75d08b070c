// vmm::cli::parse_command_line: the `run` flags, their validation, help and
// version, and the TOML --config file. Every error is one line for the user.
#include "vmm/cli/options.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/unit/cli/cli_test_support.hpp"

namespace {

using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using vmm::cli::ParsedCommand;
using vmm::cli::testing::expect_error;
using vmm::cli::testing::expect_run;
using vmm::cli::testing::parse;

constexpr std::uint64_t MiB = 1024 * 1024;
constexpr std::uint64_t GiB = 1024 * MiB;

TEST(Options, RunWithAllFlags) {
    const auto result = parse({"run", "--kernel", "/boot/bzImage", "--initrd", "/boot/initrd.img",
                               "--cmdline", "console=ttyS0 quiet", "--memory", "2G", "--cpus", "4",
                               "--serial", "file:/tmp/com1.log", "--log-level", "debug"});
    expect_run(result);
    EXPECT_EQ(result.config.kernel_path, "/boot/bzImage");
    EXPECT_EQ(result.config.initrd_path, std::optional<std::string>("/boot/initrd.img"));
    EXPECT_EQ(result.config.cmdline, "console=ttyS0 quiet");
    EXPECT_EQ(result.config.memory_bytes, 2 * GiB);
    EXPECT_EQ(result.config.cpus, 4u);
    EXPECT_EQ(result.config.serial.mode, vmm::SerialConfig::Mode::File);
    EXPECT_EQ(result.config.serial.path, "/tmp/com1.log");
    EXPECT_EQ(result.log_level, vmm::log::Level::Debug);
}

TEST(Options, EqualsSyntax) {
    const auto result = parse({"run", "--kernel=/k", "--memory=1G", "--cpus=2"});
    expect_run(result);
    EXPECT_EQ(result.config.kernel_path, "/k");
    EXPECT_EQ(result.config.memory_bytes, GiB);
    EXPECT_EQ(result.config.cpus, 2u);
}

TEST(Options, Defaults) {
    const auto result = parse({"run", "--kernel", "/k"});
    expect_run(result);
    EXPECT_EQ(result.config.kernel_path, "/k");
    EXPECT_FALSE(result.config.initrd_path.has_value());
    EXPECT_EQ(result.config.cmdline, vmm::kDefaultCmdline);
    EXPECT_EQ(result.config.memory_bytes, 512 * MiB);
    EXPECT_EQ(result.config.cpus, 1u);
    EXPECT_EQ(result.config.serial.mode, vmm::SerialConfig::Mode::Stdio);
    EXPECT_EQ(result.log_level, vmm::log::Level::Info);
}

TEST(Options, MissingKernel) {
    expect_error(parse({"run"}), "--kernel");
    expect_error(parse({"run", "--memory", "1G"}), "--kernel");
    expect_error(parse({"run", "--kernel", ""}), "--kernel");
}

TEST(Options, MissingSubcommand) {
    expect_error(parse({}), "subcommand");
    expect_error(vmm::cli::parse_command_line({}), "subcommand");
}

TEST(Options, UnknownFlagOrSubcommand) {
    expect_error(parse({"run", "--kernel", "/k", "--frobnicate"}), "--frobnicate");
    expect_error(parse({"run", "--kernel", "/k", "stray"}), "stray");
    const auto result = parse({"boot", "--kernel", "/k"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(std::count(result.message.begin(), result.message.end(), '\n'), 1);
}

TEST(Options, FlagWithoutValue) {
    expect_error(parse({"run", "--kernel"}), "--kernel");
    expect_error(parse({"run", "--kernel", "/k", "--memory"}), "--memory");
}

TEST(Options, MemoryValidation) {
    expect_error(parse({"run", "--kernel", "/k", "--memory", "0"}), "--memory 0");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "12Q"}), "--memory 12Q");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "2T"}), "--memory 2T");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "15M"}), "--memory 15M");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "1025G"}), "--memory 1025G");
    // The machine cannot place RAM that would reach the 64-bit PCI window at
    // 256 GiB (RAM ends 1 GiB above its size): 255G is the most.
    expect_error(parse({"run", "--kernel", "/k", "--memory", "1T"}), "--memory 1T");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "256G"}), "16M to 255G");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "261124M"}), "--memory 261124M");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "16386K"}), "multiple of 4K");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "99999999999999999999G"}),
                 "not a size");
    expect_error(parse({"run", "--kernel", "/k", "--memory", "-1"}), "--memory");
}

TEST(Options, MemoryLimitsAreInclusive) {
    const auto smallest = parse({"run", "--kernel", "/k", "--memory", "16M"});
    expect_run(smallest);
    EXPECT_EQ(smallest.config.memory_bytes, 16 * MiB);
    const auto largest = parse({"run", "--kernel", "/k", "--memory", "255G"});
    expect_run(largest);
    EXPECT_EQ(largest.config.memory_bytes, 255 * GiB);
    const auto largest_in_m = parse({"run", "--kernel", "/k", "--memory", "261120M"});
    expect_run(largest_in_m);
    EXPECT_EQ(largest_in_m.config.memory_bytes, 255 * GiB);
    const auto bare = parse({"run", "--kernel", "/k", "--memory", "64"});
    expect_run(bare);
    EXPECT_EQ(bare.config.memory_bytes, 64 * MiB);
    const auto page_multiple = parse({"run", "--kernel", "/k", "--memory", "16388K"});
    expect_run(page_multiple);
    EXPECT_EQ(page_multiple.config.memory_bytes, 16388u * 1024);
}

TEST(Options, CpusValidation) {
    expect_error(parse({"run", "--kernel", "/k", "--cpus", "0"}), "--cpus 0");
    expect_error(parse({"run", "--kernel", "/k", "--cpus", "65"}), "--cpus 65");
    expect_error(parse({"run", "--kernel", "/k", "--cpus", "abc"}), "--cpus");
    expect_error(parse({"run", "--kernel", "/k", "--cpus=-1"}), "--cpus");
    expect_error(parse({"run", "--kernel", "/k", "--cpus", "4294967297"}), "--cpus");
    expect_error(parse({"run", "--kernel", "/k", "--cpus", "99999999999999999999"}), "--cpus");
    expect_error(parse({"run", "--kernel", "/k", "--cpus", "2.5"}), "--cpus");
    expect_run(parse({"run", "--kernel", "/k", "--cpus", "1"}));
    const auto most = parse({"run", "--kernel", "/k", "--cpus", "64"});
    expect_run(most);
    EXPECT_EQ(most.config.cpus, 64u);
}

TEST(Options, Serial) {
    const auto file = parse({"run", "--kernel", "/k", "--serial", "file:/x"});
    expect_run(file);
    EXPECT_EQ(file.config.serial.mode, vmm::SerialConfig::Mode::File);
    EXPECT_EQ(file.config.serial.path, "/x");

    const auto none = parse({"run", "--kernel", "/k", "--serial", "none"});
    expect_run(none);
    EXPECT_EQ(none.config.serial.mode, vmm::SerialConfig::Mode::None);

    const auto stdio = parse({"run", "--kernel", "/k", "--serial", "stdio"});
    expect_run(stdio);
    EXPECT_EQ(stdio.config.serial.mode, vmm::SerialConfig::Mode::Stdio);

    expect_error(parse({"run", "--kernel", "/k", "--serial", "bogus"}), "--serial bogus");
    expect_error(parse({"run", "--kernel", "/k", "--serial", "file:"}), "--serial file:");
    expect_error(parse({"run", "--kernel", "/k", "--serial", "STDIO"}), "--serial STDIO");
    expect_error(parse({"run", "--kernel", "/k", "--serial", "tcp:1234"}), "--serial");
}

TEST(Options, LogLevels) {
    const std::pair<const char*, vmm::log::Level> levels[] = {
        {"trace", vmm::log::Level::Trace}, {"debug", vmm::log::Level::Debug},
        {"info", vmm::log::Level::Info},   {"warn", vmm::log::Level::Warn},
        {"error", vmm::log::Level::Error}, {"off", vmm::log::Level::Off},
    };
    for (const auto& [name, level] : levels) {
        SCOPED_TRACE(name);
        const auto result = parse({"run", "--kernel", "/k", "--log-level", name});
        expect_run(result);
        EXPECT_EQ(result.log_level, level);
    }
    expect_error(parse({"run", "--kernel", "/k", "--log-level", "verbose"}), "--log-level verbose");
    expect_error(parse({"run", "--kernel", "/k", "--log-level", "INFO"}), "--log-level");
}

TEST(Options, Version) {
    const auto result = parse({"--version"});
    EXPECT_EQ(result.action, ParsedCommand::Action::Exit);
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_THAT(result.message, StartsWith("vmm "));
    EXPECT_THAT(result.message, EndsWith("\n"));
    EXPECT_EQ(std::count(result.message.begin(), result.message.end(), '\n'), 1);
    EXPECT_TRUE(std::any_of(result.message.begin(), result.message.end(),
                            [](char c) { return c >= '0' && c <= '9'; }));
}

TEST(Options, TopLevelHelp) {
    for (const char* flag : {"--help", "-h"}) {
        SCOPED_TRACE(flag);
        const auto result = parse({flag});
        EXPECT_EQ(result.action, ParsedCommand::Action::Exit);
        EXPECT_EQ(result.exit_code, 0);
        EXPECT_THAT(result.message,
                    AllOf(HasSubstr("run"), HasSubstr("--help"), HasSubstr("--version")));
    }
}

TEST(Options, RunHelpListsEveryOption) {
    for (const std::vector<std::string>& arguments :
         {std::vector<std::string>{"run", "--help"}, std::vector<std::string>{"run", "-h"},
          std::vector<std::string>{"run", "--kernel", "/k", "--cpus", "999", "--help"}}) {
        const auto result = parse(arguments);
        EXPECT_EQ(result.action, ParsedCommand::Action::Exit);
        EXPECT_EQ(result.exit_code, 0);
        for (const char* option : {"--kernel", "--initrd", "--cmdline", "--memory", "--cpus",
                                   "--serial", "--log-level", "--config"}) {
            EXPECT_THAT(result.message, HasSubstr(option));
        }
        EXPECT_THAT(result.message, HasSubstr("required"));
    }
}

using ConfigFile = vmm::cli::testing::ConfigFileTest;

TEST_F(ConfigFile, SuppliesKernelMemoryAndCpus) {
    const auto path = write("vm.toml", "kernel = \"/boot/vmlinux\"\nmemory = \"1G\"\ncpus = 4\n");
    const auto result = parse({"run", "--config", path});
    expect_run(result);
    EXPECT_EQ(result.config.kernel_path, "/boot/vmlinux");
    EXPECT_EQ(result.config.memory_bytes, GiB);
    EXPECT_EQ(result.config.cpus, 4u);
}

TEST_F(ConfigFile, SuppliesEveryOtherKey) {
    const auto path = write("vm.toml",
                            "# a comment\n"
                            "\n"
                            "kernel = \"/k\"\n"
                            "initrd = \"/i\"\n"
                            "cmdline = \"console=ttyS0 root=/dev/vda\"\n"
                            "serial = \"file:/tmp/out\"\n"
                            "log-level = \"warn\"\n");
    const auto result = parse({"run", "--config", path});
    expect_run(result);
    EXPECT_EQ(result.config.initrd_path, std::optional<std::string>("/i"));
    EXPECT_EQ(result.config.cmdline, "console=ttyS0 root=/dev/vda");
    EXPECT_EQ(result.config.serial.mode, vmm::SerialConfig::Mode::File);
    EXPECT_EQ(result.config.serial.path, "/tmp/out");
    EXPECT_EQ(result.log_level, vmm::log::Level::Warn);
}

TEST_F(ConfigFile, CommandLineOverridesTheFile) {
    const auto path = write("vm.toml", "kernel = \"/from-file\"\nmemory = \"1G\"\ncpus = 4\n");
    for (const std::vector<std::string>& arguments :
         {std::vector<std::string>{"run", "--config", path, "--cpus", "2", "--kernel", "/cli"},
          std::vector<std::string>{"run", "--cpus", "2", "--kernel", "/cli", "--config", path}}) {
        const auto result = parse(arguments);
        expect_run(result);
        EXPECT_EQ(result.config.cpus, 2u);             // from the command line
        EXPECT_EQ(result.config.kernel_path, "/cli");  // from the command line
        EXPECT_EQ(result.config.memory_bytes, GiB);    // from the file
    }
}

// Keys for a boolean flag and a repeatable option go through the same path.
TEST_F(ConfigFile, FlagAndListValues) {
    const auto path = write("vm.toml",
                            "kernel = \"/k\"\nrng = true\n"
                            "disk = [\"path=/a.img\", \"path=/b.img,readonly=on\"]\n");
    const auto result = parse({"run", "--config", path});
    expect_run(result);
    EXPECT_TRUE(result.config.virtio_rng);
    ASSERT_EQ(result.config.disks.size(), 2u);
    EXPECT_EQ(result.config.disks[0].path, "/a.img");
    EXPECT_EQ(result.config.disks[1].path, "/b.img");
    EXPECT_TRUE(result.config.disks[1].read_only);

    const auto off =
        parse({"run", "--config", write("off.toml", "kernel = \"/k\"\nrng = false\n")});
    expect_run(off);
    EXPECT_FALSE(off.config.virtio_rng);
}

TEST_F(ConfigFile, FileValuesAreValidatedLikeFlags) {
    expect_error(parse({"run", "--config", write("a.toml", "kernel = \"/k\"\ncpus = 0\n")}),
                 "--cpus 0");
    expect_error(parse({"run", "--config", write("b.toml", "kernel = \"/k\"\nmemory = \"12Q\"\n")}),
                 "--memory 12Q");
    expect_error(parse({"run", "--config", write("c.toml", "kernel = \"/k\"\ncpus = \"abc\"\n")}),
                 "--cpus");
    expect_error(parse({"run", "--config", write("d.toml", "kernel = \"/k\"\nserial = \"tty\"\n")}),
                 "--serial tty");
}

TEST_F(ConfigFile, KernelStillRequired) {
    expect_error(parse({"run", "--config", write("vm.toml", "memory = \"1G\"\n")}), "--kernel");
    expect_error(parse({"run", "--config", write("empty.toml", "")}), "--kernel");
}

TEST_F(ConfigFile, MissingFileIsAnError) {
    const auto path = (directory_.path() / "does-not-exist.toml").string();
    expect_error(parse({"run", "--kernel", "/k", "--config", path}), path);
    expect_error(parse({"run", "--config", path}), path);
}

TEST_F(ConfigFile, DirectoryIsAnError) {
    expect_error(parse({"run", "--kernel", "/k", "--config", directory_.path().string()}),
                 directory_.path().string());
}

TEST_F(ConfigFile, UnknownKeyIsAnErrorNamingIt) {
    const auto path = write("vm.toml", "kernel = \"/k\"\nmemroy = \"1G\"\n");
    expect_error(parse({"run", "--config", path}), "memroy");
}

TEST_F(ConfigFile, KeyInASectionIsAnErrorNamingIt) {
    const auto path = write("vm.toml", "[run]\nkernel = \"/k\"\n");
    expect_error(parse({"run", "--kernel", "/k", "--config", path}), "run.kernel");
}

TEST_F(ConfigFile, NonConfigurableKeysAreErrors) {
    expect_error(
        parse({"run", "--kernel", "/k", "--config", write("a.toml", "config = \"/other.toml\"\n")}),
        "config");
    expect_error(parse({"run", "--kernel", "/k", "--config", write("b.toml", "help = true\n")}),
                 "help");
}

// Whatever goes wrong, the user sees exactly one line.
class OneLineErrors : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(OneLineErrors, ExitOneWithOneLine) {
    const auto result = parse(GetParam());
    EXPECT_EQ(result.action, ParsedCommand::Action::Exit);
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_THAT(result.message, StartsWith("vmm: error: "));
    ASSERT_FALSE(result.message.empty());
    EXPECT_EQ(result.message.back(), '\n');
    EXPECT_EQ(result.message.find('\n'), result.message.size() - 1) << result.message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OneLineErrors,
    ::testing::Values(std::vector<std::string>{}, std::vector<std::string>{"run"},
                      std::vector<std::string>{"bogus"},
                      std::vector<std::string>{"run", "--kernel"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--kernel", "/j"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--memory", "0"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--memory", "12Q"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--memory", "2T"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--cpus", "0"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--cpus", "65"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--cpus", "abc"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--serial", "bogus"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--log-level", "x"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--config",
                                               "/nonexistent/vm.toml"},
                      std::vector<std::string>{"run", "--kernel", "/k", "--a", "--b", "c"},
                      std::vector<std::string>{"--frob"}));

}  // namespace
