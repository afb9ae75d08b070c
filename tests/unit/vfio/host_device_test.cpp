// Finding the host device of a --device vfio=... in a fake sysfs tree: each
// way it can be wrong is one line saying what and what to do. And the
// passthrough DMA space on a host without /dev/iommu (this one) says which
// kernel option is missing.
#include "devices/vfio/host_device.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "devices/vfio/guest_dma_space.hpp"
#include "vmm/guest_memory.hpp"

namespace devices::vfio {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct FakeSysfs : ::testing::Test {
    fs::path root;

    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "vmm-sysfs.XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        root = pattern;
        fs::create_directories(root / "sys/bus/pci/devices");
        fs::create_directories(root / "sys/bus/pci/drivers/vfio-pci");
        fs::create_directories(root / "sys/bus/pci/drivers/nvme");
        fs::create_directories(root / "sys/bus/pci/drivers/e1000e");
        fs::create_directories(root / "sys/kernel/iommu_groups/7/devices");
        fs::create_directories(root / "dev/vfio/devices");
    }
    void TearDown() override { fs::remove_all(root); }

    std::string sysfs() const { return (root / "sys").string(); }
    std::string dev() const { return (root / "dev").string(); }

    // A PCI function in group 7, bound to `driver` ("" for none), with a
    // VFIO cdev vfioN when `cdev` >= 0.
    fs::path add_device(const std::string& address, const std::string& driver, int cdev = -1) {
        const fs::path device = root / "sys/devices/pci0000:00" / address;
        fs::create_directories(device);
        fs::create_directory_symlink(device, root / "sys/bus/pci/devices" / address);
        if (!driver.empty()) {
            fs::create_directory_symlink(root / "sys/bus/pci/drivers" / driver, device / "driver");
        }
        fs::create_directory_symlink(root / "sys/kernel/iommu_groups/7", device / "iommu_group");
        fs::create_directory_symlink(device, root / "sys/kernel/iommu_groups/7/devices" / address);
        if (cdev >= 0) {
            const std::string name = "vfio" + std::to_string(cdev);
            fs::create_directories(device / "vfio-dev" / name);
            fs::create_directories(root / "sys/class/vfio-dev" / name);
            fs::create_directory_symlink(device, root / "sys/class/vfio-dev" / name / "device");
        }
        return device;
    }

    std::string refusal(const std::string& spec) {
        try {
            resolve_host_device(spec, sysfs(), dev());
        } catch (const base::Error& error) {
            const std::string text = error.what();
            EXPECT_EQ(text.find('\n'), std::string::npos) << text;
            return text;
        }
        return "(no error)";
    }
};

TEST_F(FakeSysfs, AVfioBoundDeviceResolvesToItsCdev) {
    add_device("0000:00:10.0", "vfio-pci", 3);
    const auto host = resolve_host_device("0000:00:10.0", sysfs(), dev());
    EXPECT_EQ(host.pci_address, "0000:00:10.0");
    EXPECT_EQ(host.cdev, (root / "dev/vfio/devices/vfio3").string());
    // The short form and upper case mean the same device.
    EXPECT_EQ(resolve_host_device("00:10.0", sysfs(), dev()).pci_address, "0000:00:10.0");
    add_device("0000:0a:1f.7", "vfio-pci", 4);
    EXPECT_EQ(resolve_host_device("0000:0A:1F.7", sysfs(), dev()).pci_address, "0000:0a:1f.7");
}

TEST_F(FakeSysfs, NoSuchDevice) {
    EXPECT_THAT(refusal("0000:00:11.0"), HasSubstr("no PCI device 0000:00:11.0 on this host"));
}

TEST_F(FakeSysfs, BoundToAnotherDriverSaysHowToHandItOver) {
    add_device("0000:00:10.0", "nvme");
    const auto text = refusal("0000:00:10.0");
    EXPECT_THAT(text, HasSubstr("bound to nvme, not vfio-pci"));
    EXPECT_THAT(text, HasSubstr("/sys/bus/pci/devices/0000:00:10.0/driver/unbind"));
    EXPECT_THAT(text,
                HasSubstr("echo vfio-pci > /sys/bus/pci/devices/0000:00:10.0/driver_override"));
    EXPECT_THAT(text, HasSubstr("drivers_probe"));
}

TEST_F(FakeSysfs, BoundToNoDriver) {
    add_device("0000:00:10.0", "");
    EXPECT_THAT(refusal("0000:00:10.0"), HasSubstr("bound to no driver; bind it to vfio-pci"));
}

TEST_F(FakeSysfs, VfioWithoutACdevNamesTheKernelOption) {
    add_device("0000:00:10.0", "vfio-pci");
    EXPECT_THAT(refusal("0000:00:10.0"), HasSubstr("CONFIG_VFIO_DEVICE_CDEV"));
}

TEST_F(FakeSysfs, AGroupSharedWithAHostDriverIsRefused) {
    add_device("0000:00:10.0", "vfio-pci", 0);
    add_device("0000:00:10.1", "e1000e");
    const auto text = refusal("0000:00:10.0");
    EXPECT_THAT(text,
                HasSubstr("shares IOMMU group 7 with 0000:00:10.1, which is bound to e1000e"));
    // Bridges and unbound functions may stay.
    fs::remove(root / "sys/devices/pci0000:00/0000:00:10.1/driver");
    EXPECT_EQ(refusal("0000:00:10.0"), "(no error)");
}

TEST_F(FakeSysfs, NoIommuGroup) {
    const auto device = add_device("0000:00:10.0", "vfio-pci", 0);
    fs::remove(device / "iommu_group");
    EXPECT_THAT(refusal("0000:00:10.0"), HasSubstr("no IOMMU group"));
}

TEST_F(FakeSysfs, CdevPathsResolveThroughSysfs) {
    add_device("0000:00:10.0", "vfio-pci", 0);
    // Any character device stands in for the cdev node; sysfs says whose it is.
    fs::create_directories(root / "sys/class/vfio-dev/null");
    fs::create_directory_symlink(root / "sys/devices/pci0000:00/0000:00:10.0",
                                 root / "sys/class/vfio-dev/null/device");
    const auto host = resolve_host_device("/dev/null", sysfs(), dev());
    EXPECT_EQ(host.pci_address, "0000:00:10.0");
    EXPECT_EQ(host.cdev, "/dev/null");
    EXPECT_THAT(refusal((root / "dev/vfio/devices/vfio9").string()),
                HasSubstr("does not exist: no such VFIO device"));
    std::ofstream(root / "plain").put('x');
    EXPECT_THAT(refusal((root / "plain").string()), HasSubstr("is not a VFIO device node"));
    EXPECT_THAT(refusal("/dev/zero"), HasSubstr("is not a VFIO device cdev"));
}

TEST_F(FakeSysfs, MalformedSpecs) {
    for (const char* spec : {"10.0", "0000:00:20.0", "0000:00:10.8", "xyz", "", "0000-00:10.0"}) {
        EXPECT_THAT(refusal(spec), HasSubstr("neither a PCI address")) << spec;
    }
}

TEST(GuestDmaSpace, WithoutIommufdSaysWhatTheKernelNeeds) {
    const std::pair<vmm::GuestAddress, std::uint64_t> range{0, 1 << 20};
    const auto memory = vmm::GuestMemory::create(std::span(&range, 1));
    try {
        GuestDmaSpace space(memory, "/nonexistent/iommu");
        FAIL() << "an IOAS without /dev/iommu";
    } catch (const base::Error& error) {
        EXPECT_THAT(error.what(), HasSubstr("no iommufd (needs CONFIG_IOMMUFD"));
        EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos);
    }
}

}  // namespace
}  // namespace devices::vfio
