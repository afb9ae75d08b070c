// --device vfio=ADDRESS|CDEV: the syntax on the command line and in the
// TOML config; malformed addresses, other device types and a device given
// twice are one-line errors naming the flag. Whether the device exists is
// the machine's business (tests/unit/vfio/host_device_test.cpp).
#include "vmm/cli/device_options.hpp"

#include <gtest/gtest.h>

#include "tests/unit/cli/cli_test_support.hpp"
#include "vmm/cli/options.hpp"

namespace {

using vmm::cli::ParsedCommand;
using vmm::cli::testing::expect_error;
using vmm::cli::testing::expect_refused;
using vmm::cli::testing::parse;
using vmm::cli::testing::Refusals;
using vmm::cli::testing::TempDirectory;

TEST(DeviceOption, PciAddressesAndCdevPaths) {
    EXPECT_EQ(vmm::cli::parse_device("vfio=0000:00:10.0").host, "0000:00:10.0");
    EXPECT_EQ(vmm::cli::parse_device("vfio=00:03.0").host, "00:03.0");
    EXPECT_EQ(vmm::cli::parse_device("vfio=0000:AF:1f.7").host, "0000:AF:1f.7");
    EXPECT_EQ(vmm::cli::parse_device("vfio=/dev/vfio/devices/vfio0").host,
              "/dev/vfio/devices/vfio0");
}

TEST(DeviceOption, MistakesNameTheFlagAndThePart) {
    const Refusals cases = {
        {"vfio=0000:00:20.0", "is not a PCI address"},
        {"vfio=0000:00:10.8", "is not a PCI address"},
        {"vfio=10.0", "is not a PCI address"},
        {"vfio=0000:00:10", "is not a PCI address"},
        {"vfio=dev/vfio/devices/vfio0", "is not a PCI address"},
        {"vfio=", "vfio needs a PCI address or a cdev path"},
        {"virtio=0000:00:10.0", "the only device type is vfio"},
        {"vfio=0000:00:10.0,vfio=0000:00:11.0", "given twice"},
        {"vfio=0000:00:10.0,rom=off", "the only device type is vfio"},
        {"0000:00:10.0", "is not KEY=VALUE"},
    };
    expect_refused("--device", vmm::cli::parse_device, cases);
}

TEST(DeviceOption, RepeatableInFlagOrder) {
    const auto none = parse({"run", "--kernel", "/k"});
    ASSERT_EQ(none.action, ParsedCommand::Action::Run) << none.message;
    EXPECT_TRUE(none.config.passthrough.empty());
    const auto two = parse({"run", "--kernel", "/k", "--device", "vfio=0000:00:10.0", "--device",
                            "vfio=/dev/vfio/devices/vfio1"});
    ASSERT_EQ(two.action, ParsedCommand::Action::Run) << two.message;
    ASSERT_EQ(two.config.passthrough.size(), 2u);
    EXPECT_EQ(two.config.passthrough[0].host, "0000:00:10.0");
    EXPECT_EQ(two.config.passthrough[1].host, "/dev/vfio/devices/vfio1");
    expect_error(parse({"run", "--kernel", "/k", "--device", "vfio=0000:00:10.0", "--device",
                        "vfio=0000:00:10.0"}),
                 "given twice");
    expect_error(parse({"run", "--kernel", "/k", "--device", "vfio=00:99.0"}),
                 "--device vfio=00:99.0");
}

TEST(DeviceOption, InTheTomlConfigAsAnArray) {
    TempDirectory dir;
    const std::string path =
        dir.write("vm.toml",
                  "kernel = \"/k\"\n"
                  "device = [\"vfio=0000:00:10.0\", \"vfio=/dev/vfio/devices/vfio2\"]\n");
    const auto result = parse({"run", "--config", path});
    ASSERT_EQ(result.action, ParsedCommand::Action::Run) << result.message;
    ASSERT_EQ(result.config.passthrough.size(), 2u);
    EXPECT_EQ(result.config.passthrough[1].host, "/dev/vfio/devices/vfio2");
}

}  // namespace
