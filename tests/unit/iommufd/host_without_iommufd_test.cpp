// On a host without iommufd (like the development machines) the library must
// say so clearly instead of failing somewhere later.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "iommufd_backend/ioas.hpp"
#include "iommufd_backend/iommu_fd.hpp"
#include "iommufd_backend/vfio_device.hpp"

namespace iommufd_backend {
namespace {

TEST(HostWithoutIommufd, MissingDeviceNodeIsExplained) {
    try {
        IommuFd::open("/nonexistent/dev/iommu");
        FAIL() << "opened a path that does not exist";
    } catch (const base::SystemError& error) {
        EXPECT_EQ(error.error_number(), ENOENT);
        const std::string text = error.what();
        EXPECT_NE(text.find("/nonexistent/dev/iommu"), std::string::npos) << text;
        EXPECT_NE(text.find("CONFIG_IOMMUFD"), std::string::npos) << text;
    }
}

TEST(HostWithoutIommufd, DefaultPathEitherOpensOrExplains) {
    if (::access("/dev/iommu", F_OK) == 0) GTEST_SKIP() << "this host has /dev/iommu";
    try {
        IommuFd::open();
        FAIL();
    } catch (const base::SystemError& error) {
        EXPECT_NE(std::string(error.what()).find("no iommufd"), std::string::npos) << error.what();
    }
}

TEST(HostWithoutIommufd, NonIommufdFdGivesIoctlErrorNotCrash) {
    // /dev/null does not implement iommufd ioctls: ENOTTY, reported with the ioctl's name.
    const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const IommuFd iommufd = IommuFd::adopt(base::UniqueFd(fd));
    try {
        Ioas::allocate(iommufd);
        FAIL();
    } catch (const IoctlError& error) {
        EXPECT_EQ(error.error_number(), ENOTTY);
        EXPECT_EQ(error.ioctl(), "IOMMU_IOAS_ALLOC");
    }
}

TEST(HostWithoutIommufd, AdoptRejectsInvalidFd) {
    EXPECT_THROW(IommuFd::adopt(base::UniqueFd()), base::Error);
}

TEST(HostWithoutIommufd, MissingVfioCdevIsExplained) {
    try {
        VfioDevice::open("/nonexistent/vfio0");
        FAIL();
    } catch (const base::SystemError& error) {
        EXPECT_NE(std::string(error.what()).find("vfio-pci"), std::string::npos) << error.what();
    }
    EXPECT_THROW(VfioDevice::open_pci("9999:99:99.9"), base::Error);
}

TEST(HostWithoutIommufd, UnboundVfioDeviceRefusesDeviceIoctls) {
    const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    VfioDevice device = VfioDevice::adopt(base::UniqueFd(fd), "/dev/null");
    try {
        device.info();
        FAIL();
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("not bound"), std::string::npos) << error.what();
    }
}

TEST(HostWithoutIommufd, MovedFromVfioDeviceIsClosed) {
    const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    VfioDevice first = VfioDevice::adopt(base::UniqueFd(fd), "/dev/null");
    VfioDevice second = std::move(first);
    EXPECT_EQ(second.fd(), fd);
    EXPECT_EQ(first.fd(), -1);  // NOLINT(bugprone-use-after-move): what a move leaves
    EXPECT_FALSE(first.bound());
    try {
        first.info();
        FAIL();
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("closed or moved from"), std::string::npos)
            << error.what();
    }
}

}  // namespace
}  // namespace iommufd_backend
