// --net tap=NAME[,mac=..]: parse_net and its path through the command line
// and the TOML config. Every mistake is one line naming the flag and part.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/cli/cli_test_support.hpp"
#include "vmm/cli/device_options.hpp"
#include "vmm/cli/options.hpp"

namespace {

using ::testing::HasSubstr;
using vmm::cli::parse_net;
using vmm::cli::ParsedCommand;
using vmm::cli::testing::expect_error;
using vmm::cli::testing::parse;
using vmm::cli::testing::TempDirectory;
using Mac = std::array<std::uint8_t, 6>;

std::string parse_net_error(const std::string& text) {
    return vmm::cli::testing::option_error(parse_net, text);
}

TEST(NetOptions, TapOnly) {
    const auto net = parse_net("tap=tap0");
    EXPECT_EQ(net.tap, "tap0");
    EXPECT_FALSE(net.mac.has_value());
}

TEST(NetOptions, TapAndMacInEitherOrder) {
    for (const char* text :
         {"tap=vmtap1,mac=52:54:00:AB:cd:0f", "mac=52:54:00:AB:cd:0f,tap=vmtap1"}) {
        const auto net = parse_net(text);
        EXPECT_EQ(net.tap, "vmtap1");
        ASSERT_TRUE(net.mac.has_value());
        EXPECT_EQ(*net.mac, (Mac{0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f}));
    }
}

TEST(NetOptions, LongestInterfaceName) {
    EXPECT_EQ(parse_net("tap=abcdefghijklmno").tap, "abcdefghijklmno");  // 15, IFNAMSIZ - 1
    EXPECT_THAT(parse_net_error("tap=abcdefghijklmnop"), HasSubstr("tap=abcdefghijklmnop"));
}

TEST(NetOptions, BadInterfaceNames) {
    for (const char* text : {"tap=", "tap=a/b", "tap=a:b", "tap=a b", "tap=.", "tap=.."}) {
        EXPECT_THAT(parse_net_error(text), HasSubstr("not an interface name")) << text;
    }
}

TEST(NetOptions, BadMacs) {
    for (const char* mac :
         {"52:54:00:12:34", "52:54:00:12:34:56:78", "52-54-00-12-34-56", "52:54:00:12:34:5g",
          "5:254:00:12:34:56", "+2:54:00:12:34:56", "525400123456", "52:54:00:12:34:56 ", ""}) {
        EXPECT_THAT(parse_net_error(std::string("tap=t,mac=") + mac),
                    HasSubstr("is not six hex octets"))
            << mac;
    }
    EXPECT_THAT(parse_net_error("tap=t,mac=01:00:5e:00:00:01"), HasSubstr("multicast"));
    EXPECT_THAT(parse_net_error("tap=t,mac=ff:ff:ff:ff:ff:ff"), HasSubstr("multicast"));
    EXPECT_THAT(parse_net_error("tap=t,mac=00:00:00:00:00:00"), HasSubstr("all zeroes"));
}

TEST(NetOptions, KeysAreChecked) {
    EXPECT_THAT(parse_net_error("mac=52:54:00:12:34:56"), HasSubstr("tap=NAME is required"));
    EXPECT_THAT(parse_net_error("tap=t,queues=2"), HasSubstr("unknown key 'queues'"));
    EXPECT_THAT(parse_net_error("tap=t,tap=u"), HasSubstr("given twice"));
    EXPECT_THAT(parse_net_error("tap"), HasSubstr("not KEY=VALUE"));
}

TEST(NetOptions, CommandLineIsRepeatable) {
    const auto result = parse(
        {"run", "--kernel", "/k", "--net", "tap=tap0", "--net", "tap=tap1,mac=52:54:00:00:00:02"});
    ASSERT_EQ(result.action, ParsedCommand::Action::Run) << result.message;
    ASSERT_EQ(result.config.nets.size(), 2u);
    EXPECT_EQ(result.config.nets[0].tap, "tap0");
    EXPECT_FALSE(result.config.nets[0].mac.has_value());
    EXPECT_EQ(result.config.nets[1].tap, "tap1");
    EXPECT_EQ(result.config.nets[1].mac, (Mac{0x52, 0x54, 0, 0, 0, 2}));
    EXPECT_TRUE(parse({"run", "--kernel", "/k"}).config.nets.empty());
}

// The user sees one line naming what is wrong, exit code 1.
TEST(NetOptions, CommandLineErrorsAreOneLine) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--net", "tap=tap0,mac=52:54:00:12:34"}, "mac=52:54:00:12:34"},
        {{"--net", "tap=tap0", "--net", "tap=tap0"}, "tap tap0 is given twice"},
        {{"--net", "tap=tap0,speed=10"}, "unknown key 'speed'"},
        {{"--net"}, "--net"},
    };
    for (const auto& [flags, mentions] : cases) {
        std::vector<std::string> arguments{"run", "--kernel", "/k"};
        arguments.insert(arguments.end(), flags.begin(), flags.end());
        expect_error(parse(arguments), mentions);
    }
}

TEST(NetOptions, HelpListsNet) {
    EXPECT_THAT(parse({"run", "--help"}).message, HasSubstr("--net"));
}

TEST(NetOptions, TomlArray) {
    const TempDirectory directory;
    const auto path = directory.write(
        "vm.toml", "kernel = \"/k\"\nnet = [\"tap=tap0,mac=52:54:00:12:34:56\", \"tap=tap1\"]\n");
    const auto bad = directory.write("bad.toml", "kernel = \"/k\"\nnet = [\"tap=tap0,mac=zz\"]\n");

    const auto good = parse({"run", "--config", path});
    ASSERT_EQ(good.action, ParsedCommand::Action::Run) << good.message;
    ASSERT_EQ(good.config.nets.size(), 2u);
    EXPECT_EQ(good.config.nets[0].mac, (Mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}));
    EXPECT_EQ(good.config.nets[1].tap, "tap1");
    expect_error(parse({"run", "--config", bad}), "mac=zz");
}

}  // namespace
