// --disk path=FILE[,readonly=on][,serial=ID][,queues=N]: parse_disk and its
// path through the command line and the TOML config. (Whether the file
// exists is checked when the device opens it, before boot: integration
// tests.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/cli/cli_test_support.hpp"
#include "vmm/cli/device_options.hpp"
#include "vmm/cli/options.hpp"

namespace {

using ::testing::HasSubstr;
using vmm::cli::parse_disk;
using vmm::cli::ParsedCommand;
using vmm::cli::testing::expect_error;
using vmm::cli::testing::expect_refused;
using vmm::cli::testing::parse;
using vmm::cli::testing::TempDirectory;

TEST(DiskOptions, PathOnlyTakesTheDefaults) {
    const auto disk = parse_disk("path=/images/root.img");
    EXPECT_EQ(disk.path, "/images/root.img");
    EXPECT_FALSE(disk.read_only);
    EXPECT_TRUE(disk.serial.empty());  // derived from the file name later
    EXPECT_EQ(disk.queues, 1);
}

TEST(DiskOptions, EveryKey) {
    const auto disk = parse_disk("path=d.img,readonly=on,serial=ABCDEFGHIJKLMNOPQRST,queues=16");
    EXPECT_EQ(disk.path, "d.img");
    EXPECT_TRUE(disk.read_only);
    EXPECT_EQ(disk.serial, "ABCDEFGHIJKLMNOPQRST");  // 20 bytes: GET_ID's size
    EXPECT_EQ(disk.queues, 16);
    EXPECT_FALSE(parse_disk("path=d.img,readonly=off").read_only);
    EXPECT_TRUE(parse_disk("path=d.img,readonly=yes").read_only);
}

TEST(DiskOptions, MistakesNameTheFlagAndThePart) {
    expect_refused("--disk", [](const std::string& text) { parse_disk(text); },
                   {
                       {"readonly=on", "path=FILE is required"},
                       {"path=", "path is empty"},
                       {"path=d.img,readonly=maybe", "readonly=maybe is not on or off"},
                       {"path=d.img,serial=ABCDEFGHIJKLMNOPQRSTU", "longer than 20 bytes"},
                       {"path=d.img,queues=0", "queues=0 is not a number from 1 to 16"},
                       {"path=d.img,queues=17", "queues=17"},
                       {"path=d.img,queues=2x", "queues=2x"},
                       {"path=d.img,queues=-1", "queues=-1"},
                       {"path=d.img,cache=none", "unknown key 'cache'"},
                       {"path", "not KEY=VALUE"},
                   });
}

TEST(DiskOptions, CommandLineIsRepeatableInSlotOrder) {
    const auto result = parse(
        {"run", "--kernel", "/k", "--disk", "path=a.img", "--disk", "path=b.img,readonly=on"});
    ASSERT_EQ(result.action, ParsedCommand::Action::Run) << result.message;
    ASSERT_EQ(result.config.disks.size(), 2u);
    EXPECT_EQ(result.config.disks[0].path, "a.img");
    EXPECT_EQ(result.config.disks[1].path, "b.img");
    EXPECT_TRUE(result.config.disks[1].read_only);
}

TEST(DiskOptions, CommandLineErrorsAreOneLine) {
    expect_error(parse({"run", "--kernel", "/k", "--disk", "path=a.img,queues=99"}), "queues=99");
    expect_error(parse({"run", "--kernel", "/k", "--disk"}), "--disk");
}

TEST(DiskOptions, TomlArray) {
    const TempDirectory directory;
    const auto good = directory.write(
        "vm.toml", "kernel = \"/k\"\ndisk = [\"path=a.img\", \"path=b.img,serial=B\"]\n");
    const auto bad = directory.write("bad.toml", "kernel = \"/k\"\ndisk = [\"path=a.img,ro=1\"]\n");
    const auto result = parse({"run", "--config", good});
    ASSERT_EQ(result.action, ParsedCommand::Action::Run) << result.message;
    ASSERT_EQ(result.config.disks.size(), 2u);
    EXPECT_EQ(result.config.disks[1].serial, "B");
    expect_error(parse({"run", "--config", bad}), "unknown key 'ro'");
}

}  // namespace
